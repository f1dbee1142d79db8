"""How often a judge agrees with people: pairwise verdicts on human-labelled pairs.

Each pair (a prompt, two outputs, the output people preferred) is judged in both orders.

- ``accuracy``: the share of pairs where both orders pick the human's choice (a tie or a
  disagreement between the orders counts as wrong);
- ``calibrated_accuracy``: the share where the calibrated outcome (the probabilities of A, B
  and tie averaged over both orders: ``pairwise_judge.combine``) is the human's choice; with
  verdicts read as labels alone, the same as ``accuracy``. Both come with a 95 % bootstrap
  interval over the pairs (seeded);
- ``consistency``: the share of pairs whose two orders agree (position consistency);
- ``first_position``: the share of verdicts that pick whichever output was shown first (0.5 is
  unbiased).

An ensemble of judges takes the majority verdict in each order (no majority: a tie), and the
judges' mean probabilities for its calibrated outcome, and is measured the same way. Rows are
written per judge and pair (winners and probabilities), so a rerun resumes.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ttc_agent.errors import ConfigurationError, TTCError
from ttc_agent.evaluation.win_rates import bootstrap_interval
from ttc_agent.files import write_atomically
from ttc_agent.verifiers.pairwise_judge import WINNERS, Comparison, PairwiseJudge, combine

Shares = Mapping[str, float]
"""The probabilities of A, B and tie in one order."""


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
    calibrated_accuracy: float | None = None
    accuracy_interval: tuple[float, float] | None = None  # 95 % bootstrap
    calibrated_interval: tuple[float, float] | None = None


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


def measure(
    judge: str,
    verdicts: Sequence[tuple[str, str, int]],
    shares: Sequence[tuple[Shares, Shares]] | None = None,
) -> Agreement:
    """Agreement from (winner with output 1 as A, winner with output 2 as A, label) triples,
    and each pair's probabilities in the two orders (one-hot on the winners when not given).

    Example:
        >>> result = measure("j", [("A", "B", 1), ("A", "A", 2), ("tie", "A", 2)])
        >>> result.accuracy, result.consistency, result.first_position
        (0.3333333333333333, 0.3333333333333333, 0.6666666666666666)
    """
    if not verdicts:
        return Agreement(judge, 0, 0.0, 0.0, 0.0)
    if shares is None:
        shares = [(one_hot(ab), one_hot(ba)) for ab, ba, _ in verdicts]
    right, calibrated = [], []
    consistent = first = 0
    for (ab, ba, label), (p_ab, p_ba) in zip(verdicts, shares, strict=True):
        human = "A" if label == 1 else "B"  # in the ab order; in ba the same output is the other
        swapped = {"A": "B", "B": "A", "tie": "tie"}[ba]
        consistent += ab == swapped
        right.append(float(ab == human and swapped == human))
        calibrated.append(float(combine(p_ab, p_ba)[0] == ("first" if label == 1 else "second")))
        first += (ab == "A") + (ba == "A")
    total = len(verdicts)
    return Agreement(
        judge,
        total,
        sum(right) / total,
        consistent / total,
        first / (2 * total),
        calibrated_accuracy=sum(calibrated) / total,
        accuracy_interval=bootstrap_interval(right),
        calibrated_interval=bootstrap_interval(calibrated),
    )


def one_hot(winner: str) -> dict[str, float]:
    """A verdict read as its label alone.

    Example:
        >>> one_hot("B")
        {'A': 0.0, 'B': 1.0, 'tie': 0.0}
    """
    return {label: float(label == winner) for label in WINNERS}


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
    probabilities: dict[tuple[str, str], tuple[Shares, Shares]] = {}
    if folder is not None and (folder / "verdicts.jsonl").is_file():
        for line in (folder / "verdicts.jsonl").read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # cut by a crash: redone
                continue
            done[(row["judge"], row["pair"])] = (row["ab"], row["ba"])
            probabilities[(row["judge"], row["pair"])] = (
                row.get("p_ab") or one_hot(row["ab"]),
                row.get("p_ba") or one_hot(row["ba"]),
            )
    lock, gate = asyncio.Lock(), asyncio.Semaphore(concurrency)
    finished = {"pairs": 0}

    async def record(name: str, pair: LabelledPair, both: Comparison) -> None:
        async with lock:
            done[(name, pair.id)] = (both.ab.winner, both.ba.winner)
            probabilities[(name, pair.id)] = (both.ab.shares, both.ba.shares)
            if folder is not None:
                row: dict[str, Any] = {"judge": name, "pair": pair.id}
                row |= {"ab": both.ab.winner, "ba": both.ba.winner}
                row |= {"p_ab": both.ab.shares, "p_ba": both.ba.shares}
                row |= {"label": pair.label, "tokens": both.usage.total_tokens}
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
                await record(name, pair, both)
        async with lock:
            finished["pairs"] += 1
            if on_pair is not None:
                on_pair(finished["pairs"], len(pairs))

    await asyncio.gather(*(one(pair) for pair in pairs))
    results = []
    for name in names:
        mine = [p for p in pairs if (name, p.id) in done]
        triples = [(*done[(name, p.id)], p.label) for p in mine]
        results.append(measure(name, triples, [probabilities[(name, p.id)] for p in mine]))
    if len(judges) > 1:
        voted, averaged = [], []
        for pair in pairs:
            if all((name, pair.id) in done for name in names):
                ab = majority_verdict([done[(name, pair.id)][0] for name in names])
                ba = majority_verdict([done[(name, pair.id)][1] for name in names])
                voted.append((ab, ba, pair.label))
                averaged.append(
                    tuple(_mean([probabilities[(n, pair.id)][o] for n in names]) for o in (0, 1))
                )
        results.append(measure("ensemble", voted, averaged))  # type: ignore[arg-type]
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
    """A markdown table of agreement results, with and without calibration.

    Example:
        >>> print(agreement_table([Agreement("j", 10, 0.6, 0.8, 0.55, 0.7, (0.3, 0.9), (0.4, 1.0))]))
        | judge | pairs | accuracy | 95 % interval | calibrated | 95 % interval | consistency | first position |
        |---|---|---|---|---|---|---|---|
        | j | 10 | 60.0% | 30% to 90% | 70.0% | 40% to 100% | 80.0% | 55.0% |
    """  # noqa: E501
    lines = [
        "| judge | pairs | accuracy | 95 % interval | calibrated | 95 % interval | consistency "
        "| first position |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        calibrated = "-" if r.calibrated_accuracy is None else f"{r.calibrated_accuracy:.1%}"
        lines.append(
            f"| {r.judge} | {r.pairs} | {r.accuracy:.1%} | {_interval(r.accuracy_interval)} "
            f"| {calibrated} | {_interval(r.calibrated_interval)} | {r.consistency:.1%} "
            f"| {r.first_position:.1%} |"
        )
    return "\n".join(lines)


def _interval(bounds: tuple[float, float] | None) -> str:
    return "-" if bounds is None else f"{bounds[0]:.0%} to {bounds[1]:.0%}"


def _mean(shares: Sequence[Shares]) -> dict[str, float]:
    return {label: sum(s.get(label, 0.0) for s in shares) / len(shares) for label in WINNERS}
