"""Reason, then read the verdict: the reasoning is asked for without logprobs and stopped at
the cue; the verdict is one token continued from the reasoning, with its top logprobs."""

from __future__ import annotations

import math

import pytest

from ttc_agent import ConfigurationError, JudgeOutputError, OpenAIChat
from ttc_agent.testing import Reply, fenced
from ttc_agent.verifiers.step_judge import LLMStepJudge
from ttc_agent.verifiers.verdict import ReasonedVerdict

CHECK = "2 + 2 makes 4, as the step says."
QUESTION = [{"role": "user", "content": "Is 2 + 2 = 4 right? Check it, then say Verdict: 0 or 1"}]


def judge_handler(p_one: float, check: str = CHECK):
    """A judge that writes its check and its verdict, and whose verdict token puts ``p_one`` on
    1 when it continues a reply."""

    def handler(request):
        if request.prefix is None:
            return f"{check}\n\nVerdict: 1"  # the stop at "Verdict:" cuts the verdict off
        alternatives = {"1": math.log(p_one), "0": math.log(1 - p_one)}
        return Reply("1" if p_one >= 0.5 else "0", alternatives={0: alternatives})

    return handler


async def test_the_verdict_continues_the_reasoning_by_one_token_with_top_logprobs(model_for):
    server, model = model_for(judge_handler(0.8))
    reading = await ReasonedVerdict(model, ("0", "1"), top_logprobs=5).read(QUESTION)
    reasoning, verdict = server.requests
    assert "logprobs" not in reasoning.body and "top_logprobs" not in reasoning.body
    assert reasoning.body["stop"] == ["Verdict:"] and reasoning.prefix is None
    assert reading.reasoning == f"{CHECK}\n\n"
    assert verdict.prefix == f"{CHECK}\n\nVerdict: "  # the reasoning, then the cue
    assert verdict.messages[:-1] == QUESTION
    assert verdict.body["max_tokens"] == 1
    assert verdict.body["logprobs"] is True and verdict.body["top_logprobs"] == 5
    assert reading.probabilities == pytest.approx({"0": 0.2, "1": 0.8})
    assert reading.usage.calls == 2
    assert reading.usage.prompt_tokens == sum(r.usage["prompt_tokens"] for r in server.requests)


async def test_the_embedded_way_continues_chatml_over_completions(model_for):
    """The embedded model continues a reply as ChatML text for ``/completions``, where
    ``logprobs`` is the number of alternatives."""
    server, model = model_for(judge_handler(0.3), continuation="chatml")
    reading = await ReasonedVerdict(model, ("0", "1")).read(QUESTION)
    reasoning, verdict = server.requests
    assert reasoning.prompt is None and "logprobs" not in reasoning.body
    assert verdict.prompt.endswith(f"<|im_start|>assistant\n{CHECK}\n\nVerdict: ")
    assert verdict.body["max_tokens"] == 1 and verdict.body["logprobs"] == 10
    assert reading.probabilities == pytest.approx({"0": 0.7, "1": 0.3})


async def test_without_logprobs_the_written_label_is_the_verdict(loopback):
    server = loopback(judge_handler(0.3))
    options = {"api_key": "k", "logprobs": False, "continuation": "prefill"}
    async with OpenAIChat("m", base_url=server.base_url, **options) as model:
        reading = await ReasonedVerdict(model, ("0", "1")).read(QUESTION)
    assert "top_logprobs" not in server.requests[1].body
    assert reading.probabilities == {"0": 1.0, "1": 0.0}


async def test_a_judge_that_cannot_continue_a_reply_is_refused_before_any_call(model_for):
    server, model = model_for(judge_handler(0.8), flavour="openai")
    with pytest.raises(ConfigurationError, match="continue partial replies"):
        await ReasonedVerdict(model, ("0", "1")).read(QUESTION)
    assert server.requests == []


def test_a_verdict_needs_labels_and_a_cue():
    model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
    with pytest.raises(ConfigurationError, match="two or more distinct labels"):
        ReasonedVerdict(model, ("1", "1"))
    with pytest.raises(ConfigurationError, match="cue"):
        ReasonedVerdict(model, ("0", "1"), cue="\n")


async def test_the_step_judge_checks_the_step_before_its_digit_when_asked(model_for):
    server, model = model_for(judge_handler(0.9))
    judge = LLMStepJudge(model, reasoning=True)
    [scores] = await judge.score_steps(QUESTION, [["2 + 2 = 4"]])
    assert scores.steps == pytest.approx([0.9])
    assert scores.usage.calls == 2
    assert judge.name == "math_step:reasoning"
    reasoning, verdict = server.requests
    assert "First check the latest step" in reasoning.last_user
    assert "'Verdict: ' and one digit" in reasoning.last_user
    assert fenced(reasoning.last_user) == "2 + 2 = 4"
    assert verdict.body["max_tokens"] == 1 and verdict.prefix.endswith("Verdict: ")


async def test_a_reasoned_step_verdict_without_a_digit_is_asked_again_then_raised(model_for):
    def undecided(request):
        if request.prefix is None:
            return "Hmm."
        return Reply("maybe", alternatives={0: {"maybe": -0.1, "perhaps": -2.5}})

    server, model = model_for(undecided)
    judge = LLMStepJudge(model, reasoning=True, attempts=2)
    with pytest.raises(JudgeOutputError, match="math_step:reasoning") as caught:
        await judge.score_steps(QUESTION, [["2 + 2 = 4"]])
    assert caught.value.raw == "Hmm.\n\nVerdict: maybe"
    temperatures = [r.body["temperature"] for r in server.requests]
    assert temperatures == [0.0, 0.0, 0.7, 0.0]  # a second check, hotter; verdicts greedy


@pytest.mark.embedded
async def test_the_embedded_judge_reasons_then_gives_its_digits_probability():
    async with OpenAIChat(timeout=600, logprobs=True) as model:
        judge = LLMStepJudge(model, reasoning=True, reasoning_tokens=48)
        prompt = [{"role": "user", "content": "What is 2 + 3?"}]
        [scores] = await judge.score_steps(prompt, [["2 + 3 = 5. The answer is 5."]])
    assert 0.0 < scores.steps[0] < 1.0  # a probability read from logprobs, not a digit
    assert scores.usage.calls == 2
