"""The ``ttc`` command line.

    ttc run "PROMPT" --strategy best_of_n -n 8 --judge writing_quality [--model M] [--base-url URL]
    ttc run "PROMPT" --strategy majority_vote -n 8 --answer number
    ttc run "PROMPT" --strategy beam_search -n 8 --keep 2 --judge math_step
    ttc run "PROMPT" --out result.json      # also save the search record
    ttc eval data/gsm8k_test.jsonl --limit 50 -n 16 --out runs/gsm8k
    ttc writing data/mt_bench_questions.jsonl -n 8 --out runs/writing
    ttc agreement data/llmbar_natural.json --judge instruction_following

Progress goes to stderr; the chosen answer and a table of the candidates (or, with ``--json``,
the whole search record) go to stdout. Errors are one line on stderr and a non-zero status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from importlib import metadata

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from rich.console import Console
from rich.markup import escape

from ttc_agent.answers import boxed_answer, last_number, normalize
from ttc_agent.display import ProgressBars, run_record, show_result
from ttc_agent.errors import ConfigurationError, SearchError, TTCError
from ttc_agent.evaluation.command import (
    add_agreement_arguments,
    add_writing_arguments,
    agreement_report,
    run_agreement,
    run_writing,
    writing_report,
)
from ttc_agent.evaluation.command import add_arguments as add_eval_arguments
from ttc_agent.evaluation.command import report as eval_report
from ttc_agent.evaluation.command import run as run_eval
from ttc_agent.files import write_atomically
from ttc_agent.models import OpenAIChat, RetryPolicy
from ttc_agent.models.continuation import CONTINUATIONS
from ttc_agent.strategies import (
    StrategyNode,
    adaptive,
    beam_search,
    best_of_n,
    dvts,
    majority_vote,
    refine,
    search_result,
    think_harder,
)
from ttc_agent.strategies.think_harder import EFFORTS
from ttc_agent.types import SearchResult
from ttc_agent.verifiers import LLMStepJudge, RubricJudge, available_cards, load_card

STRATEGIES = ("best_of_n", "majority_vote", "beam_search", "dvts", "refine", "adaptive")
STEP_SEARCHES = ("beam_search", "dvts", "adaptive")  # their step judges need logprobs
ANSWER_KEYS = {"math": boxed_answer, "exact": normalize, "number": last_number}
SERVE_PORT = 8400  # not 8000, where vLLM and many other servers listen by default


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ttc", description="Test-time compute for LLM answers.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="answer one prompt with a test-time-compute strategy")
    run.add_argument("prompt", help="the user prompt")
    run.add_argument("--strategy", help=f"one of: {', '.join(STRATEGIES)} (default best_of_n)")
    run.add_argument("--effort", choices=EFFORTS, help="think harder at this level instead of "
                     "naming a strategy: none (one call), low, medium, high")  # fmt: skip
    run.add_argument("-n", type=int, default=8, help="candidates to sample (default 8)")
    run.add_argument("--budget-calls", type=int, help="the most model calls (retries count)")
    run.add_argument("--budget-tokens", type=int, help="the most tokens, prompts included")
    cards = ", ".join(available_cards())
    run.add_argument("--judge", help=f"judge card: a path or one of {cards} (default: "
                     "helpfulness; math_step for beam_search and dvts)")  # fmt: skip
    run.add_argument("--answer", choices=sorted(ANSWER_KEYS),
                     help="how answers are compared: majority_vote groups by it (default math); "
                     "best_of_n, beam_search and dvts become weighted by answer")  # fmt: skip
    run.add_argument("--keep", type=int, default=4, help="beam_search: survivors per step")
    run.add_argument("--subtrees", type=int, default=4, help="dvts: independent subtrees")
    run.add_argument("--max-steps", type=int, default=40, help="beam_search, dvts: most steps")
    run.add_argument("--rounds", type=int, default=3, help="refine: revision rounds")
    run.add_argument("--model", help="model name (default: $TTC_MODEL, or the server's only one)")
    run.add_argument("--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, "
                     "else the embedded local model)")  # fmt: skip
    run.add_argument("--continuation", choices=CONTINUATIONS, help="how steps continue (auto)")
    run.add_argument("--judge-model", help="a different model for the judge (same endpoint)")
    run.add_argument("--system", help="a system message to put before the prompt")
    run.add_argument("--temperature", type=float, default=0.8)
    run.add_argument("--max-tokens", type=int, default=None, help="longest candidate")
    run.add_argument("--retries", type=int, default=6, help="tries per call (default 6)")
    run.add_argument("--json", action="store_true", help="print the search record as JSON")
    run.add_argument("--out", help="also save the search record as JSON to this file (written "
                     "whole when the run ends; nothing is written when it fails)")  # fmt: skip
    evaluation = commands.add_parser(
        "eval", help="accuracy against budget on a maths data set, from one run at the largest n"
    )
    add_eval_arguments(evaluation)
    writing = commands.add_parser(
        "writing", help="writing-quality experiment: win rate of best-of-N/refine against n = 1"
    )
    add_writing_arguments(writing)
    agreement = commands.add_parser(
        "agreement", help="a judge's agreement with human-labelled answer pairs"
    )
    add_agreement_arguments(agreement)
    serve = commands.add_parser("serve", help="an OpenAI-compatible proxy that thinks harder")
    serve.add_argument("--upstream", required=True, help="the OpenAI-compatible endpoint")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=SERVE_PORT, help=f"default {SERVE_PORT}")
    serve.add_argument("--api-key", help="clients must send this key (required off loopback)")
    serve.add_argument("--upstream-key", help="the upstream's key (default: $OPENAI_API_KEY)")
    serve.add_argument("--max-n", type=int, default=32, help="the most candidates per request")
    serve.add_argument("--judge", default="helpfulness", help="judge card for the candidates")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ttc`` command."""
    args = _parser().parse_args(argv)
    err = Console(stderr=True)
    if args.command == "serve":
        return _serve(args, err)
    try:
        if args.command == "eval":
            print(eval_report(asyncio.run(run_eval(args, err)), args.out))
            return 0
        if args.command == "writing":
            print(writing_report(asyncio.run(run_writing(args, err)), args.out))
            return 0
        if args.command == "agreement":
            print(agreement_report(asyncio.run(run_agreement(args, err))))
            return 0
        result = asyncio.run(_run(args, err))
    except KeyboardInterrupt:
        err.print("ttc: interrupted")
        return 130
    except TTCError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        err.print(f"ttc: error: {escape(first_line)}", highlight=False, soft_wrap=True)
        return 2 if isinstance(exc, ConfigurationError) else 1
    if args.out:
        write_atomically(args.out, json.dumps(run_record(result), indent=2) + "\n")
    if args.json:
        print(json.dumps(run_record(result), indent=2))
    else:
        show_result(result, Console())
    return 0


async def _run(args: argparse.Namespace, err: Console) -> SearchResult:
    if args.effort and args.strategy:
        raise ConfigurationError("give --strategy or --effort, not both")
    args.strategy = args.strategy or ("think_harder" if args.effort else "best_of_n")
    if args.strategy not in (*STRATEGIES, "think_harder"):
        raise ConfigurationError(
            f"unknown strategy {args.strategy!r}; available: {', '.join(STRATEGIES)}"
        )
    if args.retries < 1:
        raise ConfigurationError(f"--retries must be at least 1, got {args.retries}")
    retry = RetryPolicy(attempts=args.retries, on_retry=_retry_notice(err))
    model = OpenAIChat(
        args.model, base_url=args.base_url, retry=retry, continuation=args.continuation
    )
    judge_model = model
    if args.judge_model or args.strategy in STEP_SEARCHES:  # step judges need logprobs
        judge_model = OpenAIChat(
            args.judge_model or args.model, base_url=args.base_url, retry=retry, logprobs=True
        )
    try:
        node = _node(args, model, judge_model)
        messages: list[BaseMessage] = [SystemMessage(args.system)] if args.system else []
        messages.append(HumanMessage(args.prompt))
        limits = {"calls": args.budget_calls, "total_tokens": args.budget_tokens}
        budget = {key: value for key, value in limits.items() if value is not None}
        config = {"configurable": {"ttc": {"budget": budget}}} if budget else {}
        final = None
        with ProgressBars(err) as bars:
            async for mode, chunk in node.graph.astream(
                {"messages": messages}, config, stream_mode=["custom", "values"]
            ):
                if mode == "values":
                    final = chunk
                elif isinstance(chunk, dict):
                    bars.update(chunk)
        return search_result(final)
    except SearchError as exc:
        raise exc.__cause__ if isinstance(exc.__cause__, TTCError) else exc from None
    finally:
        await model.aclose()
        if judge_model is not model:
            await judge_model.aclose()


def _retry_notice(err: Console) -> Callable[[int, int, str], None]:
    """Print each retry on stderr as it happens: ``retrying 2/6: answered 503``."""

    def notice(attempt: int, attempts: int, why: str) -> None:
        err.print(f"retrying {attempt}/{attempts}: {why}", highlight=False)

    return notice


def _version() -> str:
    try:
        return metadata.version("ttc-agent")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def _serve(args: argparse.Namespace, err: Console) -> int:
    """Run the proxy until interrupted."""
    import os
    import socket

    import uvicorn

    from ttc_agent.models.endpoint import check_base_url
    from ttc_agent.serve import ProxyConfig, create_app

    loopback = args.host in ("127.0.0.1", "localhost", "::1")
    if not loopback and not args.api_key:
        err.print(f"ttc: error: --api-key is required to serve on {args.host}", highlight=False)
        return 2
    try:
        load_card(args.judge)  # an unknown card is an error now, not on the first request
        check_base_url(args.upstream, "--upstream")
    except TTCError as exc:
        err.print(f"ttc: error: {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    if args.max_n < 1:
        err.print(f"ttc: error: --max-n must be at least 1, got {args.max_n}", highlight=False)
        return 2
    config = ProxyConfig(
        upstream=args.upstream,
        upstream_key=args.upstream_key or os.environ.get("OPENAI_API_KEY"),
        api_key=args.api_key,
        max_n=args.max_n,
        judge=args.judge,
    )
    try:  # bind before saying anything, so that a taken port is the one line printed
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        listening = socket.create_server((args.host, args.port), family=family)
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        err.print(f"ttc: error: cannot listen on {args.host}:{args.port}: {why}", highlight=False)
        return 1
    err.print(f"ttc serve: http://{args.host}:{args.port}/v1 -> {args.upstream}", highlight=False)
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning"))
    server.run(sockets=[listening])
    return 0


def _node(args: argparse.Namespace, model: OpenAIChat, judge_model: OpenAIChat) -> StrategyNode:
    """The strategy node the arguments ask for."""
    common = {"temperature": args.temperature}
    answer_key = ANSWER_KEYS[args.answer] if args.answer else None
    if args.strategy == "majority_vote":
        groups: dict[str, str | Callable[[str], str | None]] = {"number": last_number}
        answer = groups.get(args.answer or "math", args.answer or "math")
        return majority_vote(model, n=args.n, answer=answer, max_tokens=args.max_tokens, **common)
    if args.strategy in ("beam_search", "dvts"):
        card = load_card(args.judge or "math_step")
        if card.scale.points == [0, 1]:
            verifier: LLMStepJudge | RubricJudge = LLMStepJudge(judge_model, card)
        else:
            verifier = RubricJudge(card, judge_model)
        steps = {"max_steps": args.max_steps, "answer_key": answer_key, **common}
        if args.strategy == "dvts":
            return dvts(model, verifier, n=args.n, subtrees=args.subtrees, **steps)
        return beam_search(model, verifier, n=args.n, keep=args.keep, **steps)
    judge = RubricJudge(args.judge or "helpfulness", judge_model)
    if args.strategy == "think_harder":
        return think_harder(model, judge, effort=args.effort, max_tokens=args.max_tokens, **common)
    if args.strategy == "adaptive":
        rubric_model = judge_model if args.judge_model else model  # without logprobs: faster
        rubric = RubricJudge(args.judge or "helpfulness", rubric_model)
        return adaptive(
            model, rubric, answer_key=ANSWER_KEYS[args.answer or "number"],
            step_verifier=LLMStepJudge(judge_model), max_tokens=args.max_tokens, **common,
        )  # fmt: skip
    if args.strategy == "refine":
        return refine(model, judge, rounds=args.rounds, max_tokens=args.max_tokens, **common)
    return best_of_n(
        model, judge, n=args.n, max_tokens=args.max_tokens, answer_key=answer_key, **common
    )


if __name__ == "__main__":
    sys.exit(main())
