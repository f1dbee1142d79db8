"""How often a judge agrees with people: pairwise verdicts on human-labelled pairs.

Each pair (a prompt, two outputs, the output people preferred) is judged in both orders.

- ``accuracy``: the share of pairs where both orders pick the human's choice (a tie or a
  disagreement between the orders counts as wrong);
- ``consistency``: the share of pairs whose two orders agree (position consistency);
- ``first_position``: the share of verdicts that pick whichever output was shown first (0.5 is
  unbiased).

An ensemble of judges takes the majority verdict in each order (no majority: a tie) and is
measured the same way. Rows are written per judge and pair, so a rerun resumes.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ttc_agent.errors import ConfigurationError, TTCError
from ttc_agent.files import write_atomically
from ttc_agent.verifiers.pairwise_judge import PairwiseJudge


@dataclass(frozen=True)
class LabelledPair:
    """A prompt, two outputs and which one people preferred (1 or 2)."""

    id: str
    prompt: str
    output_1: str
    output_2: str
    label: int


@dataclass(frozen=True)
class Agreement:
    """One judge's (or the ensemble's) agreement with the human labels."""

    judge: str
    pairs: int
    accuracy: float
    consistency: float
    first_position: float


def load_pairs(path: str | Path, limit: int | None = None) -> list[LabelledPair]:
    """Pairs from a JSON list or JSONL with ``input``, ``output_1``, ``output_2`` and ``label``
    (LLMBar and MT-Bench human pairs from the repository's data/ have these fields).

    Example:
        >>> # pairs = load_pairs("data/llmbar_natural.json", limit=20)
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(f"no pairs file at {path}")
    text = path.read_text(encoding="utf-8")
    try:
        rows = (
            json.loads(text)
            if text.lstrip().startswith("[")
            else [json.loads(line) for line in text.splitlines() if line.strip()]
        )
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{path.name}: not JSON or JSONL ({exc})") from None
    pairs = []
    for number, row in enumerate(rows[:limit] if limit is not None else rows):
        missing = [f for f in ("input", "output_1", "output_2", "label") if f not in row]
        if missing:
            raise ConfigurationError(f"{path.name} pair {number}: no field {missing[0]!r}")
        if row["label"] not in (1, 2):
            raise ConfigurationError(f"{path.name} pair {number}: label must be 1 or 2")
        pairs.append(
            LabelledPair(
                str(row.get("id", number)),
                row["input"],
                row["output_1"],
                row["output_2"],
                row["label"],
            )
        )
    return pairs


def measure(judge: str, verdicts: Sequence[tuple[str, str, int]]) -> Agreement:
    """Agreement from (winner with output 1 as A, winner with output 2 as A, label) triples.

    Example:
        >>> measure("j", [("A", "B", 1), ("A", "A", 2), ("tie", "A", 2)])
        Agreement(judge='j', pairs=3, accuracy=0.3333333333333333, consistency=0.3333333333333333, first_position=0.6666666666666666)
    """  # noqa: E501
    if not verdicts:
        return Agreement(judge, 0, 0.0, 0.0, 0.0)
    right = consistent = first = 0
    for ab, ba, label in verdicts:
        human = "A" if label == 1 else "B"  # in the ab order; in ba the same output is the other
        swapped = {"A": "B", "B": "A", "tie": "tie"}[ba]
        consistent += ab == swapped
        right += ab == human and swapped == human
        first += (ab == "A") + (ba == "A")
    total = len(verdicts)
    return Agreement(judge, total, right / total, consistent / total, first / (2 * total))


def majority_verdict(winners: Sequence[str]) -> str:
    """The verdict most judges gave; a tie when no verdict has a strict majority of the top.

    Example:
        >>> majority_verdict(["A", "A", "B"]), majority_verdict(["A", "B"])
        ('A', 'tie')
    """
    ranked = Counter(winners).most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return "tie"
    return ranked[0][0]


async def judge_agreement(
    pairs: Sequence[LabelledPair],
    judges: Sequence[PairwiseJudge],
    *,
    out: str | Path | None = None,
    concurrency: int = 4,
    on_pair: Callable[[int, int], None] | None = None,
) -> list[Agreement]:
    """Each judge's agreement with the human labels, and the ensemble's when there are several.

    With ``out``, verdicts go to ``OUT/verdicts.jsonl`` (a rerun skips those already there)
    and the table to ``OUT/agreement.json``. Judges are told apart by ``label`` (card and
    model), so two models with one card are two judges.

    Example:
        >>> # results = await judge_agreement(load_pairs(path), [PairwiseJudge("helpfulness", m)])
    """
    if not judges:
        raise ConfigurationError("give at least one judge")
    names = [label(judge) for judge in judges]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"two judges share a name: {names}")
    folder = Path(out) if out is not None else None
    done: dict[tuple[str, str], tuple[str, str]] = {}
    if folder is not None and (folder / "verdicts.jsonl").is_file():
        for line in (folder / "verdicts.jsonl").read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # cut by a crash: redone
                continue
            done[(row["judge"], row["pair"])] = (row["ab"], row["ba"])
    lock, gate = asyncio.Lock(), asyncio.Semaphore(concurrency)
    finished = {"pairs": 0}

    async def record(name: str, pair: LabelledPair, verdict: tuple[str, str], tokens: int) -> None:
        async with lock:
            done[(name, pair.id)] = verdict
            if folder is not None:
                ab, ba = verdict
                row: dict[str, Any] = {"judge": name, "pair": pair.id, "ab": ab, "ba": ba}
                row |= {"label": pair.label, "tokens": tokens}
                folder.mkdir(parents=True, exist_ok=True)
                with (folder / "verdicts.jsonl").open("a", encoding="utf-8") as file:
                    file.write(json.dumps(row) + "\n")

    async def one(pair: LabelledPair) -> None:
        prompt = [{"role": "user", "content": pair.prompt}]
        async with gate:  # a pair's judges in turn, so a stopped run leaves whole pairs
            for judge, name in zip(judges, names, strict=True):
                if (name, pair.id) in done:
                    continue
                try:
                    both = await judge.compare_both_orders(prompt, pair.output_1, pair.output_2)
                except TTCError:  # left out: a rerun asks again
                    continue
                await record(name, pair, (both.ab.winner, both.ba.winner), both.usage.total_tokens)
        async with lock:
            finished["pairs"] += 1
            if on_pair is not None:
                on_pair(finished["pairs"], len(pairs))

    await asyncio.gather(*(one(pair) for pair in pairs))
    results = []
    for name in names:
        triples = [(*done[(name, p.id)], p.label) for p in pairs if (name, p.id) in done]
        results.append(measure(name, triples))
    if len(judges) > 1:
        voted = []
        for pair in pairs:
            if all((name, pair.id) in done for name in names):
                ab = majority_verdict([done[(name, pair.id)][0] for name in names])
                ba = majority_verdict([done[(name, pair.id)][1] for name in names])
                voted.append((ab, ba, pair.label))
        results.append(measure("ensemble", voted))
    if folder is not None:
        table: list[dict[str, Any]] = [asdict(result) for result in results]
        write_atomically(folder / "agreement.json", json.dumps(table, indent=2) + "\n")
    return results


def label(judge: PairwiseJudge) -> str:
    """A judge's name in results: its card and its model.

    Example:
        >>> from ttc_agent import OpenAIChat
        >>> label(PairwiseJudge("helpfulness", OpenAIChat("m", base_url="http://x/v1")))
        'helpfulness@m'
    """
    return f"{judge.card.name}@{judge.model.name}"


def agreement_table(results: Sequence[Agreement]) -> str:
    """A markdown table of agreement results.

    Example:
        >>> print(agreement_table([Agreement("j", 10, 0.6, 0.8, 0.55)]))
        | judge | pairs | accuracy | consistency | first position |
        |---|---|---|---|---|
        | j | 10 | 60.0% | 80.0% | 55.0% |
    """
    lines = [
        "| judge | pairs | accuracy | consistency | first position |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.judge} | {r.pairs} | {r.accuracy:.1%} | {r.consistency:.1%} "
            f"| {r.first_position:.1%} |"
        )
    return "\n".join(lines)
