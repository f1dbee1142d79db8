"""Policies: the default table follows Snell et al., a fitted policy bins questions by the
probe's mean verifier score and is saved and loaded as JSON, and a policy whose verifier is no
better than chance makes adaptive and think_harder fall back to self-consistency."""

from __future__ import annotations

import json

import pytest

from ttc_agent import ConfigurationError, Policy, RubricJudge, adaptive, think_harder
from ttc_agent.answers import last_number
from ttc_agent.strategies.adaptive import Choice
from ttc_agent.strategies.think_harder import Preset
from ttc_agent.testing import fenced, judge_reply

CRITERIA = ["correctness", "completeness", "specificity", "clarity"]


def test_the_default_policy_follows_snell():
    """Beam search at low budgets on medium and hard questions, best-of-N at high budgets and
    on easy questions (Snell et al. 2024, section 5.3)."""
    policy = Policy()
    assert policy.choose("easy", calls_left=10).strategy == "weighted_best_of_n"
    assert policy.choose("easy", calls_left=None).strategy == "weighted_best_of_n"
    assert policy.choose("medium", calls_left=10).strategy == "beam_search"
    assert policy.choose("medium", calls_left=None).strategy == "weighted_best_of_n"
    assert policy.choose("hard", calls_left=10).strategy == "beam_search"
    assert policy.choose("hard", calls_left=None).strategy == "beam_search"
    assert policy.choose("hard", calls_left=None).n > policy.choose("hard", calls_left=10).n


def test_a_fitted_policy_bins_by_the_probes_mean_score():
    policy = Policy(score_bins=(0.4, 0.7))
    assert policy.difficulty(agreement=0.2, spread=0.5, mean_score=0.7) == "easy"
    assert policy.difficulty(agreement=1.0, spread=0.0, mean_score=0.5) == "medium"
    assert policy.difficulty(agreement=1.0, spread=0.0, mean_score=0.39) == "hard"
    with pytest.raises(ValueError, match="score_bins must be ascending"):
        Policy.model_validate({"score_bins": [0.8, 0.3]})


def test_a_policy_is_saved_and_loaded_as_json(tmp_path):
    policy = Policy(
        score_bins=(0.3, 0.6),
        table=[Choice(difficulty="hard", strategy="majority_vote", n=4)],
        verifier={"name": "math_solution", "auroc": 0.52, "auroc_interval": (0.41, 0.63)},
    )
    path = policy.save(tmp_path / "policy.json")
    assert json.loads(path.read_text())["verifier"]["auroc_interval"] == [0.41, 0.63]
    assert Policy.load(path) == policy
    assert Policy.load(path).verifier.at_chance


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no policy file at"),
        ("{not json", "not a policy"),
        ('{"table": [{"difficulty": "odd", "strategy": "x", "n": 1}]}', "table.0.difficulty"),
    ],
)
def test_a_bad_policy_file_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "policy.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigurationError, match=message) as caught:
        Policy.load(path)
    assert str(path) in str(caught.value)


def agreeing(request):
    """Every answer is 7; the judge gives everything 3 of 5 (a normalised 0.5)."""
    if fenced(request.last_user) is not None:
        return judge_reply(dict.fromkeys(CRITERIA, 3))
    return "The answer is 7."


def scattered(texts):
    state = {"i": 0}

    def handler(request):
        if fenced(request.last_user) is not None:
            return judge_reply(dict.fromkeys(CRITERIA, 3))
        state["i"] += 1
        return texts[(state["i"] - 1) % len(texts)]

    return handler


AT_CHANCE = {"name": "helpfulness", "auroc": 0.5, "auroc_interval": (0.38, 0.61)}
HELPS = {"name": "helpfulness", "auroc": 0.8, "auroc_interval": (0.71, 0.88)}
TABLE = [Choice(difficulty=d, strategy="best_of_n", n=6) for d in ("easy", "medium", "hard")]


async def test_adaptive_reads_the_fitted_bins(model_for):
    _, model = model_for(agreeing)
    policy = Policy(score_bins=(0.6, 0.8), table=TABLE)
    judge = RubricJudge("helpfulness", model, mode="structured")
    result = await adaptive(model, judge, policy=policy).ainvoke("What is 3 + 4?")
    decision = result.settings["decision"]
    assert decision["mean_score"] == 0.5 and decision["difficulty"] == "hard"
    assert "mean score 0.50 -> hard" in decision["reason"]


async def test_adaptive_falls_back_to_self_consistency_when_its_verifier_is_at_chance(model_for):
    _, model = model_for(scattered(["It is 1.", "It is 2.", "It is 2.", "It is 3."]))
    judge = RubricJudge("helpfulness", model, mode="structured")
    chance = Policy(table=TABLE, verifier=AT_CHANCE)
    result = await adaptive(model, judge, policy=chance).ainvoke("Q")
    decision = result.settings["decision"]
    assert decision["strategy"] == "majority_vote" and decision["fallback"] == "self-consistency"
    assert result.selection == "majority" and len(result.candidates) == 6
    assert "AUROC interval 0.38 to 0.61 contains 0.5" in decision["reason"]
    assert "majority_vote n=6 instead of best_of_n" in decision["reason"]

    helpful = Policy(table=TABLE, verifier=HELPS)
    result = await adaptive(model, judge, policy=helpful).ainvoke("Q")
    assert result.settings["decision"]["strategy"] == "best_of_n"
    assert "fallback" not in result.settings["decision"]


async def test_adaptive_keeps_the_judge_when_answers_cannot_be_compared(model_for):
    _, model = model_for(scattered(["A poem.", "Another poem.", "A third.", "A fourth."]))
    judge = RubricJudge("helpfulness", model, mode="structured")
    node = adaptive(model, judge, policy=Policy(table=TABLE, verifier=AT_CHANCE))
    decision = (await node.ainvoke("Write a poem")).settings["decision"]
    assert decision["strategy"] == "best_of_n" and "fallback" not in decision
    assert "answers cannot be compared" in decision["reason"]


async def test_think_harder_falls_back_to_self_consistency_when_its_judge_is_at_chance(model_for):
    server, model = model_for(scattered(["It is 1.", "It is 2.", "It is 2.", "It is 3."]))
    judge = RubricJudge("helpfulness", model, mode="structured")
    chance = Policy(verifier=AT_CHANCE)
    node = think_harder(model, judge, "low", policy=chance, answer_key=last_number)
    result = await node.ainvoke("Q")
    assert result.strategy == "majority_vote" and result.answer == "It is 2."
    decision = result.settings["decision"]
    assert decision["fallback"] == "self-consistency"
    assert "contains 0.5" in decision["reason"] and "instead of best_of_n" in decision["reason"]
    assert not [r for r in server.requests if fenced(r.last_user) is not None]  # no judging

    unkeyed = think_harder(model, judge, "low", policy=chance)  # nothing to compare by
    result = await unkeyed.ainvoke("Q")
    assert result.strategy == "best_of_n"
    assert "answers cannot be compared" in result.settings["decision"]["reason"]
    vote = {"low": Preset(strategy="majority_vote", n=4)}
    result = await think_harder(model, judge, "low", vote, policy=chance).ainvoke("Q")
    assert "decision" not in result.settings  # a vote needs no judge: nothing to fall back from


def test_ttc_run_decides_by_a_policy_file(loopback, tmp_path):
    from test_cli import ttc

    server = loopback(scattered(["It is 1.", "It is 2.", "It is 2.", "It is 3."]), honour_n=True)
    path = Policy(table=TABLE, verifier=AT_CHANCE).save(tmp_path / "policy.json")
    done = ttc("run", "Q", "--strategy", "adaptive", "--policy", str(path), "--json", server=server)
    assert done.returncode == 0, done.stderr
    decision = json.loads(done.stdout)["settings"]["decision"]
    assert decision["strategy"] == "majority_vote" and decision["fallback"] == "self-consistency"
    done = ttc(
        "run",
        "Q",
        "--effort",
        "low",
        "--answer",
        "number",
        "--policy",
        str(path),
        "--json",
        server=server,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["strategy"] == "majority_vote"
    missing = ttc(
        "run", "Q", "--strategy", "adaptive", "--policy", str(tmp_path / "no.json"), server=server
    )
    assert missing.returncode == 2 and "no policy file at" in missing.stderr
