"""Confidence signals: DeepConf's token, group, lowest-group and tail confidence and
self-certainty, computed where completions become candidates and kept (not the logprobs) in the
checkpointed rows."""

from __future__ import annotations

import json
import math

import pytest

from ttc_agent.confidence import (
    GroupWatch,
    confidence_of,
    group_confidences,
    percentile,
    token_confidence,
    token_self_certainty,
)
from ttc_agent.strategies import _tasks as tasks
from ttc_agent.testing import confident_reply
from ttc_agent.types import TokenLogprob

SURE = (-math.log(0.99) - math.log(0.01)) / 2  # a token at 0.99, its alternative at 0.01
UNSURE = math.log(2)  # two alternatives at 0.5 each


def token(p: float, text: str = "a") -> TokenLogprob:
    return TokenLogprob(
        token=text, logprob=math.log(p), top={text: math.log(p), "~": math.log(1 - p)}
    )


def test_token_confidence_is_minus_the_mean_logprob_of_the_top_alternatives():
    assert token_confidence(token(0.99)) == pytest.approx(SURE)
    assert token_confidence(token(0.5)) == pytest.approx(UNSURE)
    three = TokenLogprob(token="a", logprob=-0.5, top={"a": -0.5, "b": -1.5, "c": -4.0})
    assert token_confidence(three) == pytest.approx(2.0)


def test_a_sampled_token_outside_the_top_counts_among_them_as_vllm_reports_it():
    outside = TokenLogprob(token="z", logprob=-6.0, top={"a": -0.1, "b": -2.9})
    assert token_confidence(outside) == pytest.approx(3.0)
    alone = TokenLogprob(token="z", logprob=-0.25)  # no alternatives given: the token alone
    assert token_confidence(alone) == pytest.approx(0.25)


def test_self_certainty_is_the_kl_from_uniform_over_the_top_k():
    assert token_self_certainty(token(0.5)) == pytest.approx(0.0)
    p = 0.9  # KL(U || (0.9, 0.1)) = -ln 2 - (ln 0.9 + ln 0.1) / 2
    assert token_self_certainty(token(p)) == pytest.approx(-math.log(2) - math.log(0.09) / 2)
    # the alternatives are renormalised among themselves: halving both changes nothing
    halved = TokenLogprob(
        token="a", logprob=math.log(0.45), top={"a": math.log(0.45), "~": math.log(0.05)}
    )
    assert token_self_certainty(halved) == pytest.approx(token_self_certainty(token(p)))


def test_groups_slide_one_token_at_a_time():
    assert group_confidences([1.0, 2.0, 3.0, 6.0], 2) == [1.5, 2.5, 4.5]
    assert group_confidences([1.0, 2.0, 3.0, 6.0], 4) == [3.0]


def test_lowest_group_finds_a_local_dip_that_the_mean_hides():
    tokens = [token(0.99)] * 40 + [token(0.5)] * 8 + [token(0.99)] * 40
    signals = confidence_of(tokens, window=8, tail=8)
    assert signals.lowest_group == pytest.approx(UNSURE)
    assert signals.mean == pytest.approx((80 * SURE + 8 * UNSURE) / 88, abs=1e-6)
    assert signals.tail == pytest.approx(SURE)
    assert (signals.tokens, signals.window) == (88, 8)


def test_the_window_adapts_to_an_answer_shorter_than_it():
    tokens = [token(0.99), token(0.5), token(0.99)]
    signals = confidence_of(tokens, window=32, tail=32)
    assert signals.window == 3  # one group: the whole answer
    assert signals.lowest_group == pytest.approx((2 * SURE + UNSURE) / 3, abs=1e-6)
    assert signals.tail == signals.mean == signals.lowest_group


def test_tail_reads_the_last_tokens():
    tokens = [token(0.99)] * 10 + [token(0.5)] * 4
    assert confidence_of(tokens, window=4, tail=4).tail == pytest.approx(UNSURE)
    assert confidence_of(tokens, window=4, tail=8).tail == pytest.approx(
        (4 * SURE + 4 * UNSURE) / 8
    )


def test_no_logprobs_no_signals():
    assert confidence_of(None) is None
    assert confidence_of([]) is None


def test_the_watch_stops_once_a_full_window_falls_below_the_threshold():
    watch = GroupWatch(window=3, threshold=2.0)
    said = [watch.add(token(p)) for p in (0.5, 0.5, 0.99, 0.99, 0.99, 0.5, 0.5, 0.5)]
    # no verdict before 3 tokens; then (U,U,S) 1.23, (U,S,S) 1.77, (S,S,S) 2.31, (S,S,U) ...
    assert said == [False, False, True, True, False, True, True, True]
    assert watch.lowest == pytest.approx(UNSURE)


def test_percentile_interpolates_like_numpy():
    values = [3.0, 1.0, 4.0, 1.5, 9.0]
    assert percentile(values, 0.0) == 1.0 and percentile(values, 1.0) == 9.0
    assert percentile(values, 0.5) == 3.0
    assert percentile(values, 0.9) == pytest.approx(7.0)  # numpy: 4 + 0.6 * (9 - 4)
    with pytest.raises(ValueError, match="share"):
        percentile(values, 1.5)


async def test_candidates_keep_the_signals_and_the_stored_rows_drop_the_logprobs(model_for):
    reply = confident_reply("So the answer is 42.", doubtful={8})
    _, model = model_for(lambda request: reply)
    prompt, progress = [{"role": "user", "content": "Q"}], ("sampled", "t", 0, 2)
    result = await tasks.sample_task.func(model, prompt, 2, {"top_logprobs": 2}, progress, (4, 4))
    rows = result["completions"]
    assert all("logprobs" not in row for row in rows)
    assert rows[0]["confidence"]["tokens"] == 11  # So, ' ', the, ' ', answer, ' ', is, ' ', 4...
    assert rows[0]["confidence"]["window"] == 4
    completions = [tasks.Completion.model_validate(row) for row in rows]
    [first, _] = tasks.candidates_from(completions)
    assert first.confidence is not None and first.confidence.lowest_group < first.confidence.mean
    json.dumps(result)  # the stored result is plain JSON


async def test_completions_without_logprobs_have_no_signals(model_for):
    _, model = model_for(lambda request: "42")
    result = await tasks.sample_task.func(
        model, [{"role": "user", "content": "Q"}], 1, {}, ("sampled", "t", 0, 1)
    )
    assert result["completions"][0]["confidence"] is None
