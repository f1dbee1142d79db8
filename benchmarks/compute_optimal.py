"""Compute-optimal selection against fixed strategies at the same budget, on GSM8K.

For each of the first ``--problems`` GSM8K test problems, every strategy runs under the same
``Budget(calls=--calls)``: majority voting, best-of-N and weighted best-of-N (scored by the
logprob step judge over whole solutions), and ``adaptive``. Prints accuracy, tokens and calls
per problem for each, and saves a plot of accuracy against tokens.

    python benchmarks/compute_optimal.py [--problems 20] [--n 8] [--calls 24] [--max-tokens 224]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from gsm8k_data import INSTRUCTION, problems, same

from ttc_agent import (
    LLMStepJudge,
    OpenAIChat,
    StepsAsOutcome,
    TTCError,
    adaptive,
    best_of_n,
    majority_vote,
)
from ttc_agent.answers import last_number


async def run(count: int, n: int, calls: int, max_tokens: int, out: Path) -> None:
    async with OpenAIChat(timeout=600) as model, OpenAIChat(timeout=600, logprobs=True) as judge:

        def verifier() -> StepsAsOutcome:  # one each: no strategy reuses another's judgements
            return StepsAsOutcome(LLMStepJudge(judge))

        options = {"max_tokens": max_tokens}
        nodes = {
            f"majority@{n}": majority_vote(model, n=n, answer=last_number, **options),
            f"best_of_n@{n}": best_of_n(model, verifier(), n=n, **options),
            f"weighted@{n}": best_of_n(model, verifier(), n=n, answer_key=last_number, **options),
            "adaptive": adaptive(model, verifier(), answer_key=last_number, max_tokens=max_tokens),
        }
        stats = {name: {"right": 0, "tokens": 0, "calls": 0, "limited": 0} for name in nodes}
        started = time.monotonic()
        with out.open("w") as log:
            for number, (question, gold) in enumerate(problems(count)):
                for name, node in nodes.items():
                    try:
                        result = await node.ainvoke(question + INSTRUCTION, budget={"calls": calls})
                    except TTCError as exc:  # nothing fitted in the budget
                        log.write(
                            json.dumps({"problem": number, "strategy": name, "error": str(exc)})
                            + "\n"
                        )
                        continue
                    usage = result.usage.total
                    row = stats[name]
                    row["right"] += same(last_number(result.answer), gold)
                    row["tokens"] += usage.total_tokens
                    row["calls"] += usage.calls
                    row["limited"] += result.budget_limited
                    record = {"problem": number, "strategy": name, "gold": gold,
                              "answer": last_number(result.answer), "tokens": usage.total_tokens,
                              "decision": result.settings.get("decision")}  # fmt: skip
                    log.write(json.dumps(record) + "\n")
                done = number + 1
                line = ", ".join(f"{k} {v['right'] / done:.0%}" for k, v in stats.items())
                print(f"[{done}/{count}] {time.monotonic() - started:.0f} s  {line}", flush=True)
    print(f"\nGSM8K, first {count} problems, model {model.name}, budget {calls} calls per problem")
    print(f"{'strategy':<16} {'accuracy':>9} {'tokens':>8} {'calls':>6} {'limited':>8}")
    for name, row in stats.items():
        print(f"{name:<16} {row['right'] / count:9.1%} {row['tokens'] / count:8.0f} "
              f"{row['calls'] / count:6.1f} {row['limited']:8d}")  # fmt: skip
    plot(stats, count, out.with_suffix(".png"))


def plot(stats: dict[str, dict[str, int]], count: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for name, row in stats.items():
        point = (row["tokens"] / count, row["right"] / count)
        axes.scatter(*point, s=60)
        axes.annotate(name, point, textcoords="offset points", xytext=(6, 4))
    axes.set_xlabel("tokens per problem")
    axes.set_ylabel("accuracy")
    axes.set_ylim(0, 1)
    axes.set_title(f"GSM8K ({count} problems), same budget per problem")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"plot saved to {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--calls", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=224)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/compute_optimal.jsonl"))
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args.problems, args.n, args.calls, args.max_tokens, args.out))
