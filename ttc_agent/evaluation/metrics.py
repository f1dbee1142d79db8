"""Accuracy at every budget from one run at the largest: prefixes of the same candidates.

As in the Hugging Face test-time-compute study, ``n`` candidates sampled once per problem give
the metrics at every smaller power of two: the first ``k`` candidates are what a run at
``n = k`` would have sampled. Per prefix:

- ``naive``: the highest-scoring candidate (best-of-N);
- ``weighted``: the answer with the largest summed score (weighted best-of-N);
- ``majority``: the most frequent answer (self-consistency);
- ``pass``: any candidate right (pass@k over the prefix, the ceiling a perfect verifier
  would reach).

Ties go to the earliest candidate, or the answer that appeared first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

METHODS = ("naive", "weighted", "majority", "pass")


@dataclass(frozen=True)
class Sample:
    """One candidate as the metrics see it.

    Attributes:
        label: its answer's group (equivalent answers share one); None when it gave none.
        score: the verifier's normalised score; None when unscored.
        correct: whether its answer matches the gold answer.
        tokens: what generating it cost.
        verification_tokens: what scoring it cost (counted only by methods that use scores).
    """

    label: str | None
    score: float | None
    correct: bool
    tokens: int = 0
    verification_tokens: int = 0


def budgets(largest: int) -> list[int]:
    """The powers of two up to ``largest``, and ``largest`` itself.

    Example:
        >>> budgets(16), budgets(6)
        ([1, 2, 4, 8, 16], [1, 2, 4, 6])
    """
    if largest < 1:
        raise ValueError(f"largest must be at least 1, got {largest}")
    sizes = [1 << k for k in range(largest.bit_length()) if 1 << k <= largest]
    return sizes if sizes[-1] == largest else [*sizes, largest]


def naive(samples: Sequence[Sample]) -> bool:
    """Whether the highest-scoring candidate is right (False when none is scored).

    Example:
        >>> naive([Sample("1", 0.2, False), Sample("2", 0.9, True)])
        True
    """
    scored = [(s.score, -i) for i, s in enumerate(samples) if s.score is not None]
    if not scored:
        return False
    return samples[-max(scored)[1]].correct


def weighted(samples: Sequence[Sample]) -> bool:
    """Whether the answer with the largest summed score is right.

    Example:
        >>> weighted([Sample("1", 0.9, False), Sample("2", 0.6, True), Sample("2", 0.5, True)])
        True
    """
    totals: dict[str, float] = {}
    right: dict[str, bool] = {}
    for sample in samples:
        if sample.label is None or sample.score is None:
            continue
        totals[sample.label] = totals.get(sample.label, 0.0) + sample.score
        right.setdefault(sample.label, sample.correct)
    if not totals:
        return False
    order = list(totals)
    return right[max(order, key=lambda label: (totals[label], -order.index(label)))]


def majority(samples: Sequence[Sample]) -> bool:
    """Whether the most frequent answer is right.

    Example:
        >>> majority([Sample("1", None, False), Sample("2", None, True), Sample("2", None, True)])
        True
    """
    votes: dict[str, int] = {}
    right: dict[str, bool] = {}
    for sample in samples:
        if sample.label is not None:
            votes[sample.label] = votes.get(sample.label, 0) + 1
            right.setdefault(sample.label, sample.correct)
    if not votes:
        return False
    order = list(votes)
    return right[max(order, key=lambda label: (votes[label], -order.index(label)))]


def passes(samples: Sequence[Sample]) -> bool:
    """Whether any candidate is right.

    Example:
        >>> passes([Sample("1", None, False), Sample(None, None, True)])
        True
    """
    return any(sample.correct for sample in samples)


SCORED = frozenset({"naive", "weighted"})
"""The methods that need a verifier's scores (and pay for them)."""

RULES: dict[str, Callable[[Sequence[Sample]], bool]] = {
    "naive": naive,
    "weighted": weighted,
    "majority": majority,
    "pass": passes,
}


@dataclass(frozen=True)
class Point:
    """One method at one budget, over all problems."""

    method: str
    n: int
    accuracy: float
    tokens: float  # mean tokens per problem: generating n candidates, and scoring them if used


def sweep(
    problems: Mapping[str, Sequence[Sample]], largest: int, methods: Sequence[str] = METHODS
) -> list[Point]:
    """Every method at every budget up to ``largest`` from prefixes of each problem's samples.

    Problems with fewer than ``largest`` samples count at the budgets they reach.

    Example:
        >>> rows = {"p1": [Sample("4", 0.1, True), Sample("5", 0.9, False)]}
        >>> [(p.method, p.n, p.accuracy) for p in sweep(rows, 2, ["naive", "pass"])]
        [('naive', 1, 1.0), ('naive', 2, 0.0), ('pass', 1, 1.0), ('pass', 2, 1.0)]
    """
    if unknown := set(methods) - set(RULES):
        raise ValueError(f"unknown methods {sorted(unknown)}; known: {', '.join(RULES)}")
    points = []
    for method in methods:
        for n in budgets(largest):
            reached = [samples[:n] for samples in problems.values() if len(samples) >= n]
            if not reached:
                continue
            right = sum(RULES[method](prefix) for prefix in reached)
            scored = method in SCORED
            tokens = sum(
                s.tokens + (s.verification_tokens if scored else 0)
                for prefix in reached
                for s in prefix
            ) / len(reached)
            points.append(Point(method, n, right / len(reached), tokens))
    return points
