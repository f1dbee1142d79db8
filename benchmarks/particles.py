"""Particle filtering against beam search and DVTS on GSM8K, on the embedded model.

For each of the first ``--problems`` GSM8K test problems, three step searches with the same
generator, step verifier and step settings: ``particle_filter`` (n particles, drawn by weight),
``beam_search`` (n wide, keeping n // 2) and ``dvts`` (2 subtrees of n // 2). Each samples n
steps a round, so their step generations per round are equal; each stops when its own rule
says (all particles finished; n solutions finished; each subtree's best child finished), so the
step generations each actually used are measured and printed beside its accuracy. The
generator is the embedded Qwen2.5-Coder-0.5B-Instruct, the step verifier ``LLMStepJudge`` (the
``math_step`` card, P(step correct) from the verdict digit's logprobs) on the same model; every
search chooses by a weighted vote over the answers (``answer_key=last_number``). On the
embedded server each sample is one call (llama.cpp ignores ``n``), so a search's generation
calls are its step generations.

Every (problem, strategy) is one JSONL row in ``--out``, written when it finishes; a rerun with
the same file skips the rows already there, so an interrupted run loses at most the searches in
flight. The table printed at the end (and with ``--table`` alone, from the rows so far) covers
the rows written; it says how many problems each strategy has done.

    python benchmarks/particles.py [--problems 10] [--n 4] [--max-steps 12] [--out FILE]
    python benchmarks/particles.py --table [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from gsm8k_data import INSTRUCTION, problems, same

from ttc_agent import LLMStepJudge, OpenAIChat, TTCError, beam_search, dvts, particle_filter
from ttc_agent.answers import last_number

STRATEGIES = ("particle_filter", "beam_search", "dvts")
MEASURED = ("step_generations", "generation_tokens", "verification_calls", "seconds")
OUT = Path(__file__).resolve().parent / "out" / "particles.jsonl"


def rows(out: Path) -> list[dict]:
    """The rows written so far."""
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def node(name: str, model: OpenAIChat, judge: LLMStepJudge, n: int, args: argparse.Namespace):
    """The search ``name`` with the shared step settings."""
    shared = {
        "n": n,
        "max_steps": args.max_steps,
        "max_step_tokens": args.max_step_tokens,
        "temperature": args.temperature,
        "answer_key": last_number,
    }
    if name == "particle_filter":
        return particle_filter(model, judge, seed=args.seed, **shared)
    if name == "beam_search":
        return beam_search(model, judge, keep=max(1, n // 2), **shared)
    return dvts(model, judge, subtrees=2 if n % 2 == 0 else 1, **shared)


async def run(args: argparse.Namespace) -> None:
    done = {(row["problem"], row["strategy"]) for row in rows(args.out)}
    started = time.monotonic()
    async with (
        OpenAIChat(timeout=900) as model,
        OpenAIChat(timeout=900, logprobs=True) as judge_model,
    ):
        judge = LLMStepJudge(judge_model)  # math_step: the latest step, from the digit's logprobs
        for number, (question, gold) in enumerate(problems(args.problems)):
            for name in STRATEGIES:
                if (number, name) in done:
                    continue
                began = time.monotonic()
                try:
                    result = await node(name, model, judge, args.n, args).ainvoke(
                        question + INSTRUCTION
                    )
                except TTCError as exc:  # not written: a rerun tries it again
                    print(f"problem {number} {name}: failed: {exc}", flush=True)
                    continue
                answer = last_number(result.answer)
                row = {
                    "problem": number,
                    "strategy": name,
                    "n": args.n,
                    "gold": gold,
                    "answer": answer,
                    "correct": same(answer, gold),
                    "text": result.answer,
                    "step_generations": result.usage.generation.calls,
                    "generation_tokens": result.usage.generation.total_tokens,
                    "verification_calls": result.usage.verification.calls,
                    "verification_tokens": result.usage.verification.total_tokens,
                    "steps": result.settings.get("steps"),
                    "seconds": round(time.monotonic() - began, 1),
                    "settings": result.settings,
                }
                args.out.parent.mkdir(parents=True, exist_ok=True)
                with args.out.open("a") as file:
                    file.write(json.dumps(row) + "\n")
                elapsed = time.monotonic() - started
                print(
                    f"[{elapsed:.0f} s] problem {number} {name}: {answer} (gold {gold}), "
                    f"{row['step_generations']} step generations, {row['seconds']} s",
                    flush=True,
                )
    print(table(rows(args.out), args.problems))


def table(written: list[dict], asked: int) -> str:
    """Accuracy and cost per strategy over the rows written, as a markdown table."""
    lines = [
        "| strategy | problems | accuracy | step generations | generation tokens "
        "| verification calls | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in STRATEGIES:
        mine = [row for row in written if row["strategy"] == name]
        if not mine:
            continue
        count, right = len(mine), sum(row["correct"] for row in mine)
        means = {key: sum(row[key] for row in mine) / count for key in MEASURED}
        label = "DVTS" if name == "dvts" else name.replace("_", " ")
        lines.append(
            f"| {label} | {count} of {asked} | {right}/{count} ({right / count:.0%}) "
            f"| {means['step_generations']:.1f} | {means['generation_tokens']:.0f} "
            f"| {means['verification_calls']:.1f} | {means['seconds']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=10)
    parser.add_argument("--n", type=int, default=4, help="particles; beam width; DVTS's n")
    parser.add_argument("--max-steps", type=int, default=12)
    parser.add_argument("--max-step-tokens", type=int, default=160)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0, help="particle filtering's draws")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--table", action="store_true", help="only print the table so far")
    arguments = parser.parse_args()
    if arguments.table:
        print(table(rows(arguments.out), arguments.problems))
    else:
        asyncio.run(run(arguments))
