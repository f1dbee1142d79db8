"""Verifiers that reason before the verdict: a card can ask its judge to work first (the
``math_resolve`` card: solve the problem, compare final answers), and the verdict's probability
is read after the reasoning, without logprobs on the reasoning itself."""

from __future__ import annotations

import json
import math

import pytest

from ttc_agent import JudgeCardError, LLMStepJudge, load_card
from ttc_agent.testing import Reply, fenced
from ttc_agent.verifiers.from_card import verifier_for
from ttc_agent.verifiers.judge_card import card_directories

PROBLEM = [{"role": "user", "content": "Tom has 3 apples and buys 4 more. How many?"}]


def resolver(p_right: float):
    """A judge that solves the problem, then puts ``p_right`` on 1 at its verdict token."""

    def handler(request):
        if request.prefix is None:
            return "I solve it: 3 + 4 = 7. The student says 7: the same.\n\nVerdict: 1"
        top = {"1": math.log(p_right), "0": math.log(1 - p_right)}
        return Reply("1", alternatives={0: top})

    return handler


def test_the_math_resolve_card_asks_for_a_solution_first():
    card = load_card("math_resolve")
    assert card.scale.points == [0, 1]
    assert "solve the problem yourself" in card.reasoning.instruction
    assert card.reasoning.max_tokens >= 300  # room to solve a GSM8K problem


async def test_a_reasoning_card_makes_the_judge_solve_before_its_verdict(model_for):
    server, model = model_for(resolver(0.85))
    verifier = verifier_for("math_resolve", model)
    assert verifier.name == "math_resolve:reasoning"
    [score] = await verifier.score(PROBLEM, ["3 + 4 = 7. The answer is 7."])
    assert score.value == pytest.approx(0.85)
    reasoning, verdict = server.requests
    assert "solve the problem yourself" in reasoning.last_user
    assert "'Verdict: ' and one digit" in reasoning.last_user
    assert fenced(reasoning.last_user) == "3 + 4 = 7. The answer is 7."
    assert reasoning.body["max_tokens"] == load_card("math_resolve").reasoning.max_tokens
    assert "logprobs" not in reasoning.body
    assert verdict.body["max_tokens"] == 1 and verdict.body["top_logprobs"] == 10


async def test_a_judge_told_not_to_reason_gives_its_digit_alone(model_for):
    server, model = model_for(lambda request: Reply("1", alternatives={0: {"1": -0.1}}))
    judge = LLMStepJudge(model, "math_resolve", reasoning=False)
    [scores] = await judge.score_steps(PROBLEM, [["The answer is 7."]])
    assert scores.steps == [1.0] and len(server.requests) == 1
    assert "Reply with one digit and nothing else" in server.requests[0].last_user


def test_a_card_whose_reasoning_is_malformed_is_refused(tmp_path):
    text = (card_directories()[0] / "math_resolve.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("max_tokens = 400", "max_tokens = 0"))
    with pytest.raises(JudgeCardError, match=r"reasoning\.max_tokens"):
        load_card(bad)


def test_ttc_eval_with_a_reasoning_card_needs_a_judge_that_continues(loopback, tmp_path):
    from test_cli import ttc_eval

    def world(request):
        if fenced(request.prompt or request.last_user) is not None:
            return resolver(0.9)(request)
        return "3 + 4 = 7. The answer is \\boxed{7}."

    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"q": PROBLEM[0]["content"], "a": "7"}) + "\n")
    args = (
        "-n",
        "2",
        "--judge",
        "math_resolve",
    )
    server = loopback(world, flavour="vllm")
    done = ttc_eval(data, *args, "--out", str(tmp_path / "ok"), server=server)
    assert done.returncode == 0, done.stderr
    assert "verifier math_resolve:reasoning" in done.stdout
    openai = loopback(world, flavour="openai")
    refused = ttc_eval(data, *args, "--out", str(tmp_path / "no"), server=openai)
    assert refused.returncode == 2 and "continue" in refused.stderr
    assert openai.requests == []
