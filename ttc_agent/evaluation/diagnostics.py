"""Does the verifier tell right answers from wrong ones? Its diagnostics on an evaluation's
scored candidates.

- ``auroc``: the chance that a right candidate scores above a wrong one (ties count half);
  0.5 is a coin, 1.0 a perfect verifier. Its 95 % interval is a percentile bootstrap over
  problems (a problem's candidates share its difficulty, so they are resampled together),
  seeded, so a rerun prints the same interval.
- the mean normalised score of right and of wrong candidates;
- ``calibration_error``: the expected calibration error over ten equal-width bins of the
  normalised score (how far a score is from how often candidates with that score are right);
- ``lift_over_majority``: at every n, best-of-N (``naive``) and weighted accuracy minus majority
  accuracy: what the verifier adds to a vote that needs no verifier at all.

``summary.json`` holds them under ``"verifier"``; the names ``name``, ``auroc``,
``auroc_interval`` and ``lift_over_majority`` are fixed for outside checks to read.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ttc_agent.evaluation.metrics import Point, Sample

LIFTED = ("naive", "weighted")
"""The selections whose lift over majority is reported."""


def auroc(scores: Sequence[float], right: Sequence[bool]) -> float | None:
    """The area under the ROC curve of ``scores`` against ``right`` (Mann-Whitney: the share of
    (right, wrong) pairs the score orders correctly, ties half); None without both classes.

    Example:
        >>> auroc([0.9, 0.4, 0.5, 0.1], [True, True, False, False])
        0.75
    """
    positives = sum(1 for r in right if r)
    negatives = len(right) - positives
    if not positives or not negatives:
        return None
    ranked = sorted(zip(scores, right, strict=True))
    rank_sum, start = 0.0, 0
    while start < len(ranked):  # equal scores share the mean of their ranks
        end = start
        while end < len(ranked) and ranked[end][0] == ranked[start][0]:
            end += 1
        mean_rank = (start + 1 + end) / 2
        rank_sum += mean_rank * sum(1 for _, r in ranked[start:end] if r)
        start = end
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def auroc_interval(
    problems: Sequence[Sequence[tuple[float, bool]]], *, resamples: int = 1000, seed: int = 0
) -> tuple[float, float] | None:
    """A 95 % percentile bootstrap interval of the AUROC, resampling whole problems (each a
    list of (score, right) pairs); None when no resample has both right and wrong candidates.

    Example:
        >>> auroc_interval([[(0.9, True), (0.1, False)], [(0.8, True), (0.3, False)]])
        (1.0, 1.0)
    """
    draws = random.Random(seed)
    values = []
    for _ in range(resamples):
        pooled = [pair for problem in draws.choices(problems, k=len(problems)) for pair in problem]
        value = auroc([s for s, _ in pooled], [r for _, r in pooled])
        if value is not None:
            values.append(value)
    if not values:
        return None
    values.sort()
    return values[int(0.025 * len(values))], values[max(0, int(0.975 * len(values)) - 1)]


def calibration_error(scores: Sequence[float], right: Sequence[bool], bins: int = 10) -> float:
    """The expected calibration error: over equal-width bins of the score in [0, 1], the gap
    between the bin's mean score and its share of right candidates, weighted by its size.

    Example:
        >>> calibration_error([0.8, 0.8, 0.8, 0.8], [True, True, False, False])
        0.3
    """
    if not scores:
        return 0.0
    grouped: dict[int, list[tuple[float, bool]]] = {}
    for score, correct in zip(scores, right, strict=True):
        grouped.setdefault(min(bins - 1, max(0, int(score * bins))), []).append((score, correct))
    gaps = (
        abs(sum(s for s, _ in members) - sum(c for _, c in members)) for members in grouped.values()
    )
    return round(sum(gaps) / len(scores), 12)


def lift_over_majority(points: Sequence[Point]) -> dict[str, dict[str, float]]:
    """At every n (as a string, JSON's keys), each verifier selection's accuracy minus
    majority's.

    Example:
        >>> lift_over_majority([Point("majority", 2, 0.5, 0), Point("naive", 2, 0.25, 0)])
        {'2': {'naive': -0.25}}
    """
    accuracy = {(p.method, p.n): p.accuracy for p in points}
    lift: dict[str, dict[str, float]] = {}
    for (method, n), value in accuracy.items():
        if method in LIFTED and ("majority", n) in accuracy:
            gain = round(value - accuracy[("majority", n)], 12)
            lift.setdefault(str(n), {})[method] = gain
    return dict(sorted(lift.items(), key=lambda item: int(item[0])))


@dataclass(frozen=True)
class VerifierDiagnostics:
    """What an evaluation measured of its verifier (see the module's docstring)."""

    name: str
    candidates: int
    right: int
    auroc: float | None
    auroc_interval: tuple[float, float] | None
    mean_right: float | None
    mean_wrong: float | None
    calibration_error: float
    lift_over_majority: dict[str, dict[str, float]]

    def as_json(self) -> dict[str, Any]:
        """The ``"verifier"`` object of ``summary.json``, its fixed names first."""
        interval = list(self.auroc_interval) if self.auroc_interval is not None else None
        return {
            "name": self.name,
            "auroc": self.auroc,
            "auroc_interval": interval,
            "lift_over_majority": self.lift_over_majority,
            "mean_right": self.mean_right,
            "mean_wrong": self.mean_wrong,
            "calibration_error": self.calibration_error,
            "candidates": self.candidates,
            "right": self.right,
        }

    def line(self) -> str:
        """One line for a terminal: the AUROC and its interval, the means, the largest n's
        lift."""
        if self.auroc is None:
            signal = "AUROC undefined (every scored candidate is right, or every one wrong)"
        else:
            signal = f"AUROC {self.auroc:.2f}"
            if self.auroc_interval is not None:
                low, high = self.auroc_interval
                signal += f" (95 % interval {low:.2f} to {high:.2f})"
        means = f"mean score right {_number(self.mean_right)}, wrong {_number(self.mean_wrong)}"
        text = f"verifier {self.name}: {signal}; {means}; calibration error "
        text += f"{self.calibration_error:.2f}"
        if self.lift_over_majority:
            n, lifts = list(self.lift_over_majority.items())[-1]
            gains = ", ".join(f"{m} {gain * 100:+.1f} points" for m, gain in lifts.items())
            text += f"; lift over majority at n={n}: {gains}"
        return text


def diagnose(
    name: str, problems: Mapping[str, Sequence[Sample]], points: Sequence[Point]
) -> VerifierDiagnostics:
    """The diagnostics of verifier ``name`` from each problem's samples (unscored ones left out)
    and the sweep's accuracy points.

    Example:
        >>> rows = {"p": [Sample("4", 0.9, True), Sample("5", 0.2, False)]}
        >>> diagnose("judge", rows, []).auroc
        1.0
    """
    scored = [
        [(s.score, s.correct) for s in samples if s.score is not None]
        for samples in problems.values()
    ]
    pooled = [pair for problem in scored for pair in problem]
    scores, right = [s for s, _ in pooled], [r for _, r in pooled]
    of_right = [s for s, r in pooled if r]
    of_wrong = [s for s, r in pooled if not r]
    area = auroc(scores, right)
    return VerifierDiagnostics(
        name=name,
        candidates=len(pooled),
        right=len(of_right),
        auroc=area,
        auroc_interval=auroc_interval(scored) if area is not None else None,
        mean_right=_mean(of_right),
        mean_wrong=_mean(of_wrong),
        calibration_error=calibration_error(scores, right),
        lift_over_majority=lift_over_majority(points),
    )


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 12) if values else None


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
