"""adaptive picks the policy's strategy for the probed difficulty and says why."""

from __future__ import annotations

import math

import pytest

from ttc_agent import Budget, Policy, RubricJudge, adaptive
from ttc_agent.strategies.adaptive import Choice
from ttc_agent.testing import Reply, fenced, judge_reply
from ttc_agent.verifiers.step_judge import LLMStepJudge

CRITERIA = ["correctness", "completeness", "specificity", "clarity"]


def scripted(answers: list[str], step_judge: bool = False):
    state = {"i": 0}

    def handler(request):
        candidate = fenced(request.last_user)
        if candidate is not None and request.body.get("max_tokens") == 2:
            return Reply("1", alternatives={0: {"1": -0.1, "0": -2.3}})
        if candidate is not None:
            return judge_reply(dict.fromkeys(CRITERIA, 3))
        if request.prefix is not None or request.body.get("stop"):
            return "So the answer is \\boxed{7}."
        answer = answers[state["i"] % len(answers)]
        state["i"] += 1
        return answer

    return handler


async def test_easy_questions_go_to_weighted_best_of_n(model_for):
    """The default policy follows Snell et al.: best-of-N on easy questions."""
    _, model = model_for(scripted(["The answer is 7."]))
    judge = RubricJudge("helpfulness", model, mode="structured")
    result = await adaptive(model, judge).ainvoke("What is 3 + 4?")
    decision = result.settings["decision"]
    assert decision["difficulty"] == "easy" and decision["agreement"] == 1.0
    assert result.settings["inner"] == "weighted_best_of_n" and result.selection == "weighted"
    assert "largest group 100%" in decision["reason"]
    assert "unlimited calls -> weighted_best_of_n n=16" in decision["reason"]


async def test_a_majority_vote_choice_counts_the_probe_among_its_n(model_for):
    _, model = model_for(scripted(["The answer is 7."]))
    judge = RubricJudge("helpfulness", model, mode="structured")
    policy = Policy(table=[Choice(difficulty="easy", strategy="majority_vote", n=8)])
    result = await adaptive(model, judge, policy=policy).ainvoke("What is 3 + 4?")
    assert result.settings["inner"] == "majority_vote" and result.selection == "majority"
    assert result.strategy == "adaptive"
    assert result.usage.generation.calls == 2  # the probe and the vote, one n-request each
    # the 4 probe answers are 4 of the vote's 8: 4 more sampled, 8 judged in all
    assert len(result.candidates) == 8
    assert result.usage.verification.calls == 8
    assert result.usage.generation.completion_tokens == 8 * 8  # "The answer is 7." is 8 tokens


async def test_scattered_answers_go_to_weighted_best_of_n(model_for):
    _, model = model_for(scripted(["It is 1.", "It is 2.", "It is 3.", "It is 4."]))
    judge = RubricJudge("helpfulness", model, mode="structured")
    result = await adaptive(model, judge, Budget(calls=40)).ainvoke("Hard question")
    decision = result.settings["decision"]
    assert decision["difficulty"] == "hard" and decision["agreement"] == 0.25
    assert decision["strategy"] == "weighted_best_of_n"
    assert result.selection == "weighted"
    assert decision["calls_left"] == 40 - 1 - 4  # after the probe's sample and judge calls


async def test_hardest_with_a_large_budget_go_to_beam_search(model_for):
    _, model = model_for(scripted(["It is 1.", "It is 2.", "It is 3.", "It is 4."]))
    judge = RubricJudge("helpfulness", model, mode="structured")
    node = adaptive(model, judge, Budget(calls=400), step_verifier=LLMStepJudge(model))
    result = await node.ainvoke("Hard question")
    assert result.settings["decision"]["strategy"] == "beam_search"
    assert result.settings["inner"] == "beam_search"
    assert result.answer.endswith("\\boxed{7}.")


async def test_the_policy_is_data_you_change(model_for):
    _, model = model_for(scripted(["The answer is 7."]))
    policy = Policy(table=[Choice(difficulty="easy", strategy="best_of_n", n=2)])
    judge = RubricJudge("helpfulness", model, mode="structured")
    result = await adaptive(model, judge, policy=policy).ainvoke("Q")
    assert result.settings["decision"]["strategy"] == "best_of_n"
    # n=2 is below the probe's 4: the probe answers, already paid for, are all candidates
    assert len(result.candidates) == 4
    assert result.usage.generation.calls == 1


def test_policy_thresholds():
    policy = Policy()
    assert policy.difficulty(agreement=1.0, spread=0.0) == "easy"
    assert policy.difficulty(agreement=0.5, spread=0.1) == "medium"
    assert policy.difficulty(agreement=0.5, spread=0.3) == "hard"
    assert policy.difficulty(agreement=0.25, spread=0.0) == "hard"
    assert policy.choose("medium", calls_left=10).n == 4  # beam search, at a low budget
    assert policy.choose("medium", calls_left=None).n == 32  # best-of-N, at a high one


async def test_the_probes_confidence_is_a_difficulty_signal_at_no_extra_calls(model_for):
    from ttc_agent.testing import confident_reply

    # the answers agree (easy by agreement), but the model was unsure as it wrote them
    unsure = confident_reply("The answer is 7.", sure=0.6)

    def handler(request):
        return judge_reply(dict.fromkeys(CRITERIA, 3)) if fenced(request.last_user) else unsure

    server, model = model_for(handler)
    judge = RubricJudge("helpfulness", model, mode="structured")
    policy = Policy(hard_confidence=1.0)
    result = await adaptive(model, judge, Budget(calls=40), policy=policy).ainvoke("Q")
    decision = result.settings["decision"]
    assert decision["agreement"] == 1.0 and decision["difficulty"] == "hard"
    assert decision["confidence"] == pytest.approx(-(math.log(0.6) + math.log(0.4)) / 2)
    assert "confidence 0.71" in decision["reason"]
    probe = server.requests[0].body
    assert probe["n"] == 4 and probe["top_logprobs"] == 20  # read from the probe itself
    assert decision["calls_left"] == 40 - 1 - 4  # no call more than without it


async def test_without_a_confidence_threshold_the_probe_asks_no_logprobs(model_for):
    server, model = model_for(scripted(["The answer is 7."]))
    judge = RubricJudge("helpfulness", model, mode="structured")
    result = await adaptive(model, judge).ainvoke("Q")
    assert "top_logprobs" not in server.requests[0].body
    assert result.settings["decision"]["confidence"] is None
    assert Policy().difficulty(1.0, 0.0, confidence=0.1) == "easy"  # not read unless asked
    assert Policy(hard_confidence=1.0).difficulty(1.0, 0.0, confidence=0.1) == "hard"
    assert Policy(hard_confidence=1.0).difficulty(1.0, 0.0, confidence=None) == "easy"
