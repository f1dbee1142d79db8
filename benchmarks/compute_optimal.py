"""Compute-optimal selection against fixed strategies at the same budget, on GSM8K.

The fixed strategies (majority vote, best-of-N and weighted best-of-N at n = 1 .. ``--n``)
are measured on the candidates ``gsm8k.py`` samples and scores (the same file: problems it has
not done yet are sampled and scored here and added to it), from prefixes. ``adaptive`` runs on
each problem with the budget the fixed strategies spend at the largest n: ``--n`` samples and
``--n`` verdicts, ``2 * --n`` calls. Same model, temperature, token limit and verifier (the
logprob judge with the ``math_solution`` card, one verdict per whole solution). Prints
accuracy, tokens and calls per problem, adaptive's decisions, and saves a plot of accuracy
against tokens.

    python benchmarks/compute_optimal.py [--problems 20] [--n 8] [--max-tokens 320] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from pathlib import Path

from gsm8k import finished_work, sample_and_judge
from gsm8k_data import INSTRUCTION, problems, same

from ttc_agent import Budget, LLMStepJudge, OpenAIChat, StepsAsOutcome, TTCError, adaptive
from ttc_agent.answers import last_number
from ttc_agent.evaluation import Sample, Summary, plot_sweep, sweep
from ttc_agent.types import Candidate


async def run(count: int, n: int, max_tokens: int, out: Path, fixed_rows: Path) -> None:
    done = finished_work(fixed_rows, n)
    adaptive_rows = _rows(out)
    started = time.monotonic()
    fixed: dict[str, list[Sample]] = {}
    async with OpenAIChat(timeout=900) as model, OpenAIChat(timeout=900, logprobs=True) as judge:
        verifier = StepsAsOutcome(LLMStepJudge(judge, "math_solution"), delimiter=None)
        node = adaptive(model, verifier, Budget(calls=2 * n), answer_key=last_number,
                        max_tokens=max_tokens)  # fmt: skip
        for number, (question, gold) in enumerate(problems(count)):
            prompt = [{"role": "user", "content": question + INSTRUCTION}]
            rows = done.get(number, {}).get("sample")
            if rows:
                fields = Candidate.model_fields
                candidates = [
                    Candidate.model_validate({k: v for k, v in r.items() if k in fields})
                    for r in rows
                ]
            else:
                candidates = await sample_and_judge(
                    model, LLMStepJudge(judge, "math_solution"), prompt, n, max_tokens
                )
                with fixed_rows.open("a") as log:
                    for c in candidates:
                        row = {"problem": number, "gold": gold, "kind": "sample"}
                        log.write(json.dumps({**row, **c.model_dump(mode="json")}) + "\n")
            fixed[str(number)] = [
                Sample(c.key, c.score.normalized if c.score else None, same(c.key, gold),
                       c.usage.total_tokens, c.score.usage.total_tokens if c.score else 0)
                for c in candidates
            ]  # fmt: skip
            if number not in adaptive_rows:
                adaptive_rows[number] = await _adaptive(node, question, gold, number, out)
            right = sum(r["right"] for r in adaptive_rows.values() if r["problem"] <= number)
            print(f"[{number + 1}/{count}] {time.monotonic() - started:.0f} s  adaptive "
                  f"{right / (number + 1):.0%}", flush=True)  # fmt: skip
    report(fixed, [adaptive_rows[k] for k in sorted(adaptive_rows) if k < count], n, count, out)


async def _adaptive(node, question: str, gold: str, number: int, out: Path) -> dict:
    try:
        result = await node.ainvoke(question + INSTRUCTION)
    except TTCError as exc:  # nothing fitted in the budget: a wrong answer at no cost
        row = {"problem": number, "right": False, "tokens": 0, "calls": 0, "error": str(exc)}
    else:
        usage = result.usage.total
        answer = last_number(result.answer)
        row = {"problem": number, "right": same(answer, gold), "answer": answer, "gold": gold,
               "tokens": usage.total_tokens, "calls": usage.calls, "limited": result.budget_limited,
               "decision": result.settings.get("decision")}  # fmt: skip
    with out.open("a") as log:
        log.write(json.dumps(row) + "\n")
    return row


def _rows(out: Path) -> dict[int, dict]:
    if not out.exists():
        return {}
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    return {row["problem"]: row for row in rows}


def report(fixed: dict, rows: list[dict], n: int, count: int, out: Path) -> None:
    points = sweep(fixed, n, ["majority", "naive", "weighted", "pass"])
    calls = {"majority": 1, "naive": 2, "weighted": 2, "pass": 1}  # per candidate
    print(f"\nGSM8K, first {count} problems, Qwen2.5-Coder-0.5B (embedded), budget {2 * n} calls")
    print(f"{'strategy':<16} {'accuracy':>9} {'tokens':>8} {'calls':>6}")
    for point in points:
        if point.n == n:
            print(f"{point.method + f'@{n}':<16} {point.accuracy:9.1%} {point.tokens:8.0f} "
                  f"{calls[point.method] * n:6d}")  # fmt: skip
    accuracy = sum(r["right"] for r in rows) / len(rows)
    tokens = sum(r["tokens"] for r in rows) / len(rows)
    print(f"{'adaptive':<16} {accuracy:9.1%} {tokens:8.0f} "
          f"{sum(r['calls'] for r in rows) / len(rows):6.1f}")  # fmt: skip
    decisions = Counter(
        f"{r['decision']['difficulty']} -> {r['decision']['strategy']} n={r['decision']['n']}"
        for r in rows
        if r.get("decision")
    )
    print("adaptive's decisions: " + ", ".join(f"{k} ({v})" for k, v in decisions.items()))
    print("\nfixed strategies at every n (prefixes of the same candidates):")
    print(Summary({}, count, points).table())
    path = plot_sweep(
        points, out.with_suffix(".png"), baselines={f"adaptive ({tokens:.0f} tokens)": accuracy},
        title=f"GSM8K ({count} problems): adaptive against fixed strategies",
    )  # fmt: skip
    print(f"plot saved to {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=320)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/compute_optimal.jsonl"))
    parser.add_argument("--candidates", type=Path, help="gsm8k.py's candidates (shared)",
                        default=Path("benchmarks/out/gsm8k_candidates.jsonl"))  # fmt: skip
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args.problems, args.n, args.max_tokens, args.out, args.candidates))
