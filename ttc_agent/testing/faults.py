"""Faults a scripted server (``ttc_agent.testing.core``) answers with instead of a reply: one
injected for the next requests (``Fault``), or a share of requests drawn from a seeded
generator (``FaultPlan``)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Fault:
    """A failure to answer one request with, instead of a reply."""

    status: int = 500
    message: str = "injected fault"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False

    @classmethod
    def rate_limit(cls, retry_after: float = 0.05) -> Fault:
        return cls(429, "rate limited", {"Retry-After": f"{retry_after:g}"})

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls(status, f"injected {status}")

    @classmethod
    def dropped(cls) -> Fault:
        """Close the connection without answering."""
        return cls(drop=True)

    @classmethod
    def hang(cls, seconds: float) -> Fault:
        """Answer 200 only after ``seconds`` (longer than a client's timeout: a timeout)."""
        return cls(200, delay=seconds)


FAULT_KINDS = (
    "rate_limit",
    "server_error",
    "unavailable",
    "timeout",
    "reset",
    "empty",
    "truncated",
    "malformed",
)
"""What a ``FaultPlan`` can inject; the last two only into judge requests (see ``FaultPlan``)."""


@dataclass(frozen=True)
class FaultPlan:
    """Faults injected into a share of requests, drawn from a seeded generator.

    Args:
        rate: the share of requests answered with a fault (0.2: one in five).
        seed: seeds the draws, so that a run is repeatable.
        kinds: which faults (see ``FAULT_KINDS``): 429 with Retry-After, 500, 503, a hang past
            the client's timeout, a reset connection, a 200 without choices, and, for judge
            requests only (those whose prompt fences a candidate), a reply cut short with
            ``finish_reason="length"`` and a reply that is not a verdict. A generator's reply
            cut short is indistinguishable from a legitimate stop at ``max_tokens``, so it is
            not a fault a client could recover from: it is kept, marked ``length``.
        hang: seconds a ``timeout`` fault waits before answering (longer than the client's
            timeout).

    Example:
        >>> FaultPlan(rate=0.2, seed=7).kinds[0]
        'rate_limit'
    """

    rate: float
    seed: int = 0
    kinds: tuple[str, ...] = FAULT_KINDS
    hang: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {self.rate}")
        if unknown := set(self.kinds) - set(FAULT_KINDS):
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")


PLANNED = {
    "rate_limit": Fault.rate_limit(0.01),
    "server_error": Fault.server_error(500),
    "unavailable": Fault.server_error(503),
    "reset": Fault.dropped(),
}
"""The fault each planned kind answers with (the others are a damaged reply or a hang)."""

DAMAGED = ("empty", "truncated", "malformed")
"""The planned kinds answered with a damaged 200 (see ``ttc_agent.testing.core.damaged``)."""


def draw(plan: FaultPlan | None, draws: random.Random, judging: bool) -> str | None:
    """The planned fault kind of one request (a judge's, when ``judging``), if the draw says so.

    Example:
        >>> draw(FaultPlan(rate=1.0, kinds=("truncated",)), random.Random(0), judging=False)
        >>> draw(FaultPlan(rate=1.0, kinds=("truncated",)), random.Random(0), judging=True)
        'truncated'
    """
    if plan is None or draws.random() >= plan.rate:
        return None
    kinds = [k for k in plan.kinds if judging or k not in ("truncated", "malformed")]
    return draws.choice(kinds) if kinds else None


def planned_fault(kind: str | None, plan: FaultPlan | None) -> Fault | None:
    """The fault a planned kind answers with (None: no fault, or a damaged reply)."""
    if kind == "timeout" and plan is not None:
        return Fault.hang(plan.hang)
    return PLANNED.get(kind or "")
