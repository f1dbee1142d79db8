"""``ttc eval``: an accuracy-against-budget sweep from the command line.

ttc eval data/gsm8k_test.jsonl --limit 50 -n 16 --judge math_step --out runs/gsm8k
ttc eval mine.jsonl --question-field q --answer-field a -n 8 --no-judge --out runs/mine
ttc eval data/math500.jsonl -n 8 --judge-embedded 1.5b --out runs/math
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
from ttc_agent.evaluation.agreement import (
    Agreement,
    agreement_table,
    judge_agreement,
    load_pairs,
)
from ttc_agent.evaluation.datasets import MATH_INSTRUCTION, load_problems
from ttc_agent.evaluation.plots import require_matplotlib
from ttc_agent.evaluation.run import SearchFactory, Summary, evaluate
from ttc_agent.evaluation.writing import STRATEGIES, WinRate, load_prompts, writing_experiment
from ttc_agent.models import OpenAIChat, RetryPolicy
from ttc_agent.models.continuation import CONTINUATIONS, Continuation
from ttc_agent.protocols import Verifier
from ttc_agent.strategies import beam_search, dvts
from ttc_agent.verifiers import (
    LLMStepJudge,
    PairwiseJudge,
    RubricJudge,
    StepsAsOutcome,
    load_card,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``ttc eval`` arguments."""
    parser.add_argument("data", help="a JSONL file: GSM8K, MATH-500 or your own")
    parser.add_argument("--format", default="auto", help="gsm8k, math500 or jsonl (default: "
                        "from the file name)")  # fmt: skip
    parser.add_argument("--question-field", help="the question's field in your JSONL")
    parser.add_argument("--answer-field", help="the gold answer's field in your JSONL")
    parser.add_argument("--id-field", help="an id field (default: the line number)")
    parser.add_argument("--limit", type=int, help="only the first LIMIT problems")
    parser.add_argument("-n", type=int, default=16, help="the largest n (default 16); every "
                        "smaller power of two is measured from prefixes")  # fmt: skip
    parser.add_argument("--out", required=True, help="the run's folder; rerun to resume")
    parser.add_argument("--judge", help="judge card of the verifier (default: math_solution "
                        "on whole solutions, math_step on --search steps)")  # fmt: skip
    parser.add_argument("--no-judge", action="store_true", help="no verifier: majority, pass@n")
    parser.add_argument("--search", action="append", choices=["beam_search", "dvts"],
                        help="also run this step search at every budget, guided by the judge "
                        "as a step verifier; repeat for both")  # fmt: skip
    parser.add_argument("--keep", type=int, default=4, help="beam_search: survivors per step")
    parser.add_argument("--subtrees", type=int, default=4, help="dvts: independent subtrees")
    parser.add_argument("--answer", choices=["math", "number"], default="math",
                        help="how answers are grouped (default: math-verify)")  # fmt: skip
    _model_arguments(parser)
    parser.add_argument("--continuation", choices=CONTINUATIONS, help="how steps continue")
    parser.add_argument("--concurrency", type=int, default=4, help="problems in flight")
    parser.add_argument("--instruction", default=MATH_INSTRUCTION, help="appended to questions")


async def run(args: argparse.Namespace, err: Console) -> Summary:
    """Run the sweep the arguments describe, with a progress bar on ``err``."""
    require_matplotlib()  # the optional packages the run ends with, checked before it starts
    if args.answer == "math":
        require_math_verify()
    problems = load_problems(
        args.data, args.format, question=args.question_field, answer=args.answer_field,
        id=args.id_field, limit=args.limit,
    )  # fmt: skip
    if not problems:
        raise ConfigurationError(f"{args.data} holds no problems")
    retry = RetryPolicy(attempts=max(1, args.retries))
    model = _model(args.model, args.base_url, args.embedded, retry, continuation=args.continuation)
    judge_model = None
    if not args.no_judge:
        judge_model = _model(
            args.judge_model or args.model, args.base_url, args.judge_embedded, retry, logprobs=True
        )
    if args.search and judge_model is None:
        raise ConfigurationError("--search needs a judge to guide the steps; drop --no-judge")
    try:
        verifier = _verifier(args.judge or "math_solution", judge_model) if judge_model else None
        searches = _searches(args, model, judge_model) if args.search and judge_model else None
        if searches:  # a server that cannot continue steps: one error now, not one per problem
            await model.check_continuation()
        with Progress(
            TextColumn("problems"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, transient=True,
        ) as progress:  # fmt: skip
            bar = progress.add_task("problems", total=len(problems))
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
                on_problem=lambda _, done, total: progress.update(bar, completed=done),
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


def _model(
    name: str | None,
    base_url: str | None,
    embedded: str | None,
    retry: RetryPolicy,
    *,
    logprobs: bool | None = None,
    continuation: Continuation | None = None,
) -> OpenAIChat:
    make = partial(OpenAIChat, retry=retry, logprobs=logprobs, continuation=continuation)
    return make(name, embedded=embedded) if embedded else make(name, base_url=base_url)


def _searches(
    args: argparse.Namespace, model: OpenAIChat, judge_model: OpenAIChat
) -> dict[str, SearchFactory]:
    card = load_card(args.judge or "math_step")
    steps = LLMStepJudge(judge_model, card) if card.scale.points == [0, 1] else None
    verifier = steps or RubricJudge(card, judge_model)
    options = {"temperature": args.temperature, "answer_key": last_number}
    factories: dict[str, SearchFactory] = {
        "beam_search": lambda n: beam_search(
            model, verifier, n=n, keep=math.gcd(n, args.keep), **options
        ),
        "dvts": lambda n: dvts(
            model, verifier, n=n, subtrees=math.gcd(n, args.subtrees), **options
        ),
    }
    return {name: factories[name] for name in args.search}


def _verifier(card_name: str, model: OpenAIChat) -> Verifier:
    card = load_card(card_name)
    if card.scale.points == [0, 1]:  # a 0..1 card: the logprob judge, one verdict per solution
        return StepsAsOutcome(LLMStepJudge(model, card), delimiter=None)
    return RubricJudge(card, model)


def add_writing_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``ttc writing`` arguments."""
    parser.add_argument("prompts", help="Arena-Hard, MT-Bench or a JSONL with a prompt field")
    parser.add_argument("--format", default="auto", help="arena_hard, mt_bench or jsonl")
    parser.add_argument("--field", default="prompt", help="the prompt's field in your JSONL")
    parser.add_argument("--limit", type=int, help="only the first LIMIT prompts")
    parser.add_argument("-n", type=int, default=8, help="the largest number of drafts")
    parser.add_argument("--strategy", action="append", choices=STRATEGIES,
                        help="best_of_n (default) and/or refine; repeat for both")  # fmt: skip
    parser.add_argument("--selection-judge", default="writing_quality",
                        help="card of the judge that picks drafts")  # fmt: skip
    parser.add_argument("--evaluation-judge", default="writing_quality",
                        help="card of the pairwise judge that compares with n = 1")  # fmt: skip
    parser.add_argument("--out", required=True, help="the run's folder; rerun to resume")
    _model_arguments(parser)
    parser.add_argument("--concurrency", type=int, default=2, help="prompts in flight")


def add_agreement_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``ttc agreement`` arguments."""
    parser.add_argument("pairs", help="JSON or JSONL pairs: input, output_1, output_2, label")
    parser.add_argument("--judge", action="append", help="a judge card; repeat for several "
                        "(default: writing_quality)")  # fmt: skip
    parser.add_argument("--judge-embedded", action="append", choices=["0.5b", "1.5b"],
                        help="judge with this embedded model; repeat for several")  # fmt: skip
    parser.add_argument("--model", help="judge model on --base-url (default: $TTC_MODEL)")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint (default: "
                        "$OPENAI_BASE_URL, else the embedded model)")  # fmt: skip
    parser.add_argument("--limit", type=int, help="only the first LIMIT pairs")
    parser.add_argument("--out", help="save verdicts and the table here; rerun to resume")
    parser.add_argument("--concurrency", type=int, default=4, help="pairs in flight")


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model name (default: $TTC_MODEL, or the server's only)")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint (default: "
                        "$OPENAI_BASE_URL, else the embedded model)")  # fmt: skip
    parser.add_argument("--embedded", choices=["0.5b", "1.5b"], help="generate with this "
                        "embedded model")  # fmt: skip
    parser.add_argument("--judge-model", help="a different judge model on the same endpoint")
    parser.add_argument("--judge-embedded", choices=["0.5b", "1.5b"], help="judge with this "
                        "embedded model")  # fmt: skip
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--max-tokens", type=int, help="longest draft")
    parser.add_argument("--retries", type=int, default=6, help="tries per call (default 6)")


async def run_writing(args: argparse.Namespace, err: Console) -> list[WinRate]:
    """Run the writing experiment the arguments describe."""
    require_matplotlib()
    prompts = load_prompts(args.prompts, args.format, field=args.field, limit=args.limit)
    if not prompts:
        raise ConfigurationError(f"{args.prompts} holds no prompts")
    retry = RetryPolicy(attempts=max(1, args.retries))
    model = _model(args.model, args.base_url, args.embedded, retry)
    judge_model = _model(args.judge_model or args.model, args.base_url, args.judge_embedded,
                         retry)  # fmt: skip
    try:
        with _bar(err, "prompts", len(prompts)) as update:
            return await writing_experiment(
                prompts,
                model,
                selection=RubricJudge(args.selection_judge, judge_model),
                evaluation=PairwiseJudge(args.evaluation_judge, judge_model),
                n=args.n,
                out=Path(args.out),
                strategies=args.strategy or ["best_of_n"],
                temperature=args.temperature,
                max_tokens=args.max_tokens,
                concurrency=args.concurrency,
                on_prompt=update,
            )
    finally:
        await model.aclose()
        await judge_model.aclose()


async def run_agreement(args: argparse.Namespace, err: Console) -> list[Agreement]:
    """Measure the judges' agreement with the human labels."""
    pairs = load_pairs(args.pairs, limit=args.limit)
    if not pairs:
        raise ConfigurationError(f"{args.pairs} holds no pairs")
    retry = RetryPolicy(attempts=6)
    models = [
        _model(args.model, args.base_url, embedded, retry)
        for embedded in (args.judge_embedded or [None])
    ]
    try:
        judges = [PairwiseJudge(card, m) for card in args.judge or ["writing_quality"]
                  for m in models]  # fmt: skip
        with _bar(err, "pairs", len(pairs)) as update:
            return await judge_agreement(
                pairs, judges, out=args.out, concurrency=args.concurrency, on_pair=update
            )
    finally:
        for m in models:
            await m.aclose()


def writing_report(rates: list[WinRate], out: str) -> str:
    """What ``ttc writing`` prints when done."""
    lines = [f"{'strategy':<10} {'n':>3} {'win rate':>9} {'95% interval':>16} {'LC':>7}"]
    for r in rates:
        interval = f"{r.low:.0%} to {r.high:.0%}"
        lines.append(f"{r.strategy:<10} {r.n:>3} {r.win_rate:>9.1%} {interval:>16} "
                     f"{r.length_controlled:>7.1%}")  # fmt: skip
    return "\n".join(lines) + f"\nreport: {out}/report.md"


def agreement_report(results: list[Agreement]) -> str:
    """What ``ttc agreement`` prints when done."""
    return agreement_table(results)


class _bar:
    """A progress bar on stderr; the context value is an ``(done, total)`` callback."""

    def __init__(self, err: Console, label: str, total: int) -> None:
        self.progress = Progress(
            TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, transient=True,
        )  # fmt: skip
        self.task = self.progress.add_task(label, total=total)

    def __enter__(self) -> Callable[[int, int], None]:
        self.progress.__enter__()
        return lambda done, total: self.progress.update(self.task, completed=done)

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)
