"""``ttc eval --fit-policy``: difficulty bins from the quantiles of the probe's mean verifier score,
and per bin and budget the strategy that scored best on the evaluation's data."""

from __future__ import annotations

import json

import pytest

from ttc_agent import ConfigurationError, Policy
from ttc_agent.evaluation import Sample
from ttc_agent.evaluation.diagnostics import VerifierDiagnostics
from ttc_agent.evaluation.policy_fit import fit_policy
from ttc_agent.testing import fenced, judge_reply

T, F = True, False
# the first two candidates are the probe (probe=2): their mean score predicts the difficulty
EASY = [Sample("1", 0.9, T), Sample("1", 0.9, T), Sample("2", 0.95, F), Sample("1", 0.2, T)]
MEDIUM = [Sample("3", 0.5, T), Sample("4", 0.5, F), Sample("4", 0.5, F), Sample("3", 0.6, T)]
HARD = [Sample("5", 0.1, F), Sample("5", 0.2, F), Sample("6", 0.8, T), Sample("6", 0.7, T)]
SAMPLES = {"e1": EASY, "e2": EASY, "m1": MEDIUM, "m2": MEDIUM, "h1": HARD, "h2": HARD}
DIAGNOSTICS = VerifierDiagnostics("judge", 24, 12, 0.55, (0.45, 0.66), 0.6, 0.5, 0.1, {})


def test_bins_come_from_the_quantiles_of_the_probes_mean_score():
    policy = fit_policy(SAMPLES, probe=2, verifier=DIAGNOSTICS)
    low, high = policy.score_bins
    assert 0.15 < low < 0.5 < high < 0.9
    assert policy.difficulty(0, 0, mean_score=0.9) == "easy"
    assert policy.difficulty(0, 0, mean_score=0.5) == "medium"
    assert policy.difficulty(0, 0, mean_score=0.15) == "hard"
    assert policy.verifier.name == "judge" and policy.verifier.auroc_interval == (0.45, 0.66)
    assert policy.verifier.at_chance


def test_each_bin_and_budget_gets_the_best_choice_it_affords():
    """Budgets are the calls left after the probe: 2 (k - probe) for a choice that reuses it.
    Ties go to the cheaper choice, then to majority voting, weighted, then naive best-of-N."""
    policy = fit_policy(SAMPLES, probe=2)
    rows = {(r.difficulty, r.min_calls): (r.strategy, r.n) for r in policy.table}
    assert rows == {
        ("easy", 0): ("majority_vote", 2),  # everything is right at n=2
        ("medium", 0): ("majority_vote", 2),
        ("hard", 0): ("majority_vote", 2),  # nothing is right at n=2: the cheapest
        ("hard", 4): ("weighted_best_of_n", 4),  # the right answers come at n=4
    }
    assert policy.choose("hard", calls_left=3).strategy == "majority_vote"
    assert policy.choose("hard", calls_left=None).n == 4
    assert policy.verifier is None


def test_step_searches_compete_at_the_calls_they_took():
    searches = [
        {"problem": p, "strategy": "beam_search", "n": 2, "correct": True, "calls": 30}
        for p in SAMPLES
    ]
    policy = fit_policy(SAMPLES, probe=2, search_rows=searches, keep=2)
    hard = [r for r in policy.table if r.difficulty == "hard"]
    assert [(r.min_calls, r.strategy) for r in hard] == [
        (0, "majority_vote"),
        (4, "weighted_best_of_n"),  # as right as beam search, for fewer calls
    ]
    only_beam = {p: [Sample("9", 0.5, F)] * 4 for p in SAMPLES}
    policy = fit_policy(only_beam, probe=2, search_rows=searches, keep=2)
    assert {(r.min_calls, r.strategy, r.keep) for r in policy.table} >= {(30, "beam_search", 2)}


def test_a_fit_needs_scores_and_a_probe_within_n():
    with pytest.raises(ConfigurationError, match="probe of 8 is more than the 4 candidates"):
        fit_policy(SAMPLES, probe=8)
    unscored = {p: [Sample("1", None, T)] * 4 for p in SAMPLES}
    with pytest.raises(ConfigurationError, match="no scored candidates"):
        fit_policy(unscored, probe=2)


QUESTIONS = {f"What is {a} + {a}?": str(2 * a) for a in range(1, 7)}
CRITERIA = ["correctness", "completeness", "specificity", "clarity"]


def world(request):
    """Right answers for even candidates; the judge likes them."""
    candidate = fenced(request.last_user)
    if candidate is not None:
        right = candidate.startswith("right")
        return judge_reply(dict.fromkeys(CRITERIA, 4 if right else 2))
    gold = QUESTIONS[request.last_user.split("\n")[0]]
    if request.choice % 2 == 0:
        return f"right: \\boxed{{{gold}}}"
    return f"wrong: \\boxed{{{int(gold) + 100}}}"


def test_ttc_eval_fits_and_writes_a_policy(loopback, tmp_path):
    from test_cli import ttc_eval

    server = loopback(world)
    data, out = tmp_path / "questions.jsonl", tmp_path / "run"
    data.write_text("".join(json.dumps({"q": q, "a": a}) + "\n" for q, a in QUESTIONS.items()))
    done = ttc_eval(
        data,
        "-n",
        "4",
        "--judge",
        "helpfulness",
        "--fit-policy",
        "--probe",
        "2",
        "--out",
        str(out),
        server=server,
    )
    assert done.returncode == 0, done.stderr
    policy = Policy.load(out / "policy.json")
    assert policy.verifier.name == "helpfulness" and policy.verifier.auroc == 1.0
    assert policy.score_bins is not None and policy.table
    assert f"policy: {out}/policy.json" in done.stdout

    requests = len(server.requests)
    bad = ttc_eval(
        data,
        "-n",
        "4",
        "--no-judge",
        "--fit-policy",
        "--out",
        str(tmp_path / "x"),
        server=server,
    )
    assert bad.returncode == 2 and "--fit-policy needs a verifier" in bad.stderr
    assert len(server.requests) == requests and not (tmp_path / "x").exists()
