"""The ``ttc`` command line.

    ttc run "PROMPT" --strategy best_of_n -n 8 --judge writing_quality [--model M] [--base-url URL]

Progress goes to stderr; the chosen answer and a table of the candidates (or, with ``--json``,
the whole search record) go to stdout. Errors are one line on stderr and a non-zero status.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from langchain_core.messages import HumanMessage, SystemMessage
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ttc_agent.errors import ConfigurationError, SearchError, TTCError
from ttc_agent.models import OpenAIChat, RetryPolicy
from ttc_agent.strategies import best_of_n, search_result
from ttc_agent.types import SearchResult
from ttc_agent.verifiers import RubricJudge, available_cards

STRATEGIES = ("best_of_n",)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ttc", description="Test-time compute for LLM answers.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="answer one prompt with a test-time-compute strategy")
    run.add_argument("prompt", help="the user prompt")
    run.add_argument("--strategy", default="best_of_n", help=f"one of: {', '.join(STRATEGIES)}")
    run.add_argument("-n", type=int, default=8, help="candidates to sample (default 8)")
    cards = ", ".join(available_cards())
    run.add_argument("--judge", default="helpfulness", help=f"judge card: a path or one of {cards}")
    run.add_argument("--model", help="model name (default: $TTC_MODEL, or the server's only one)")
    run.add_argument("--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, "
                     "else the embedded local model)")  # fmt: skip
    run.add_argument("--judge-model", help="a different model for the judge (same endpoint)")
    run.add_argument("--system", help="a system message to put before the prompt")
    run.add_argument("--temperature", type=float, default=0.8)
    run.add_argument("--max-tokens", type=int, default=None, help="longest candidate")
    run.add_argument("--retries", type=int, default=6, help="tries per call (default 6)")
    run.add_argument("--json", action="store_true", help="print the search record as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ttc`` command."""
    args = _parser().parse_args(argv)
    err = Console(stderr=True)
    try:
        result = asyncio.run(_run(args, err))
    except KeyboardInterrupt:
        err.print("ttc: interrupted")
        return 130
    except TTCError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        err.print(f"ttc: error: {escape(first_line)}", highlight=False, soft_wrap=True)
        return 2 if isinstance(exc, ConfigurationError) else 1
    out = Console(soft_wrap=True)
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        _show(result, out)
    return 0


async def _run(args: argparse.Namespace, err: Console) -> SearchResult:
    if args.strategy not in STRATEGIES:
        raise ConfigurationError(
            f"unknown strategy {args.strategy!r}; available: {', '.join(STRATEGIES)}"
        )
    if args.retries < 1:
        raise ConfigurationError(f"--retries must be at least 1, got {args.retries}")
    retry = RetryPolicy(attempts=args.retries)
    model = OpenAIChat(args.model, base_url=args.base_url, retry=retry)
    judge_model = model
    if args.judge_model:
        judge_model = OpenAIChat(args.judge_model, base_url=args.base_url, retry=retry)
    try:
        judge = RubricJudge(args.judge, judge_model)
        node = best_of_n(
            model, judge, n=args.n, temperature=args.temperature, max_tokens=args.max_tokens
        )
        messages = [SystemMessage(args.system)] if args.system else []
        messages.append(HumanMessage(args.prompt))
        with Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            bars = {
                "sampled": progress.add_task("sampling", total=args.n),
                "scored": progress.add_task("judging", total=args.n),
            }
            final = None
            async for mode, chunk in node.graph.astream(
                {"messages": messages}, stream_mode=["custom", "values"]
            ):
                if mode == "custom" and chunk.get("ttc") in bars:
                    progress.update(bars[chunk["ttc"]], completed=chunk["done"])
                elif mode == "values":
                    final = chunk
        return search_result(final)
    except SearchError as exc:
        raise exc.__cause__ if isinstance(exc.__cause__, TTCError) else exc from None
    finally:
        await model.aclose()
        if judge_model is not model:
            await judge_model.aclose()


def _show(result: SearchResult, console: Console) -> None:
    best = result.best
    console.print(best.text if best else "", markup=False, highlight=False)
    criteria = list(best.score.criteria) if best and best.score else []
    table = Table(
        title=f"{result.strategy}: {len(result.candidates)} candidates", title_justify="left"
    )
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    for name in criteria:
        table.add_column(name, justify="right")
    table.add_column("tokens", justify="right")
    table.add_column("text", no_wrap=True, overflow="ellipsis", min_width=12)
    for candidate in result.candidates:
        score = candidate.score
        mark = "*" if candidate.index == result.chosen else ""
        preview = " ".join(candidate.text.split())[:60]
        table.add_row(
            f"{mark}{candidate.index}",
            f"{score.value:.2f}" if score else "-",
            *[f"{score.criteria.get(name, 0):.2f}" if score else "-" for name in criteria],
            str(candidate.usage.completion_tokens),
            escape(preview),
        )
    console.print(table)
    usage = result.usage
    console.print(
        f"tokens: generation {usage.generation.total_tokens} ({usage.generation.calls} calls), "
        f"judging {usage.verification.total_tokens} ({usage.verification.calls} calls)",
        highlight=False,
    )


if __name__ == "__main__":
    sys.exit(main())
