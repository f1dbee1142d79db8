"""``ttc writing`` and ``ttc agreement``: the writing experiment (drafts chosen by a judge,
against n = 1) and a judge's agreement with human-labelled answer pairs."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ttc_agent.errors import ConfigurationError
from ttc_agent.evaluation.agreement import Agreement, agreement_table, judge_agreement, load_pairs
from ttc_agent.evaluation.command import ProgressBar, add_model_arguments, model_from
from ttc_agent.evaluation.plots import require_matplotlib
from ttc_agent.evaluation.writing import ARMS, WinRate, load_prompts, writing_experiment
from ttc_agent.models import RetryPolicy
from ttc_agent.verifiers import PairwiseJudge, RubricJudge


def add_writing_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``ttc writing`` arguments."""
    parser.add_argument("prompts", help="Arena-Hard, MT-Bench or a JSONL with a prompt field")
    parser.add_argument("--format", default="auto", help="arena_hard, mt_bench or jsonl")
    parser.add_argument("--field", default="prompt", help="the prompt's field in your JSONL")
    parser.add_argument("--limit", type=int, help="only the first LIMIT prompts")
    parser.add_argument("-n", type=int, default=8, help="the largest number of drafts")
    parser.add_argument(
        "--strategy",
        action="append",
        choices=ARMS,
        help="best_of_n (default) and/or refine; repeat for both",
    )
    parser.add_argument(
        "--selection-judge", default="writing_quality", help="card of the judge that picks drafts"
    )
    parser.add_argument(
        "--selection",
        choices=["best", "tournament"],
        default="best",
        help="pick the best-scored draft (default), or the winner of a knockout among the "
        "drafts under the selection judge's card, pairwise",
    )
    parser.add_argument(
        "--evaluation-judge",
        default="writing_quality",
        help="card of the pairwise judge that compares with n = 1",
    )
    parser.add_argument("--out", required=True, help="the run's folder; rerun to resume")
    add_model_arguments(parser)
    parser.add_argument("--concurrency", type=int, default=2, help="prompts in flight")


def add_agreement_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``ttc agreement`` arguments."""
    parser.add_argument("pairs", help="JSON or JSONL pairs: input, output_1, output_2, label")
    parser.add_argument(
        "--judge",
        action="append",
        help="a judge card; repeat for several (default: writing_quality)",
    )
    parser.add_argument(
        "--judge-embedded",
        action="append",
        choices=["0.5b", "1.5b"],
        help="judge with this embedded model; repeat for several",
    )
    parser.add_argument("--model", help="judge model on --base-url (default: $TTC_MODEL)")
    parser.add_argument(
        "--base-url",
        help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, else the embedded model)",
    )
    parser.add_argument("--limit", type=int, help="only the first LIMIT pairs")
    parser.add_argument("--out", help="save verdicts and the table here; rerun to resume")
    parser.add_argument("--concurrency", type=int, default=4, help="pairs in flight")


async def run_writing(args: argparse.Namespace, err: Console) -> list[WinRate]:
    """Run the writing experiment the arguments describe."""
    require_matplotlib()
    prompts = load_prompts(args.prompts, args.format, field=args.field, limit=args.limit)
    if not prompts:
        raise ConfigurationError(f"{args.prompts} holds no prompts")
    retry = RetryPolicy(attempts=max(1, args.retries))
    model = model_from(args.model, args.base_url, args.embedded, retry)
    judge_model = model_from(
        args.judge_model or args.model, args.base_url, args.judge_embedded, retry
    )
    try:
        with ProgressBar(err, "prompts", len(prompts)) as update:
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
                tournament=(
                    PairwiseJudge(args.selection_judge, judge_model)
                    if args.selection == "tournament"
                    else None
                ),
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
        model_from(args.model, args.base_url, embedded, retry)
        for embedded in (args.judge_embedded or [None])
    ]
    try:
        judges = [
            PairwiseJudge(card, m) for card in args.judge or ["writing_quality"] for m in models
        ]
        with ProgressBar(err, "pairs", len(pairs)) as update:
            return await judge_agreement(
                pairs, judges, out=args.out, concurrency=args.concurrency, on_pair=update
            )
    finally:
        for m in models:
            await m.aclose()


def writing_report(rates: list[WinRate], out: str) -> str:
    """What ``ttc writing`` prints when done."""
    header = f"{'strategy':<10} {'n':>3} {'win rate':>9} {'95% interval':>16} {'LC':>7}"
    lines = [f"{header} {'judges agree':>13}"]
    for r in rates:
        interval = f"{r.low:.0%} to {r.high:.0%}"
        agree = "-" if r.agreement is None else f"{r.agreement:.0%}"
        lines.append(
            f"{r.strategy:<10} {r.n:>3} {r.win_rate:>9.1%} {interval:>16} "
            f"{r.length_controlled:>7.1%} {agree:>13}"
        )
    return "\n".join(lines) + f"\nreport: {out}/report.md"


def agreement_report(results: list[Agreement]) -> str:
    """What ``ttc agreement`` prints when done."""
    return agreement_table(results)
