"""The step judge as a step judge: its scores aggregate by ``min`` unless told otherwise, and
concurrent calls for the same step ask once."""

from __future__ import annotations

import asyncio
import time

import pytest
from test_step_search import NumberVerifier, _log

from ttc_agent import OpenAIChat, RubricJudge, StepsAsOutcome
from ttc_agent.strategies.beam_search import beam_search
from ttc_agent.strategies.dvts import dvts
from ttc_agent.testing import Reply, fenced, judge_reply
from ttc_agent.types import Usage
from ttc_agent.verifiers.step_judge import LLMStepJudge


async def test_the_step_judge_aggregates_by_min_so_an_early_error_sinks_a_solution(model_for):
    """A starts wrong (0.1) and ends confident (0.9); B is 0.6 throughout. The judge asks about
    the latest step only, so the last score alone would pick A."""
    verdicts = {"wrong start": 0.1, "good start": 0.6, "{5}.": 0.9, "{4}.": 0.6}

    def handler(request):
        candidate = fenced(request.last_user)
        if candidate is not None:
            latest = candidate.split("\n\n")[-1]
            good = next(p for end, p in verdicts.items() if latest.endswith(end))
            return Reply("1", alternatives={0: {"1": _log(good), "0": _log(1 - good)}})
        if request.prefix is None:
            return ["wrong start", "good start"][request.choice]
        answer = 5 if request.prefix.startswith("wrong") else 4
        return f"so the answer is \\boxed{{{answer}}}."

    _, model = model_for(handler, honour_n=True)
    node = beam_search(model, LLMStepJudge(model), n=2, keep=2, max_steps=3)
    result = await node.ainvoke("Q")
    assert result.settings["aggregate"] == "min"
    assert result.answer == "good start\n\nso the answer is \\boxed{4}."
    last = await node.ainvoke("Q", aggregate="last")  # an explicit aggregate still rules
    assert last.answer == "wrong start\n\nso the answer is \\boxed{5}."


def test_the_default_aggregate_is_the_step_verifiers_own():
    model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
    judge, rubric = LLMStepJudge(model), RubricJudge("writing_quality", model)
    assert beam_search(model, judge).settings.aggregate == "min"
    assert dvts(model, judge).settings.aggregate == "min"
    assert beam_search(model, NumberVerifier()).settings.aggregate == "last"  # no preference
    assert beam_search(model, rubric).settings.aggregate == "last"  # drafts: the latest draft
    assert beam_search(model, judge, aggregate="mean").settings.aggregate == "mean"
    assert StepsAsOutcome(judge).name == "math_step:min"


async def test_the_step_judge_asks_once_for_a_step_two_calls_need_at_once(model_for):
    """Each solution is its own task, so siblings with the same step are scored by concurrent
    calls: the second awaits the first's verdict instead of asking again."""

    def handler(request):
        time.sleep(0.05)
        return Reply("1", alternatives={0: {"1": _log(0.8), "0": _log(0.2)}})

    server, model = model_for(handler)
    judge = LLMStepJudge(model)
    prompt = [{"role": "user", "content": "2+2?"}]
    first, second = await asyncio.gather(
        judge.score_steps(prompt, [["2+2", "= 4"]]), judge.score_steps(prompt, [["2+2", "= 4"]])
    )
    assert len(server.requests) == 2  # "2+2" and "2+2 = 4", once each
    assert first[0].steps == second[0].steps == pytest.approx([0.8, 0.8])
    assert first[0].usage.calls + second[0].usage.calls == 2  # paid once, by the first


async def test_llm_step_judge_scores_with_logprobs_and_caches(model_for):
    def handler(request):
        candidate = fenced(request.last_user)
        if candidate is not None:
            good = 0.8 if candidate.endswith("4") else 0.3
            return Reply("1", alternatives={0: {"1": _log(good), "0": _log(1 - good)}})
        return "unused"

    server, model = model_for(handler)
    judge = LLMStepJudge(model)
    scores = await judge.score_steps(
        [{"role": "user", "content": "2+2?"}], [["2+2", "= 4"], ["2+2", "= 5"]]
    )
    assert [s.steps for s in scores] == [pytest.approx([0.3, 0.8]), pytest.approx([0.3, 0.3])]
    assert len(server.requests) == 3  # the shared first step was judged once
    again = await judge.score_steps([{"role": "user", "content": "2+2?"}], [["2+2", "= 4"]])
    assert again[0].usage == Usage() and len(server.requests) == 3


async def test_rubric_judge_as_step_verifier_for_writing(model_for):
    criteria = ["clarity", "style", "engagement", "relevance"]

    def handler(request):
        candidate = fenced(request.last_user)
        if candidate is not None:
            return judge_reply(dict.fromkeys(criteria, 5 if "vivid" in candidate else 2))
        depth = (request.prefix or "").count("\n\n")
        return (
            ["A vivid opening.", "A dull opening."][request.index % 2]
            if depth == 0
            else "The end, as the answer is \\boxed{0}."
        )

    _, model = model_for(handler, honour_n=False)
    judge = RubricJudge("writing_quality", model, mode="structured")
    result = await beam_search(model, judge, n=2, keep=1, max_steps=3).ainvoke("Write a story.")
    assert result.answer.startswith("A vivid opening.")
    assert result.settings["verifier"] == "writing_quality"
