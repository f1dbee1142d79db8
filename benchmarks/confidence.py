"""Verifier-free selection on GSM8K with the embedded model: greedy, majority voting, majority
voting that stops when settled (Adaptive-Consistency), and DeepConf offline and online.

For each of the first ``--problems`` GSM8K test problems:

- ``greedy``: one answer at temperature 0;
- ``n`` samples with logprobs (``deepconf`` offline's own), read three ways on the same
  candidates: ``majority`` (the plain vote), ``deepconf_offline_high`` (the 90 % most confident
  vote, weighted by confidence) and ``deepconf_offline_low`` (the 10 %); offline reads its
  samples to the end, so the three cost the same;
- ``adaptive_majority``: ``majority_vote(stopping="adaptive")``, its own samples, in rounds of 2;
- ``deepconf_online_high`` and ``deepconf_online_low``: ``deepconf(mode="online")``, a warm-up
  of 4, then streamed traces in rounds of 2, each cancelled below the warm-up's threshold.

Accuracy, completion tokens generated per problem, and the tokens saved against majority at the
same n (``1 - tokens / majority's tokens``). Every run is a JSONL row (``--out``): rerunning
resumes, ``--minutes`` stops starting new problems when the time is up, and ``--report`` only
reads the rows. Saves a plot of accuracy against tokens beside the rows.

    python benchmarks/confidence.py [--problems 20] [--n 8] [--max-tokens 320] [--minutes 120]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from gsm8k_data import INSTRUCTION, problems, same

from ttc_agent import OpenAIChat, SearchResult, deepconf, majority_vote
from ttc_agent.answers import last_number
from ttc_agent.strategies import select_majority, select_weighted
from ttc_agent.strategies.deepconf import confidence_vote
from ttc_agent.types import Candidate

METHODS = (
    "greedy",
    "majority",
    "adaptive_majority",
    "deepconf_offline_high",
    "deepconf_offline_low",
    "deepconf_online_high",
    "deepconf_online_low",
)
RUNS = ("greedy", "samples", "adaptive_majority", "deepconf_online_high", "deepconf_online_low")
"""What is run (and stored) per problem; majority and offline are read off ``samples``."""


def stored(out: Path) -> dict[tuple[int, str], dict[str, Any]]:
    if not out.exists():
        return {}
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    return {(row["problem"], row["run"]): row for row in rows}


def row_of(problem: int, gold: str, run: str, result: SearchResult, seconds: float) -> dict:
    record = result.settings
    return {
        "problem": problem,
        "gold": gold,
        "run": run,
        "answer": last_number(result.answer),
        "completion_tokens": sum(c.usage.completion_tokens for c in result.candidates),
        "total_tokens": result.usage.total.total_tokens,
        "sampled": len(result.candidates),
        "cancelled": record.get("cancelled", 0),
        "tokens_saved_estimate": record.get("tokens_saved", 0),
        "seconds": round(seconds, 1),
        "candidates": [c.model_dump(mode="json") for c in result.candidates],
    }


async def run_one(model: OpenAIChat, run: str, question: str, n: int, max_tokens: int) -> Any:
    prompt = question + INSTRUCTION
    common = {"answer": last_number, "max_tokens": max_tokens}
    if run == "greedy":
        return await majority_vote(model, 1, temperature=0.0, **common).ainvoke(prompt)
    if run == "samples":
        return await deepconf(model, n, keep_share=0.9, **common).ainvoke(prompt)
    if run == "adaptive_majority":
        node = majority_vote(model, n, stopping="adaptive", round_size=2, **common)
        return await node.ainvoke(prompt)
    share = 0.9 if run.endswith("high") else 0.1
    node = deepconf(model, n, mode="online", keep_share=share, round_size=2, **common)
    return await node.ainvoke(prompt)


async def collect(
    count: int, n: int, max_tokens: int, minutes: float, out: Path, base_url: str | None
) -> None:
    deadline, have = time.monotonic() + minutes * 60, stored(out)
    where = {"base_url": base_url, "api_key": "none"} if base_url else {"embedded": "0.5b"}
    async with OpenAIChat(timeout=900, logprobs=True, **where) as model:
        for number, (question, gold) in enumerate(problems(count)):
            for run in RUNS:
                if (number, run) in have:
                    continue
                if time.monotonic() > deadline:
                    print("time is up: rerun to go on", flush=True)
                    return
                started = time.monotonic()
                result = await run_one(model, run, question, n, max_tokens)
                row = row_of(number, gold, run, result, time.monotonic() - started)
                with out.open("a") as file:
                    file.write(json.dumps(row) + "\n")
                spent = f"{row['completion_tokens']} tokens, {row['seconds']} s"
                print(f"[{number + 1}/{count}] {run}: {row['answer']} (gold {gold}), {spent}")


def read_off(rows: dict[tuple[int, str], dict[str, Any]], problem: int) -> dict[str, tuple]:
    """Each method's (answer, completion tokens) on one problem, where its runs are stored."""
    picks: dict[str, tuple] = {}
    for run in ("greedy", "adaptive_majority", "deepconf_online_high", "deepconf_online_low"):
        if (problem, run) in rows:
            picks[run] = (rows[problem, run]["answer"], rows[problem, run]["completion_tokens"])
    if (problem, "samples") in rows:
        row = rows[problem, "samples"]
        candidates = [Candidate.model_validate(c) for c in row["candidates"]]
        unscored = [c.model_copy(update={"score": None}) for c in candidates]
        tokens = row["completion_tokens"]
        picks["majority"] = (candidates[select_majority(unscored)[0]].key, tokens)
        for name, share in (("deepconf_offline_high", 0.9), ("deepconf_offline_low", 0.1)):
            chosen, _ = select_weighted(confidence_vote(candidates, share))
            picks[name] = (candidates[chosen].key, tokens)
    return picks


def report(count: int, n: int, out: Path) -> None:
    rows = stored(out)
    gold = {problem: row["gold"] for (problem, _), row in rows.items()}
    complete = [p for p in sorted(gold) if all((p, run) in rows for run in RUNS)]
    if not complete:
        print(f"no problem has all its runs in {out} yet")
        return
    right = dict.fromkeys(METHODS, 0)
    tokens = dict.fromkeys(METHODS, 0)
    cancelled = {"deepconf_online_high": 0, "deepconf_online_low": 0}
    for problem in complete:
        for method, (answer, spent) in read_off(rows, problem).items():
            right[method] += same(answer, gold[problem])
            tokens[method] += spent
        for method in cancelled:
            cancelled[method] += rows[problem, method]["cancelled"]
    partial = "" if len(complete) >= count else f" (partial: {len(complete)} of {count})"
    print(f"\nGSM8K, first {len(complete)} test problems{partial}, embedded 0.5B, n = {n}")
    print(f"{'method':<24}{'accuracy':>9}{'tokens/problem':>16}{'saved vs majority':>19}")
    base = tokens["majority"] / len(complete)
    for method in METHODS:
        mean = tokens[method] / len(complete)
        saved = "" if method in ("greedy", "majority") else f"{1 - mean / base:>18.0%}"
        print(f"{method:<24}{right[method] / len(complete):>9.0%}{mean:>16.0f} {saved}")
    for method, count_cancelled in cancelled.items():
        print(f"{method}: {count_cancelled} traces cancelled in all")
    plot(right, tokens, len(complete), n, out.with_suffix(".png"))


def plot(right: dict, tokens: dict, problems_done: int, n: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    points = {m: (tokens[m] / problems_done, right[m] / problems_done) for m in METHODS}
    widest = max(x for x, _ in points.values()) or 1.0
    placed: list[tuple[float, float]] = []
    for method, (x, y) in points.items():
        near = sum(abs(x - px) < 0.05 * widest and abs(y - py) < 0.03 for px, py in placed)
        placed.append((x, y))
        axes.scatter([x], [y])
        offset = (4, 4 + 11 * near)  # labels of points that nearly coincide stack upwards
        axes.annotate(method, (x, y), textcoords="offset points", xytext=offset, fontsize=8)
    axes.set_xlabel("completion tokens per problem")
    axes.set_ylabel("accuracy")
    axes.set_title(f"GSM8K ({problems_done} problems), embedded 0.5B, n = {n}")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"plot saved to {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=320)
    parser.add_argument("--minutes", type=float, default=120)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/confidence.jsonl"))
    parser.add_argument("--report", action="store_true", help="only read the rows")
    parser.add_argument("--base-url", help="another server than the embedded model's")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not args.report:
        work = (args.problems, args.n, args.max_tokens, args.minutes, args.out, args.base_url)
        asyncio.run(collect(*work))
    report(args.problems, args.n, args.out)
