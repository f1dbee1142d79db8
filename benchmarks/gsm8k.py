"""GSM8K on the embedded model: greedy, majority, best-of-N and weighted best-of-N.

For each of the first ``--problems`` GSM8K test problems: one greedy answer, then ``--n``
samples shared by three selections (so they are compared on the same candidates): majority vote
over the extracted numbers, best-of-N by a verifier, and weighted best-of-N (the verifier's
scores summed per answer). The verifier is the logprob judge with the ``math_solution`` card,
one verdict per complete solution. Prints accuracy and tokens per problem, writes every
candidate to a JSONL file (rerunning with the same file resumes, keeping every problem already
generated and scored), and plots accuracy against n from prefixes of the same candidates
(``ttc_agent.evaluation``) beside the greedy line.

    python benchmarks/gsm8k.py [--problems 50] [--n 8] [--max-tokens 320] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import defaultdict
from pathlib import Path

from gsm8k_data import INSTRUCTION, problems, same

from ttc_agent import LLMStepJudge, OpenAIChat
from ttc_agent.answers import last_number
from ttc_agent.evaluation import Sample, Summary, budgets, plot_sweep, sweep
from ttc_agent.strategies import select_best, select_majority, select_weighted
from ttc_agent.types import Candidate, Completion, Score


def finished_work(out: Path, n: int) -> dict[int, dict[str, list[dict]]]:
    """Rows already written, by problem; a problem's partial sample set is dropped."""
    if not out.exists():
        return {}
    work: dict[int, dict[str, list[dict]]] = defaultdict(lambda: {"greedy": [], "sample": []})
    for line in out.read_text().splitlines():
        row = json.loads(line)
        work[row["problem"]][row.get("kind", "sample")].append(row)
    for rows in work.values():
        if len(rows["sample"]) != n:
            rows["sample"] = []
    kept = [row for rows in work.values() for kind in rows.values() for row in kind]
    out.write_text("".join(json.dumps(row) + "\n" for row in kept))
    return dict(work)


async def run(count: int, n: int, max_tokens: int, out: Path) -> None:
    tally = {
        "greedy": 0,
        f"majority@{n}": 0,
        f"best_of_n@{n}": 0,
        f"weighted@{n}": 0,
        f"pass@{n}": 0,
    }
    tokens = {"greedy": 0, "samples": 0, "judging": 0}
    sweeps: dict[str, list[Sample]] = {}
    started = time.monotonic()
    done_before = finished_work(out, n)
    async with (
        OpenAIChat(timeout=600) as model,
        OpenAIChat(timeout=600, logprobs=True) as judge_model,
    ):
        judge = LLMStepJudge(judge_model, "math_solution")
        with out.open("a") as log:
            for number, (question, gold) in enumerate(problems(count)):
                prompt = [{"role": "user", "content": question + INSTRUCTION}]
                rows = done_before.get(number, {"greedy": [], "sample": []})
                if rows["greedy"]:
                    greedy = Completion.model_validate(rows["greedy"][0]["completion"])
                else:
                    [greedy] = await model.sample(prompt, 1, temperature=0.0, max_tokens=max_tokens)
                    row = {"problem": number, "gold": gold, "kind": "greedy"}
                    log.write(json.dumps({**row, "completion": greedy.model_dump()}) + "\n")
                if rows["sample"]:
                    fields = Candidate.model_fields
                    candidates = [
                        Candidate.model_validate({k: v for k, v in r.items() if k in fields})
                        for r in rows["sample"]
                    ]
                else:
                    candidates = await sample_and_judge(model, judge, prompt, n, max_tokens)
                    for candidate in candidates:
                        row = {"problem": number, "gold": gold, "kind": "sample"}
                        log.write(json.dumps({**row, **candidate.model_dump(mode="json")}) + "\n")
                log.flush()
                unscored = [c.model_copy(update={"score": None}) for c in candidates]
                picks = {  # majority_vote without a verifier: vote ties go to the first seen
                    "greedy": last_number(greedy.text),
                    f"majority@{n}": candidates[select_majority(unscored)[0]].key,
                    f"best_of_n@{n}": candidates[select_best(candidates)].key,
                    f"weighted@{n}": candidates[select_weighted(candidates)[0]].key,
                }
                for name, answer in picks.items():
                    tally[name] += same(answer, gold)
                tally[f"pass@{n}"] += any(same(c.key, gold) for c in candidates)
                tokens["greedy"] += greedy.usage.total_tokens
                tokens["samples"] += sum(c.usage.total_tokens for c in candidates)
                tokens["judging"] += sum(c.score.usage.total_tokens for c in candidates if c.score)
                sweeps[str(number)] = [
                    Sample(c.key, c.score.normalized if c.score else None, same(c.key, gold),
                           c.usage.total_tokens, c.score.usage.total_tokens if c.score else 0)
                    for c in candidates
                ]  # fmt: skip
                done = number + 1
                summary = ", ".join(f"{k} {v / done:.0%}" for k, v in tally.items())
                print(f"[{done}/{count}] {time.monotonic() - started:.0f} s  {summary}", flush=True)
    print(f"\nGSM8K, first {count} test problems, Qwen2.5-Coder-0.5B-Instruct (embedded), n={n}")
    for name, right in tally.items():
        print(f"  {name:<16} {right / count:6.1%}")
    print(
        f"  tokens per problem: greedy {tokens['greedy'] / count:.0f}, {n} samples "
        f"{tokens['samples'] / count:.0f}, judging {tokens['judging'] / count:.0f}"
    )
    print(f"  candidates written to {out}")
    points = sweep(sweeps, n)
    print(f"\nFrom prefixes of the same candidates (n = {', '.join(map(str, budgets(n)))}):")
    print(Summary({}, count, points).table())
    path = plot_sweep(
        points, out.with_suffix(".png"), baselines={"greedy": tally["greedy"] / count},
        title=f"GSM8K, first {count} problems: Qwen2.5-Coder-0.5B (embedded), logprob judge",
    )  # fmt: skip
    print(f"plot saved to {path}")


async def sample_and_judge(
    model: OpenAIChat, judge: LLMStepJudge, prompt: list[dict], n: int, max_tokens: int
) -> list[Candidate]:
    """``n`` samples, each scored as one step by the logprob judge."""
    samples = await model.sample(prompt, n, temperature=0.8, max_tokens=max_tokens)
    verdicts = await judge.score_steps(prompt, [[s.text] for s in samples])
    return [
        Candidate(
            index=i,
            text=s.text,
            finish_reason=s.finish_reason,
            usage=s.usage,
            key=last_number(s.text),
            score=Score(value=v.steps[-1], normalized=v.steps[-1], usage=v.usage),
        )
        for i, (s, v) in enumerate(zip(samples, verdicts, strict=True))
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=50)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=320)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/gsm8k_candidates.jsonl"))
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args.problems, args.n, args.max_tokens, args.out))
