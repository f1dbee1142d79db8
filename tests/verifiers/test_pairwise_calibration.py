"""Debiased pairwise judging: the judge reasons, then its verdict token's probabilities of A, B
and tie are read in both orders and averaged, so a judge that always says "A" yields a tie; and
``ttc agreement`` reports accuracy with and without that calibration, with 95 % intervals."""

from __future__ import annotations

import json
import math

import pytest

from ttc_agent import ConfigurationError, JudgeOutputError, OpenAIChat, PairwiseJudge
from ttc_agent.evaluation.agreement import agreement_table, judge_agreement, load_pairs, measure
from ttc_agent.testing import Reply, fenced

PROMPT = [{"role": "user", "content": "Say hi."}]


def biased_judge(p_a_when_good_first: float, p_a_when_good_second: float):
    """A judge that reasons, then puts these probabilities on "A" at its verdict token (the rest
    on "B"), by whether the GOOD response is shown first."""

    def handler(request):
        text = request.prompt or request.last_user
        first = fenced(text, "RESPONSE A")
        if request.prefix is None:
            return "Both answer; one is better.\n\nVerdict: A"
        p_a = p_a_when_good_first if "GOOD" in first else p_a_when_good_second
        top = {"A": math.log(p_a), "B": math.log(1 - p_a)}
        return Reply("A" if p_a >= 0.5 else "B", alternatives={0: top})

    return handler


async def test_a_judge_that_always_says_a_yields_a_tie(model_for):
    server, model = model_for(biased_judge(0.9, 0.9))
    both = await PairwiseJudge("writing_quality", model).compare_both_orders(PROMPT, "GOOD", "bad")
    assert both.preference == pytest.approx(0.5) and both.outcome == "tie"
    assert both.uncalibrated == "tie"
    assert len(server.requests) == 4  # per order: the reasoning, then the verdict token
    reasoning = [r for r in server.requests if r.prefix is None]
    verdicts = [r for r in server.requests if r.prefix is not None]
    assert all("logprobs" not in r.body for r in reasoning)
    assert all(r.body["stop"] == ["Verdict:"] for r in reasoning)
    assert all("'Verdict: ' and one of A, B or tie" in r.last_user for r in reasoning)
    assert all(r.body["max_tokens"] == 1 and r.body["top_logprobs"] == 10 for r in verdicts)
    assert all(r.prefix.endswith("Verdict: ") for r in verdicts)
    assert both.usage.calls == 4


async def test_calibration_recovers_a_preference_that_position_bias_hides(model_for):
    """P(A) is 0.95 with the better answer first and 0.6 with it second: both orders say A, a
    tie on labels, but the averaged probabilities favour the better answer (0.675)."""
    _, model = model_for(biased_judge(0.95, 0.6))
    judge = PairwiseJudge("writing_quality", model)
    good_first = await judge.compare_both_orders(PROMPT, "GOOD", "bad")
    assert good_first.uncalibrated == "tie"
    assert good_first.outcome == "first" and good_first.preference == pytest.approx(0.675)
    assert good_first.ab.probabilities == pytest.approx({"A": 0.95, "B": 0.05, "tie": 0.0})
    good_second = await judge.compare_both_orders(PROMPT, "bad", "GOOD")
    assert good_second.outcome == "second" and good_second.preference == pytest.approx(0.325)


async def test_without_logprobs_the_written_labels_keep_the_both_orders_rule(loopback):
    server = loopback(biased_judge(0.95, 0.6))
    options = {"api_key": "k", "logprobs": False, "continuation": "prefill"}
    async with OpenAIChat("m", base_url=server.base_url, **options) as model:
        both = await PairwiseJudge("writing_quality", model).compare_both_orders(
            PROMPT, "GOOD", "bad"
        )
    assert "top_logprobs" not in server.requests[-1].body
    assert (both.ab.winner, both.ba.winner) == ("A", "A")
    assert both.outcome == both.uncalibrated == "tie" and both.preference == 0.5


async def test_a_judge_that_cannot_continue_a_reply_answers_in_json(model_for):
    server, model = model_for(
        lambda request: json.dumps({"reason": "r", "winner": "A"}), flavour="openai"
    )
    both = await PairwiseJudge("writing_quality", model).compare_both_orders(PROMPT, "x", "y")
    assert both.outcome == "tie" and len(server.requests) == 2
    assert all('"winner": "A" or "B" or "tie"' in r.last_user for r in server.requests)
    with pytest.raises(ConfigurationError, match="continue partial replies"):
        await PairwiseJudge("writing_quality", model, verdict="reasoned").compare(PROMPT, "x", "y")
    assert len(server.requests) == 2


async def test_a_verdict_without_a_label_is_asked_again_then_raised(model_for):
    def undecided(request):
        if request.prefix is None:
            return "Hard to say."
        return Reply("maybe", alternatives={0: {"maybe": -0.1, "perhaps": -2.5}})

    server, model = model_for(undecided)
    judge = PairwiseJudge("writing_quality", model, attempts=2)
    with pytest.raises(JudgeOutputError, match="no A, B or tie at the verdict") as caught:
        await judge.compare(PROMPT, "x", "y")
    assert caught.value.raw == "Hard to say.\n\nVerdict: maybe"
    assert [r.body["temperature"] for r in server.requests] == [0.0, 0.0, 0.7, 0.0]


PAIRS = [
    {"input": "Say hi.", "output_1": "GOOD hi", "output_2": "bad", "label": 1},
    {"input": "Say bye.", "output_1": "bad", "output_2": "GOOD bye", "label": 2},
    {"input": "Count.", "output_1": "GOOD 1 2 3", "output_2": "bad", "label": 1},
    {"input": "Greet.", "output_1": "bad", "output_2": "GOOD hello", "label": 2},
]


async def test_agreement_reports_accuracy_with_and_without_calibration(model_for, tmp_path):
    _, model = model_for(biased_judge(0.95, 0.6))
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(PAIRS))
    [result] = await judge_agreement(
        load_pairs(path), [PairwiseJudge("writing_quality", model)], out=tmp_path / "agree"
    )
    assert result.accuracy == 0.0  # every pair: A in both orders, a tie on labels
    assert result.calibrated_accuracy == 1.0
    assert result.accuracy_interval == (0.0, 0.0)
    assert result.calibrated_interval == (1.0, 1.0)
    rows = [json.loads(line) for line in (tmp_path / "agree" / "verdicts.jsonl").open()]
    first = next(row for row in rows if row["pair"] == "0")  # GOOD is output 1, shown first
    assert first["p_ab"] == pytest.approx({"A": 0.95, "B": 0.05, "tie": 0.0})
    table = agreement_table([result])
    assert "| calibrated | 95 % interval |" in table.splitlines()[0]
    assert "| 0.0% | 0% to 0% | 100.0% | 100% to 100% |" in table


def test_rows_without_probabilities_are_calibrated_as_their_labels():
    """Verdicts saved before calibration existed: one-hot on the winner each."""
    result = measure("j", [("A", "B", 1), ("A", "A", 2), ("tie", "A", 2)])
    assert result.accuracy == result.calibrated_accuracy == pytest.approx(1 / 3)
    shares = [({"A": 0.9, "B": 0.1}, {"A": 0.6, "B": 0.4})]  # favours output 1: the label
    calibrated = measure("j", [("A", "A", 1)], shares)
    assert (calibrated.accuracy, calibrated.calibrated_accuracy) == (0.0, 1.0)
