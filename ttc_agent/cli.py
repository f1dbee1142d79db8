"""The ``ttc`` command line.

    ttc run "PROMPT" --strategy best_of_n -n 8 --judge writing_quality [--model M] [--base-url URL]
    ttc run "PROMPT" --strategy majority_vote -n 8 --answer number
    ttc run "PROMPT" --strategy beam_search -n 8 --keep 2 --judge math_step
    ttc run "PROMPT" --out result.json      # also save the search record
    ttc eval data/gsm8k_test.jsonl --limit 50 -n 16 --out runs/gsm8k
    ttc eval data/gsm8k_test.jsonl --limit 50 -n 16 --fit-policy --out runs/fit
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
from collections.abc import Sequence
from importlib import metadata

from rich.console import Console
from rich.markup import escape

from ttc_agent.answers import boxed_answer, last_number, normalize
from ttc_agent.display import run_record, show_result
from ttc_agent.errors import ConfigurationError, TTCError
from ttc_agent.evaluation.command import add_arguments as add_eval_arguments
from ttc_agent.evaluation.command import report as eval_report
from ttc_agent.evaluation.command import run as run_eval
from ttc_agent.evaluation.judging_commands import (
    add_agreement_arguments,
    add_writing_arguments,
    agreement_report,
    run_agreement,
    run_writing,
    writing_report,
)
from ttc_agent.files import write_atomically
from ttc_agent.run_command import add_run_arguments, run_prompt
from ttc_agent.verifiers import load_card

ANSWER_KEYS = {"math": boxed_answer, "exact": normalize, "number": last_number}
SERVE_PORT = 8400  # not 8000, where vLLM and many other servers listen by default


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ttc", description="Test-time compute for LLM answers.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="answer one prompt with a test-time-compute strategy")
    add_run_arguments(run)
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
    if list(sys.argv[1:] if argv is None else argv) == ["--version"]:
        print(f"ttc {_version()}")  # answered before the parser imports every strategy
        return 0
    args = _parser().parse_args(argv)
    err = Console(stderr=True)
    if args.command == "serve":
        return _serve(args, err)
    try:
        if args.command == "eval":
            summary, policy = asyncio.run(run_eval(args, err))
            print(eval_report(summary, args.out, policy))
            return 0
        if args.command == "writing":
            print(writing_report(asyncio.run(run_writing(args, err)), args.out))
            return 0
        if args.command == "agreement":
            print(agreement_report(asyncio.run(run_agreement(args, err))))
            return 0
        result = asyncio.run(run_prompt(args, err))
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


if __name__ == "__main__":
    sys.exit(main())
