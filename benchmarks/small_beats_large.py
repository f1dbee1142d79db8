"""The seed's headline on a CPU: a small generator with test-time compute against a larger
model's greedy answers, on GSM8K, with every verifier of issue 16.

The 0.5B embedded model samples ``--n`` answers per problem once; the 1.5B embedded model
verifies them three ways, each selection read off prefixes of the same candidates:

- ``one_token``: the ``math_solution`` card's one-token verdict on each whole solution (P(1) from
  its logprobs): best-of-N (``naive``) and ``weighted``;
- ``resolve``: the ``math_resolve`` card, which solves the problem itself and compares final
  answers before its verdict, read after the reasoning (the stored candidates re-scored):
  ``naive:resolve`` and ``weighted:resolve``;
- ``tournament``: a knockout among the first k candidates under the debiased pairwise judge
  (``math_solution``'s rubric, both orders, probabilities averaged), ties to the one-token
  score.

Majority vote and pass@n need no verifier. The 1.5B's own greedy answers are the bar. Prints
every selection's accuracy at every n, each verifier's AUROC with its 95 % interval, and saves the
plot with the 1.5B line on it.

    python benchmarks/small_beats_large.py [--problems 20] [--n 8] [--minutes 600]

Every part resumes from its folder under ``--out`` (``large_greedy``, ``small_sampled``,
``small_resolve``, ``tournament``); ``--minutes`` stops starting new problems when the time is
up (the figures are then over the problems finished). ``--base-url`` with ``--small`` and
``--large`` runs it against other models.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from contextlib import AsyncExitStack
from pathlib import Path

from gsm8k_data import DATA

from ttc_agent import LLMStepJudge, OpenAIChat, PairwiseJudge, StepsAsOutcome
from ttc_agent.evaluation import Point, Summary, budgets, evaluate, load_problems, plot_sweep
from ttc_agent.evaluation.rescore import rescore
from ttc_agent.evaluation.rows import read_rows
from ttc_agent.evaluation.tournaments import Matches

INSTRUCTION = "\nSolve step by step and end with 'The answer is N.'"
VERIFIERS = ("one_token", "resolve", "tournament")


async def tournament_points(problems: list, out: Path, judge: PairwiseJudge, n: int) -> list:
    """The tournament's accuracy at every budget, over the sampled candidates (matches kept in
    ``out/tournament/matches.jsonl``)."""
    matches = Matches(out / "tournament" / "matches.jsonl", judge)
    rows = read_rows(out / "small_sampled" / "candidates.jsonl")
    right: dict[int, list[bool]] = {k: [] for k in budgets(n)}
    for problem in problems:
        mine = sorted((r for r in rows if r["problem"] == problem.id), key=lambda r: r["index"])
        prompt = [{"role": "user", "content": problem.question + INSTRUCTION}]
        for k in budgets(n):
            texts, scores = [r["text"] for r in mine[:k]], [r["score"] for r in mine[:k]]
            bracket = await matches.tournament(problem.id, prompt, texts, scores)
            right[k].append(mine[bracket.champion]["correct"])
    return [Point("tournament", k, sum(v) / len(v), 0.0) for k, v in right.items() if v]


async def main(args: argparse.Namespace) -> None:
    problems = load_problems(DATA, "gsm8k", limit=args.problems)
    deadline = time.monotonic() + args.minutes * 60
    out, done = args.out, []
    async with AsyncExitStack() as stack:
        if args.base_url:
            small = OpenAIChat(args.small, base_url=args.base_url, api_key="k", timeout=900)
            large = OpenAIChat(args.large, base_url=args.base_url, api_key="k", timeout=900)
        else:
            small = OpenAIChat(embedded="0.5b", timeout=900)
            large = OpenAIChat(embedded="1.5b", timeout=900, logprobs=True)
        for model in (small, large):
            await stack.enter_async_context(model)
        one_token = StepsAsOutcome(LLMStepJudge(large, "math_solution"), delimiter=None)
        resolve = StepsAsOutcome(LLMStepJudge(large, "math_resolve"), delimiter=None)
        pairwise = PairwiseJudge("math_solution", large)
        common = {"instruction": INSTRUCTION, "max_tokens": args.max_tokens, "plot": False}

        async def measure(chosen: list) -> tuple:
            greedy = await evaluate(
                chosen, large, n=1, out=out / "large_greedy", temperature=0.0, **common
            )
            sampled = await evaluate(
                chosen, small, n=args.n, out=out / "small_sampled", verifier=one_token, **common
            )
            resolved = None
            if "resolve" in args.verifiers:
                folder = out / "small_resolve"
                resolved = await rescore(chosen, out / "small_sampled", resolve, out=folder)
            knockout = []
            if "tournament" in args.verifiers:
                knockout = await tournament_points(chosen, out, pairwise, args.n)
            return greedy, sampled, resolved, knockout

        for problem in problems:  # one at a time, so that the time limit is kept
            if time.monotonic() > deadline:
                print(f"time is up after {len(done)} problems")
                break
            await measure([problem])
            done.append(problem)
            print(f"[{len(done)}/{len(problems)}] {problem.id}", flush=True)
        if not done:
            return
        greedy, sampled, resolved, knockout = await measure(done)  # from the folders
    report(len(done), greedy, sampled, resolved, knockout, out)


def report(
    count: int, greedy: Summary, sampled: Summary, resolved: Summary | None, knockout: list, out
) -> None:
    """Print every selection at every n and each verifier's AUROC; save the plot."""
    points = list(sampled.points)
    if resolved is not None:
        points += [
            Point(f"{p.method}:resolve", p.n, p.accuracy, p.tokens)
            for p in resolved.points
            if p.method in ("naive", "weighted")
        ]
    points += knockout
    bar = greedy.accuracy("majority", 1)
    print(f"\nGSM8K, first {count} test problems")
    print(f"larger model greedy: {bar:.1%} ({greedy.points[0].tokens:.0f} tokens per problem)")
    print("small model sampled; naive and weighted by the one-token verdict, :resolve by")
    print("math_resolve, tournament by the debiased pairwise judge:")
    print(Summary({}, count, points).table())
    for summary in (sampled, resolved):
        if summary is not None and summary.verifier is not None:
            print(summary.verifier.line())
    path = plot_sweep(
        points,
        out / "small_beats_large.png",
        title=f"GSM8K ({count} problems): 0.5B + test-time compute vs 1.5B greedy",
        baselines={"1.5B greedy": bar},
    )
    print(f"plot saved to {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=600)
    parser.add_argument("--max-tokens", type=int, default=320)
    parser.add_argument(
        "--verifier",
        dest="verifiers",
        action="append",
        choices=VERIFIERS[1:],
        help="besides the one-token verdict (always): resolve, tournament (default both)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/sbl_verifiers"))
    parser.add_argument("--base-url", help="another endpoint instead of the embedded models")
    parser.add_argument("--small", help="--base-url: the generator's model name")
    parser.add_argument("--large", help="--base-url: the judge's (and greedy bar's) model name")
    arguments = parser.parse_args()
    arguments.verifiers = arguments.verifiers or list(VERIFIERS[1:])
    asyncio.run(main(arguments))
