"""The arithmetic of particle filtering: log-weights from step scores, normalised weights,
tempering when the effective sample size collapses, multinomial and systematic resampling, and
a step's weight from the generator's own logprobs."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttc_agent.strategies._particles import (
    confidence,
    effective_sample_size,
    log_weight,
    merged,
    resample,
    tempered,
    weights,
)
from ttc_agent.types import TokenLogprob

probabilities = st.lists(st.floats(0, 1), min_size=1, max_size=12).filter(lambda ws: sum(ws) > 1e-6)


def test_the_log_weight_is_the_logit_of_the_score():
    assert log_weight(0.5) == 0.0
    assert log_weight(0.8) == pytest.approx(math.log(4))
    assert log_weight(0.0) == -math.inf and log_weight(1.0) == math.inf
    assert weights([log_weight(0.5), log_weight(0.8)]) == pytest.approx([0.2, 0.8])


def test_certain_scores_decide_alone_and_no_information_is_uniform():
    assert weights([0.0, math.inf, -math.inf, math.inf]) == [0.0, 0.5, 0.0, 0.5]
    assert weights([-math.inf, -math.inf]) == [0.5, 0.5]  # every particle judged wrong
    assert weights([1.0, -math.inf]) == [1.0, 0.0]


@pytest.mark.parametrize("method", ["multinomial", "systematic"])
@given(chances=probabilities, seed=st.integers(0, 2**32))
def test_a_zero_weight_particle_is_never_resampled(method, chances, seed):
    total = sum(chances)
    chosen = resample([p / total for p in chances], 16, method, random.Random(seed))
    assert len(chosen) == 16
    assert all(chances[i] > 0 for i in chosen)


@given(chances=probabilities, seed=st.integers(0, 2**32), k=st.integers(1, 32))
def test_systematic_resampling_keeps_each_particle_within_one_of_its_share(chances, seed, k):
    total = sum(chances)
    shares = [p / total for p in chances]
    counts = Counter(resample(shares, k, "systematic", random.Random(seed)))
    for i, share in enumerate(shares):
        assert math.floor(k * share) - 1e-9 <= counts[i] <= math.ceil(k * share) + 1e-9


def test_multinomial_resampling_draws_by_weight():
    counts = Counter(resample([0.1, 0.9], 10_000, "multinomial", random.Random(3)))
    assert 800 < counts[0] < 1200 and counts[0] + counts[1] == 10_000


def test_an_unknown_resampling_method_is_refused():
    with pytest.raises(ValueError, match="resampling must be multinomial or systematic"):
        resample([1.0], 2, "stratified", random.Random(0))  # type: ignore[arg-type]


def test_the_effective_sample_size():
    assert effective_sample_size([0.25] * 4) == pytest.approx(4)
    assert effective_sample_size([1.0, 0.0, 0.0, 0.0]) == pytest.approx(1)


def test_tempering_flattens_weights_only_when_the_sample_size_collapses():
    peaked = [log_weight(s) for s in (0.99, 0.2, 0.2, 0.2)]
    flat, temperature = tempered(peaked, progress=0.0, threshold=0.5)
    assert temperature > 1
    before = weights(peaked)
    assert effective_sample_size(flat) > effective_sample_size(before)
    assert flat.index(max(flat)) == 0  # the order of the particles stays
    even = [log_weight(s) for s in (0.6, 0.5, 0.55, 0.5)]
    assert tempered(even, progress=0.0, threshold=0.5) == (weights(even), 1.0)
    assert tempered(peaked, progress=0.0, threshold=0.0) == (before, 1.0)  # off
    late = tempered(peaked, progress=0.9, threshold=0.5)[1]
    assert 1.0 <= late < temperature  # less and less as the search goes on


def tokens(*logprobs: float, top: dict[str, float] | None = None) -> list[TokenLogprob]:
    return [TokenLogprob(token="t", logprob=lp, top=top or {}) for lp in logprobs]


def test_a_steps_confidence_from_its_logprobs():
    assert confidence(tokens(0.0, 0.0), "logprob") == 1.0
    assert confidence(tokens(-1.0, -3.0), "logprob") == pytest.approx(math.exp(-2))
    sure = tokens(0.0, top={"a": 0.0, "b": -50.0})
    torn = tokens(math.log(0.5), top={"a": math.log(0.5), "b": math.log(0.5)})
    assert confidence(sure, "entropy") == pytest.approx(1.0)
    assert confidence(torn, "entropy") == pytest.approx(0.0)
    assert confidence(tokens(-0.1), "entropy") == 1.0  # no alternatives: nothing to doubt


def two_way(*chances: float) -> list[TokenLogprob]:
    """Tokens chosen with these chances against one alternative."""
    return [
        TokenLogprob(token="a", logprob=math.log(p), top={"a": math.log(p), "b": math.log(1 - p)})
        for p in chances
    ]


def test_a_cut_steps_confidence_is_merged_by_tokens():
    whole = two_way(0.9, 0.6, 0.3)
    first, rest = whole[:2], whole[2:]
    for kind in ("logprob", "entropy"):
        joined = merged(kind, confidence(first, kind), 2, confidence(rest, kind), 1)
        assert joined == pytest.approx(confidence(whole, kind))
