"""Verifier diagnostics: AUROC with a bootstrap interval, the mean scores of right and wrong
candidates, calibration error, lift over majority, and the score plot, wherever ``ttc eval``
runs."""

from __future__ import annotations

import json

import pytest

from ttc_agent import OpenAIChat, RubricJudge
from ttc_agent.evaluation import Sample, evaluate, load_problems, sweep
from ttc_agent.evaluation.diagnostics import (
    auroc,
    auroc_interval,
    calibration_error,
    diagnose,
    lift_over_majority,
)
from ttc_agent.testing import fenced, judge_reply


def test_auroc_is_the_chance_a_right_candidate_outscores_a_wrong_one():
    assert auroc([0.9, 0.4, 0.5, 0.1], [True, True, False, False]) == 0.75
    assert auroc([0.9, 0.8, 0.2], [True, True, False]) == 1.0
    assert auroc([0.1, 0.8, 0.9], [True, False, False]) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], [True, False, True, False]) == 0.5  # ties count half
    assert auroc([0.5, 0.7], [True, True]) is None  # no wrong candidate: undefined
    assert auroc([], []) is None


def test_the_auroc_interval_resamples_problems_and_is_repeatable():
    problems = [
        [(0.9, True), (0.3, False), (0.6, True)],
        [(0.8, True), (0.7, False)],
        [(0.2, False), (0.4, False), (0.95, True)],
        [(0.5, True), (0.6, False)],
    ]
    low, high = auroc_interval(problems, seed=3)
    assert (low, high) == auroc_interval(problems, seed=3)
    pooled = [pair for problem in problems for pair in problem]
    point = auroc([s for s, _ in pooled], [r for _, r in pooled])
    assert low <= point <= high and low < high
    assert auroc_interval([[(0.5, True)]]) is None  # one class in every resample


def test_calibration_error_compares_scores_with_how_often_they_are_right():
    assert calibration_error([1.0, 1.0, 0.0, 0.0], [True, True, False, False]) == 0.0
    assert calibration_error([0.8] * 4, [True, True, False, False]) == pytest.approx(0.3)
    # two bins: 0.95 right half the time (0.45 off), 0.05 never right (0.05 off)
    error = calibration_error([0.95, 0.95, 0.05, 0.05], [True, False, False, False])
    assert error == pytest.approx((0.45 * 2 + 0.05 * 2) / 4)


def test_lift_over_majority_at_every_n():
    problems = {
        "a": [Sample("1", 0.9, False), Sample("2", 0.1, True), Sample("2", 0.2, True)],
        "b": [Sample("3", 0.9, True), Sample("4", 0.2, False), Sample("4", 0.3, False)],
    }
    lift = lift_over_majority(sweep(problems, 2))
    # n=2: majority takes the first answer (a wrong, b right: 50 %); naive picks 0.9 (a wrong,
    # b right: 50 %); weighted 1 (0.9) over 2 (0.1) in a, 3 (0.9) in b: 50 %
    assert lift == {"1": {"naive": 0.0, "weighted": 0.0}, "2": {"naive": 0.0, "weighted": 0.0}}
    problems["a"][0] = Sample("1", 0.05, False)
    lift = lift_over_majority(sweep(problems, 2))
    assert lift["2"] == {"naive": 0.5, "weighted": 0.5}  # the verifier now picks a's answer


def test_diagnose_summarises_a_verifier_on_scored_samples():
    problems = {
        "a": [Sample("7", 0.9, True), Sample("3", 0.2, False)],
        "b": [Sample("7", 0.6, True), Sample(None, None, False)],  # unscored: left out
    }
    found = diagnose("judge", problems, sweep(problems, 2))
    assert (found.name, found.candidates, found.right) == ("judge", 3, 2)
    assert found.auroc == 1.0 and found.mean_right == 0.75 and found.mean_wrong == 0.2
    as_json = found.as_json()
    assert list(as_json)[:4] == ["name", "auroc", "auroc_interval", "lift_over_majority"]
    assert as_json["lift_over_majority"]["2"] == {"naive": 0.0, "weighted": 0.0}
    assert "AUROC 1.00" in found.line()


QUESTIONS = {"What is 3 + 4?": "7", "What is 2 * 5?": "10", "What is 9 - 1?": "8"}
CRITERIA = ["correctness", "completeness", "specificity", "clarity"]


def world(request):
    """Candidate i answers right when i is even; the judge gives right answers 4, wrong 2."""
    candidate = fenced(request.last_user)
    if candidate is not None:
        right = any(f"\\boxed{{{gold}}}" in candidate for gold in QUESTIONS.values())
        return judge_reply(dict.fromkeys(CRITERIA, 4 if right else 2))
    gold = QUESTIONS[request.last_user.split("\n")[0]]
    answer = gold if request.choice % 2 == 0 else str(int(gold) + 100)
    return f"Working it out. The answer is \\boxed{{{answer}}}."


@pytest.fixture
def problems(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps({"q": q, "a": a}) + "\n" for q, a in QUESTIONS.items()))
    return load_problems(path, question="q", answer="a")


async def test_summary_json_holds_the_verifier_and_the_scores_plot(loopback, tmp_path, problems):
    server = loopback(world)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        judge = RubricJudge("helpfulness", model, mode="structured")
        summary = await evaluate(problems, model, n=4, out=tmp_path / "run", verifier=judge)
        plain = await evaluate(problems, model, n=2, out=tmp_path / "plain", plot=False)
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    verifier = saved["verifier"]
    assert verifier["name"] == "helpfulness"
    assert verifier["auroc"] == 1.0 and verifier["auroc_interval"] == [1.0, 1.0]
    assert set(verifier["lift_over_majority"]) == {"1", "2", "4"}
    assert verifier["lift_over_majority"]["2"] == {"naive": 0.0, "weighted": 0.0}
    assert verifier["mean_right"] == 0.75 and verifier["mean_wrong"] == 0.25
    assert summary.verifier is not None and summary.verifier.auroc == 1.0
    assert (tmp_path / "run" / "scores.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "plain" / "summary.json").read_text())["verifier"] is None
    assert plain.verifier is None


def test_ttc_eval_prints_the_verifier_line(loopback, tmp_path, problems):
    from test_cli import ttc_eval

    server = loopback(world)
    data, out = tmp_path / "questions.jsonl", tmp_path / "run"
    done = ttc_eval(
        data,
        "-n",
        "2",
        "--judge",
        "helpfulness",
        "--out",
        str(out),
        server=server,
    )
    assert done.returncode == 0, done.stderr
    assert "verifier helpfulness: AUROC 1.00 (95 % interval 1.00 to 1.00)" in done.stdout
    assert "scores: " in done.stdout and (out / "scores.png").is_file()
