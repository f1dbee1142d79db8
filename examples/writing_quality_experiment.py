"""A small writing-quality experiment, end to end, on the embedded local model.

Three MT-Bench writing prompts; best-of-N and sequential revision (refine) at n = 1, 2, 4; the
``writing_quality`` rubric judge picks drafts, and a pairwise judge on the same card compares
each choice with the first plain draft in both orders. Writes ``report.md`` (win rates with 95 %
intervals, length-controlled win rates, lengths, tokens) and ``win_rate.png``.

    python examples/writing_quality_experiment.py [OUT] [--prompts 3] [--n 4] [--judge 1.5b]

The 0.5B model is a demo: far too small a judge to tell you anything about writing. Point it at
a real endpoint (OPENAI_BASE_URL, TTC_MODEL) and use more prompts for a real experiment; rerun
with the same OUT to resume.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from ttc_agent import OpenAIChat, PairwiseJudge, RubricJudge
from ttc_agent.evaluation.writing import load_prompts, writing_experiment

DATA = Path(__file__).resolve().parents[1] / "data" / "mt_bench_questions.jsonl"


async def main(out: Path, count: int, n: int, judge: str | None, max_tokens: int) -> None:
    prompts = load_prompts(DATA, categories=["writing"], limit=count)
    async with OpenAIChat(timeout=900) as model:
        judge_model = OpenAIChat(embedded=judge, timeout=900) if judge else model
        try:
            rates = await writing_experiment(
                prompts,
                model,
                selection=RubricJudge("writing_quality", judge_model, max_tokens=400),
                evaluation=PairwiseJudge("writing_quality", judge_model),
                n=n,
                out=out,
                strategies=["best_of_n", "refine"],
                max_tokens=max_tokens,
                on_prompt=lambda done, total: print(f"prompt {done}/{total} done", flush=True),
            )
        finally:
            if judge_model is not model:
                await judge_model.aclose()
    for rate in rates:
        print(f"{rate.strategy:<10} n={rate.n}: win rate {rate.win_rate:.0%} "
              f"({rate.low:.0%} to {rate.high:.0%}), length-controlled "
              f"{rate.length_controlled:.0%}, {rate.words:.0f} words")  # fmt: skip
    print(f"report: {out / 'report.md'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=Path("runs/writing_example"))
    parser.add_argument("--prompts", type=int, default=3)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--judge", choices=["0.5b", "1.5b"], help="a separate embedded judge")
    parser.add_argument("--max-tokens", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.out, args.prompts, args.n, args.judge, args.max_tokens))
