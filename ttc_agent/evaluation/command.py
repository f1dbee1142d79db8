"""``ttc eval``: an accuracy-against-budget sweep from the command line.

ttc eval ../shared/data/gsm8k_test.jsonl --limit 50 -n 16 --judge math_step --out runs/gsm8k
ttc eval mine.jsonl --question-field q --answer-field a -n 8 --no-judge --out runs/mine
ttc eval ../shared/data/math500.jsonl -n 8 --judge-embedded 1.5b --out runs/math
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ttc_agent.answers import last_number
from ttc_agent.errors import ConfigurationError
from ttc_agent.evaluation.datasets import MATH_INSTRUCTION, load_problems
from ttc_agent.evaluation.run import Summary, evaluate
from ttc_agent.models import OpenAIChat, RetryPolicy
from ttc_agent.verifiers import LLMStepJudge, RubricJudge, StepsAsOutcome, load_card
from ttc_agent.verifiers.protocol import Verifier


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
    parser.add_argument("--judge", default="math_step", help="judge card of the verifier "
                        "(default math_step, the logprob step judge)")  # fmt: skip
    parser.add_argument("--no-judge", action="store_true", help="no verifier: majority, pass@n")
    parser.add_argument("--answer", choices=["math", "number"], default="math",
                        help="how answers are grouped (default: math-verify)")  # fmt: skip
    parser.add_argument("--model", help="model name (default: $TTC_MODEL, or the server's only)")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint (default: "
                        "$OPENAI_BASE_URL, else the embedded model)")  # fmt: skip
    parser.add_argument("--embedded", choices=["0.5b", "1.5b"], help="generate with this "
                        "embedded model")  # fmt: skip
    parser.add_argument("--judge-model", help="a different judge model on the same endpoint")
    parser.add_argument("--judge-embedded", choices=["0.5b", "1.5b"], help="judge with this "
                        "embedded model (e.g. 1.5b beside a 0.5b generator)")  # fmt: skip
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--max-tokens", type=int, help="longest candidate")
    parser.add_argument("--concurrency", type=int, default=4, help="problems in flight")
    parser.add_argument("--instruction", default=MATH_INSTRUCTION, help="appended to questions")
    parser.add_argument("--retries", type=int, default=6, help="tries per call (default 6)")


async def run(args: argparse.Namespace, err: Console) -> Summary:
    """Run the sweep the arguments describe, with a progress bar on ``err``."""
    problems = load_problems(
        args.data, args.format, question=args.question_field, answer=args.answer_field,
        id=args.id_field, limit=args.limit,
    )  # fmt: skip
    if not problems:
        raise ConfigurationError(f"{args.data} holds no problems")
    retry = RetryPolicy(attempts=max(1, args.retries))
    model = _model(args.model, args.base_url, args.embedded, retry)
    judge_model = None
    if not args.no_judge:
        judge_model = _model(
            args.judge_model or args.model, args.base_url, args.judge_embedded, retry, logprobs=True
        )
    try:
        verifier = _verifier(args.judge, judge_model) if judge_model else None
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
) -> OpenAIChat:
    if embedded:
        return OpenAIChat(name, embedded=embedded, retry=retry, logprobs=logprobs)
    return OpenAIChat(name, base_url=base_url, retry=retry, logprobs=logprobs)


def _verifier(card_name: str, model: OpenAIChat) -> Verifier:
    card = load_card(card_name)
    if card.scale.points == [0, 1]:  # a step card: the logprob step judge on whole solutions
        return StepsAsOutcome(LLMStepJudge(model, card))
    return RubricJudge(card, model)
