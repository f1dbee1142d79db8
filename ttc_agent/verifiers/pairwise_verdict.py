"""What a pairwise judge says: one verdict in one order, both orders of one comparison, and
balanced position calibration (``combine``) that turns the two into an outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ttc_agent.types import Screening, Usage

Winner = Literal["A", "B", "tie"]
Outcome = Literal["first", "second", "tie"]
WINNERS: tuple[Winner, ...] = ("A", "B", "tie")


@dataclass(frozen=True)
class Verdict:
    """One pairwise verdict in one order: the winner, the judge's reason, what it cost, the
    probabilities of A, B and tie (one-hot on the winner where none were read), and what the
    injection screen found in response A and in response B."""

    winner: Winner
    reason: str
    usage: Usage
    probabilities: Mapping[str, float] = field(default_factory=dict)
    screenings: tuple[Screening | None, Screening | None] = (None, None)

    @property
    def shares(self) -> dict[str, float]:
        """The probabilities of A, B and tie; one-hot on the winner when none were read."""
        if self.probabilities:
            return {label: float(self.probabilities.get(label, 0.0)) for label in WINNERS}
        return {label: float(label == self.winner) for label in WINNERS}


def combine(ab: Mapping[str, float], ba: Mapping[str, float]) -> tuple[Outcome, dict[str, float]]:
    """Balanced position calibration: the outcome of one comparison from the probabilities of
    A, B and tie with the first answer shown as A (``ab``) and as B (``ba``), and the averaged
    probabilities of ``first``, ``second`` and ``tie``. The outcome is the one holding the most
    (a tie when two hold the same, to within 1e-9).

    Example:
        >>> combine({"A": 0.9, "B": 0.1}, {"A": 0.9, "B": 0.1})[0]  # always A: no preference
        'tie'
        >>> combine({"A": 0.95, "B": 0.05}, {"A": 0.6, "B": 0.4})[1]["first"]
        0.675
    """
    shares = {
        "first": (ab.get("A", 0.0) + ba.get("B", 0.0)) / 2,
        "second": (ab.get("B", 0.0) + ba.get("A", 0.0)) / 2,
        "tie": (ab.get("tie", 0.0) + ba.get("tie", 0.0)) / 2,
    }
    ranked = sorted(shares.items(), key=lambda item: -item[1])
    if ranked[0][1] - ranked[1][1] <= 1e-9:
        return "tie", shares
    return ranked[0][0], shares  # type: ignore[return-value]  # a key of shares


@dataclass(frozen=True)
class Comparison:
    """Both orders of one comparison: ``first`` was shown as A in ``ab`` and as B in ``ba``."""

    ab: Verdict
    ba: Verdict

    @property
    def outcome(self) -> Outcome:
        """The calibrated outcome (see ``combine``): with verdicts read as labels alone,
        ``first``/``second`` when both orders agree, else ``tie``."""
        return combine(self.ab.shares, self.ba.shares)[0]

    @property
    def preference(self) -> float:
        """The probability that the first answer wins, averaged over both orders (0.5: none).

        Example:
            >>> v = Verdict("A", "", Usage())
            >>> Comparison(v, v).preference  # always A
            0.5
        """
        return combine(self.ab.shares, self.ba.shares)[1]["first"]

    @property
    def uncalibrated(self) -> Outcome:
        """The outcome from the winners alone: a win when both orders agree, else a tie."""
        one = {"A": "first", "B": "second", "tie": "tie"}[self.ab.winner]
        two = {"A": "second", "B": "first", "tie": "tie"}[self.ba.winner]
        return one if one == two else "tie"  # type: ignore[return-value]

    @property
    def consistent(self) -> bool:
        """Whether the two orders gave the same verdict about the same response."""
        swapped = {"A": "B", "B": "A", "tie": "tie"}[self.ba.winner]
        return self.ab.winner == swapped

    @property
    def usage(self) -> Usage:
        return self.ab.usage + self.ba.usage
