"""The seed's headline on a CPU: a small generator with test-time compute against a larger
model's greedy answers, on GSM8K.

The 0.5B embedded model samples ``--n`` answers per problem, verified by the 1.5B embedded model
(the logprob judge with the ``math_solution`` card, one verdict per whole solution); majority
vote, best-of-N and weighted best-of-N at every power of two up to ``--n`` come from prefixes of
those candidates (one run). The 1.5B model's own greedy answers are the bar to beat. Prints
accuracy, pass@n and tokens, and saves the plot with the 1.5B line on it.

    python benchmarks/small_beats_large.py [--problems 100] [--n 16] [--minutes 60]

Both runs resume from their folders under ``--out``; ``--minutes`` stops starting new problems
when the time is up (the figures are then over the problems finished).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from gsm8k_data import DATA

from ttc_agent import LLMStepJudge, OpenAIChat, StepsAsOutcome
from ttc_agent.evaluation import evaluate, load_problems, plot_sweep

INSTRUCTION = "\nSolve step by step and end with 'The answer is N.'"


async def main(count: int, n: int, minutes: float, max_tokens: int, out: Path) -> None:
    problems = load_problems(DATA, "gsm8k", limit=count)
    deadline = time.monotonic() + minutes * 60
    done: list = []
    async with (
        OpenAIChat(embedded="0.5b", timeout=900) as small,
        OpenAIChat(embedded="1.5b", timeout=900, logprobs=True) as large,
    ):
        verifier = StepsAsOutcome(LLMStepJudge(large, "math_solution"), delimiter=None)
        common = {"instruction": INSTRUCTION, "max_tokens": max_tokens, "plot": False}

        async def both(chosen: list) -> tuple:
            greedy = await evaluate(
                chosen, large, n=1, out=out / "large_greedy", temperature=0.0, **common
            )
            sampled = await evaluate(
                chosen, small, n=n, out=out / "small_sampled", verifier=verifier, **common
            )
            return greedy, sampled

        for problem in problems:  # one at a time, so that the time limit is kept
            if time.monotonic() > deadline:
                print(f"time is up after {len(done)} problems")
                break
            await both([problem])
            done.append(problem)
            print(f"[{len(done)}/{len(problems)}] {problem.id}", flush=True)
        if not done:
            return
        greedy, sampled = await both(done)  # everything is in the folders: only the summaries
    bar = greedy.accuracy("majority", 1)
    print(f"\nGSM8K, first {len(done)} test problems")
    print(f"1.5B greedy: {bar:.1%} ({greedy.points[0].tokens:.0f} tokens per problem)")
    print(f"0.5B sampled, verified by the 1.5B:\n{sampled.table()}")
    path = plot_sweep(
        sampled.points, out / "small_beats_large.png",
        title=f"GSM8K ({len(done)} problems): 0.5B + test-time compute vs 1.5B greedy",
        baselines={"1.5B greedy": bar},
    )  # fmt: skip
    print(f"plot saved to {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=100)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--max-tokens", type=int, default=320)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/small_beats_large"))
    args = parser.parse_args()
    asyncio.run(main(args.problems, args.n, args.minutes, args.max_tokens, args.out))
