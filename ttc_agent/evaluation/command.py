"""``ttc eval``: an accuracy-against-budget sweep from the command line.

ttc eval data/gsm8k_test.jsonl --limit 50 -n 16 --judge math_step --out runs/gsm8k
ttc eval mine.jsonl --question-field q --answer-field a -n 8 --no-judge --out runs/mine
ttc eval data/math500.jsonl -n 8 --judge-embedded 1.5b --out runs/math

The models and progress bars here serve ``ttc writing`` and ``ttc agreement`` too
(``judging_commands``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ttc_agent.answers import last_number, require_math_verify
from ttc_agent.errors import ConfigurationError
from ttc_agent.evaluation.datasets import MATH_INSTRUCTION, load_problems
from ttc_agent.evaluation.plots import require_matplotlib
from ttc_agent.evaluation.run import SearchFactory, Summary, evaluate
from ttc_agent.models import OpenAIChat, RetryPolicy
from ttc_agent.models.continuation import CONTINUATIONS, Continuation
from ttc_agent.protocols import Parts
from ttc_agent.strategies import StrategyNode, registry
from ttc_agent.verifiers.from_card import step_verifier_for, verifier_for


def step_searches() -> list[str]:
    """The registered strategies that search step by step: they have no prefixes to read off
    one run, so ``--search`` runs them once per budget.

    Example:
        >>> step_searches()
        ['beam_search', 'dvts', 'particle_filter']
    """
    return [row.name for row in registry.strategies() if row.grows_steps]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``ttc eval`` arguments."""
    parser.add_argument("data", help="a JSONL file: GSM8K, MATH-500 or your own")
    parser.add_argument(
        "--format", default="auto", help="gsm8k, math500 or jsonl (default: from the file name)"
    )
    parser.add_argument("--question-field", help="the question's field in your JSONL")
    parser.add_argument("--answer-field", help="the gold answer's field in your JSONL")
    parser.add_argument("--id-field", help="an id field (default: the line number)")
    parser.add_argument("--limit", type=int, help="only the first LIMIT problems")
    parser.add_argument(
        "-n",
        type=int,
        default=16,
        help="the largest n (default 16); every smaller power of two is measured from prefixes",
    )
    parser.add_argument("--out", required=True, help="the run's folder; rerun to resume")
    parser.add_argument(
        "--judge",
        help="judge card of the verifier (default: math_solution on whole solutions, math_step "
        "on --search steps)",
    )
    parser.add_argument("--no-judge", action="store_true", help="no verifier: majority, pass@n")
    parser.add_argument(
        "--search",
        action="append",
        choices=step_searches(),
        help="also run this step search at every budget, guided by the judge as a step "
        "verifier; repeat for several",
    )
    parser.add_argument("--keep", type=int, default=4, help="beam_search: survivors per step")
    parser.add_argument("--subtrees", type=int, default=4, help="dvts: independent subtrees")
    parser.add_argument(
        "--answer",
        choices=["math", "number"],
        default="math",
        help="how answers are grouped (default: math-verify)",
    )
    add_model_arguments(parser)
    parser.add_argument("--continuation", choices=CONTINUATIONS, help="how steps continue")
    parser.add_argument("--concurrency", type=int, default=4, help="problems in flight")
    parser.add_argument("--instruction", default=MATH_INSTRUCTION, help="appended to questions")


async def run(args: argparse.Namespace, err: Console) -> Summary:
    """Run the sweep the arguments describe, with a progress bar on ``err``."""
    require_matplotlib()  # the optional packages the run ends with, checked before it starts
    if args.answer == "math":
        require_math_verify()
    problems = load_problems(
        args.data,
        args.format,
        question=args.question_field,
        answer=args.answer_field,
        id=args.id_field,
        limit=args.limit,
    )
    if not problems:
        raise ConfigurationError(f"{args.data} holds no problems")
    retry = RetryPolicy(attempts=max(1, args.retries))
    model = model_from(
        args.model, args.base_url, args.embedded, retry, continuation=args.continuation
    )
    judge_model = None
    if not args.no_judge:
        judge_model = model_from(
            args.judge_model or args.model, args.base_url, args.judge_embedded, retry, logprobs=True
        )
    if args.search and judge_model is None:
        raise ConfigurationError("--search needs a judge to guide the steps; drop --no-judge")
    try:
        verifier = verifier_for(args.judge or "math_solution", judge_model) if judge_model else None
        searches = _searches(args, model, judge_model) if args.search and judge_model else None
        if searches:  # a server that cannot continue steps: one error now, not one per problem
            await model.check_continuation()
        with ProgressBar(err, "problems", len(problems)) as update:
            return await evaluate(
                problems,
                model,
                n=args.n,
                out=Path(args.out),
                verifier=verifier,
                answer="math" if args.answer == "math" else last_number,
                instruction=args.instruction,
                temperature=args.temperature,
                max_tokens=args.max_tokens,
                concurrency=args.concurrency,
                on_problem=lambda _, done, total: update(done, total),
                searches=searches,
            )
    finally:
        await model.aclose()
        if judge_model is not None:
            await judge_model.aclose()


def report(summary: Summary, out: str) -> str:
    """What ``ttc eval`` prints when done."""
    failed = ""
    if summary.failed:
        failed = f"\n{len(summary.failed)} problems failed (rerun to retry): " + ", ".join(
            sorted(summary.failed)[:10]
        )
    return (
        f"{summary.problems} problems, model {summary.settings['model']}, verifier "
        f"{summary.settings['verifier'] or 'none'}\n{summary.table()}{failed}\n"
        f"rows: {out}/candidates.jsonl  summary: {out}/summary.json  plot: {out}/accuracy.png"
    )


def model_from(
    name: str | None,
    base_url: str | None,
    embedded: str | None,
    retry: RetryPolicy,
    *,
    logprobs: bool | None = None,
    continuation: Continuation | None = None,
) -> OpenAIChat:
    """The model the arguments name: an embedded one, or one on ``base_url``."""
    make = partial(OpenAIChat, retry=retry, logprobs=logprobs, continuation=continuation)
    return make(name, embedded=embedded) if embedded else make(name, base_url=base_url)


def _searches(
    args: argparse.Namespace, model: OpenAIChat, judge_model: OpenAIChat
) -> dict[str, SearchFactory]:
    """Each ``--search`` strategy from the registry, as a node for each budget ``k``: ``k``
    solutions, and ``--keep`` and ``--subtrees`` where it has them (shrunk to divide ``k``)."""
    parts = Parts(
        model,
        step_verifier=step_verifier_for(args.judge or "math_step", judge_model),
        answer_key=last_number,
    )

    def factory(row: registry.Strategy[Any]) -> SearchFactory:
        def node(k: int) -> StrategyNode[Any]:
            values = {"n": k, "temperature": args.temperature}
            values |= {"keep": math.gcd(k, args.keep), "subtrees": math.gcd(k, args.subtrees)}
            return row.node(parts, values)

        return node

    return {name: factory(registry.strategy(name)) for name in args.search}


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model arguments every evaluation command takes."""
    parser.add_argument("--model", help="model name (default: $TTC_MODEL, or the server's only)")
    parser.add_argument(
        "--base-url",
        help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, else the embedded model)",
    )
    parser.add_argument(
        "--embedded", choices=["0.5b", "1.5b"], help="generate with this embedded model"
    )
    parser.add_argument("--judge-model", help="a different judge model on the same endpoint")
    parser.add_argument(
        "--judge-embedded", choices=["0.5b", "1.5b"], help="judge with this embedded model"
    )
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--max-tokens", type=int, help="longest draft")
    parser.add_argument("--retries", type=int, default=6, help="tries per call (default 6)")


class ProgressBar:
    """A progress bar on stderr; the context value is a ``(done, total)`` callback."""

    def __init__(self, err: Console, label: str, total: int) -> None:
        columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        self.progress = Progress(*columns, console=err, transient=True)
        self.task = self.progress.add_task(label, total=total)

    def __enter__(self) -> Callable[[int, int], None]:
        self.progress.__enter__()
        return lambda done, total: self.progress.update(self.task, completed=done)

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)
