"""The rules that say a vote is settled: Adaptive-Consistency's Beta posterior and the
supermajority share."""

from __future__ import annotations

import math
import random

import pytest

from ttc_agent.strategies._stopping import leader_posterior, regularized_beta, settled


def binomial_tail(a: int, b: int) -> float:
    """I_{1/2}(a, b) for whole a and b: P(Binomial(a + b - 1, 1/2) >= a)."""
    trials = a + b - 1
    return sum(math.comb(trials, j) for j in range(a, trials + 1)) / 2**trials


@pytest.mark.parametrize(("a", "b"), [(1, 1), (5, 1), (1, 5), (4, 2), (9, 3), (30, 28), (80, 3)])
def test_the_incomplete_beta_matches_the_binomial_sum_at_one_half(a, b):
    assert regularized_beta(0.5, a, b) == pytest.approx(binomial_tail(a, b), abs=1e-12)


def test_the_incomplete_beta_at_other_points_and_fractional_counts():
    # I_x(1, 1) = x; I_x(a, 1) = x^a; I_x(1, b) = 1 - (1 - x)^b, fractional a and b too
    for x in (0.05, 0.3, 0.77):
        assert regularized_beta(x, 1, 1) == pytest.approx(x)
        assert regularized_beta(x, 2.5, 1) == pytest.approx(x**2.5)
        assert regularized_beta(x, 1, 3.7) == pytest.approx(1 - (1 - x) ** 3.7)
    rng = random.Random(3)  # symmetry: I_x(a, b) = 1 - I_{1-x}(b, a)
    for _ in range(50):
        x, a, b = rng.random(), rng.uniform(0.2, 40), rng.uniform(0.2, 40)
        assert regularized_beta(x, a, b) == pytest.approx(1 - regularized_beta(1 - x, b, a))
    with pytest.raises(ValueError, match="positive"):
        regularized_beta(0.5, 0, 1)


def test_the_posterior_that_the_leader_is_the_majority():
    assert leader_posterior({"7": 4}) == pytest.approx(1 - 0.5**5)
    assert leader_posterior({"7": 3, "9": 1}) == pytest.approx(1 - binomial_tail(4, 2))
    # only the leader and the runner-up count (the Beta criterion)
    assert leader_posterior({"7": 3, "9": 1, "8": 1}) == leader_posterior({"7": 3, "9": 1})
    # weighted votes are fractional counts, and more evidence settles more
    assert 0.5 < leader_posterior({"7": 2.5, "9": 1.5}) < leader_posterior({"7": 5, "9": 3})


def test_four_unanimous_votes_settle_at_095_and_three_do_not():
    assert not settled({"7": 3}, "adaptive")
    assert settled({"7": 4}, "adaptive")
    assert not settled({"7": 6, "9": 2}, "adaptive")  # 0.9102
    assert settled({"7": 7, "9": 1}, "adaptive")  # 0.9805
    assert not settled({"7": 4}, "adaptive", min_votes=5)


def test_the_supermajority_share_of_the_votes_cast():
    assert settled({"7": 3, "9": 1}, "supermajority", share=0.75, min_votes=4)
    assert not settled({"7": 3, "9": 2}, "supermajority", share=0.75, min_votes=4)
    assert not settled({"7": 3}, "supermajority", share=0.75, min_votes=4)
    assert not settled({}, "supermajority")
