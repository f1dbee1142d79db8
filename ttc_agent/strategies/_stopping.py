"""When a vote is settled, so that sampling can stop: the rules ``majority_vote`` and
``deepconf`` stop by.

- ``adaptive``: Adaptive-Consistency's Beta criterion (Aggarwal et al. 2023, "Let's Sample
  Step by Step: Adaptive-Consistency for Efficient Reasoning and Coding with LLMs", arXiv
  2305.11860). With ``v1`` votes for the leading answer and ``v2`` for the runner-up, a uniform
  prior makes the leader's share ``p`` of the two a Beta(v1 + 1, v2 + 1) posterior; the vote
  is settled once P(p > 1/2), the probability that the leader is the true majority, passes the
  threshold (0.95 by default, the paper's). Weighted votes (``deepconf``'s) enter as fractional
  counts.
- ``supermajority``: once ``min_votes`` are cast, one answer holds a given share of them.

Example:
    >>> round(leader_posterior({"7": 4}), 5), round(leader_posterior({"7": 3, "9": 1}), 4)
    (0.96875, 0.8125)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

Stopping = Literal["adaptive", "supermajority"]


def leader_posterior(votes: Mapping[str, float]) -> float:
    """P(the leading answer's share exceeds the runner-up's | the votes), under Beta(v1 + 1,
    v2 + 1); 0.5 with no votes.

    Example:
        >>> leader_posterior({}), leader_posterior({"a": 1, "b": 1})
        (0.5, 0.5)
    """
    counts = sorted(votes.values(), reverse=True)
    leader = counts[0] if counts else 0.0
    runner_up = counts[1] if len(counts) > 1 else 0.0
    return 1.0 - regularized_beta(0.5, leader + 1.0, runner_up + 1.0)


def settled(
    votes: Mapping[str, float],
    rule: Stopping,
    *,
    posterior: float = 0.95,
    share: float = 0.75,
    min_votes: float = 0,
) -> bool:
    """Whether sampling may stop: at least ``min_votes`` cast, and the leader's posterior above
    ``posterior`` (``adaptive``) or its share of the votes at least ``share``
    (``supermajority``).

    Example:
        >>> settled({"7": 3, "9": 1}, "supermajority", min_votes=4)
        True
        >>> settled({"7": 3, "9": 1}, "adaptive", min_votes=4)
        False
    """
    cast = sum(votes.values())
    if not votes or cast < min_votes:
        return False
    if rule == "adaptive":
        return leader_posterior(votes) > posterior
    return max(votes.values()) >= share * cast


def regularized_beta(x: float, a: float, b: float) -> float:
    """The regularised incomplete beta function I_x(a, b), the Beta(a, b) distribution's CDF
    at ``x``, by its continued fraction (evaluated by the modified Lentz method).

    Example:
        >>> round(regularized_beta(0.5, 5, 1), 6)  # 0.5 ** 5
        0.03125
    """
    if a <= 0 or b <= 0:
        raise ValueError(f"a and b must be positive, got {a} and {b}")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = a * math.log(x) + b * math.log1p(-x) - _log_beta(a, b)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _fraction(1.0 - x, b, a) / b


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of I_x(a, b), converging fast for x < (a + 1) / (a + b + 2)."""
    tiny = 1e-300

    def guarded(value: float) -> float:
        return value if abs(value) > tiny else tiny

    c, d = 1.0, 1.0 / guarded(1.0 - (a + b) * x / (a + 1.0))
    result = d
    for m in range(1, 500):
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d = 1.0 / guarded(1.0 + even * d)
        c = guarded(1.0 + even / c)
        result *= d * c
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 / guarded(1.0 + odd * d)
        c = guarded(1.0 + odd / c)
        step = d * c
        result *= step
        if abs(step - 1.0) < 1e-15:
            break
    return result
