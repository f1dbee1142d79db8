"""Evaluation sweeps: metrics from prefixes, grading, resume, summary and plot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ttc_agent import ConfigurationError, OpenAIChat, RubricJudge
from ttc_agent.evaluation import (
    Sample,
    budgets,
    evaluate,
    is_correct,
    load_problems,
    sweep,
)
from ttc_agent.evaluation.metrics import majority, naive, passes, weighted
from ttc_agent.testing import fenced, judge_reply

DATA = Path(__file__).resolve().parents[1] / "data"


def s(label, score, correct, tokens=10, verification=5):
    return Sample(label, score, correct, tokens, verification)


# one problem, six candidates; the gold answer is "7"
CANDIDATES = [
    s("3", 0.9, False),
    s("7", 0.4, True),
    s("7", 0.6, True),
    s("3", 0.2, False),
    s(None, 0.95, False),  # no answer, the highest score
    s("7", 0.5, True),
]


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        # naive: best single score; weighted: 3 -> 0.9 vs 7 -> 0.4 (k=2), vs 7 -> 1.0 (k=3),
        # 3 -> 1.1 vs 7 -> 1.0 (k=4, 5), vs 7 -> 1.5 (k=6); majority: ties go to the answer
        # seen first; pass: any right
        (1, {"naive": False, "weighted": False, "majority": False, "pass": False}),
        (2, {"naive": False, "weighted": False, "majority": False, "pass": True}),
        (3, {"naive": False, "weighted": True, "majority": True, "pass": True}),
        (4, {"naive": False, "weighted": False, "majority": False, "pass": True}),
        (5, {"naive": False, "weighted": False, "majority": False, "pass": True}),
        (6, {"naive": False, "weighted": True, "majority": True, "pass": True}),
    ],
)
def test_every_rule_at_every_prefix(k, expected):
    prefix = CANDIDATES[:k]
    got = {
        "naive": naive(prefix),
        "weighted": weighted(prefix),
        "majority": majority(prefix),
        "pass": passes(prefix),
    }
    assert got == expected


def test_naive_takes_the_earliest_of_equal_scores_and_needs_scores():
    assert naive([s("1", 0.5, True), s("2", 0.5, False)]) is True
    assert naive([s("1", None, True)]) is False
    assert weighted([s(None, 0.9, True)]) is False  # no answer: nothing to weigh
    assert majority([s(None, None, True)]) is False


def test_sweep_over_problems_at_powers_of_two():
    problems = {"a": CANDIDATES, "b": [s("1", 0.3, True)] * 6}
    points = {(p.method, p.n): p for p in sweep(problems, 6)}
    assert sorted({n for _, n in points}) == budgets(6) == [1, 2, 4, 6]
    assert points[("pass", 1)].accuracy == 0.5
    assert points[("weighted", 4)].accuracy == 0.5
    assert points[("weighted", 6)].accuracy == 1.0
    assert points[("majority", 4)].accuracy == 0.5
    # scored methods pay for verification too: 4 candidates x (10 + 5) tokens
    assert points[("naive", 4)].tokens == 60
    assert points[("majority", 4)].tokens == 40


def test_sweep_rejects_unknown_methods():
    with pytest.raises(ValueError, match="unknown methods"):
        sweep({"a": CANDIDATES}, 2, ["oracle"])


def test_math500_gold_answers_verify_against_their_own_solutions():
    rows = [json.loads(line) for line in (DATA / "math500.jsonl").read_text().splitlines()]
    assert len(rows) == 500
    wrong = [r["unique_id"] for r in rows if not is_correct(r["solution"], r["answer"])]
    assert wrong == []
    assert not is_correct(rows[0]["solution"], "1234567")


def test_datasets_load_with_their_fields(tmp_path):
    gsm8k = load_problems(DATA / "gsm8k_test.jsonl", limit=3)
    assert [p.id for p in gsm8k] == ["0", "1", "2"]
    assert gsm8k[0].gold == "18"
    math500 = load_problems(DATA / "math500.jsonl", limit=2)
    assert math500[0].id.startswith("test/") and math500[0].gold
    mine = tmp_path / "mine.jsonl"
    mine.write_text('{"q": "1+1?", "a": "2", "key": "x"}\n')
    assert load_problems(mine, question="q", answer="a", id="key")[0].id == "x"
    with pytest.raises(ConfigurationError, match="give the question and answer field names"):
        load_problems(mine)
    with pytest.raises(ConfigurationError, match="no field 'question'"):
        load_problems(mine, question="question", answer="a")


QUESTIONS = {"What is 3 + 4?": "7", "What is 2 * 5?": "10", "What is 9 - 1?": "8"}
CRITERIA = ["correctness", "completeness", "specificity", "clarity"]


def world(request):
    """Candidate i answers right when i is even; the judge likes right answers."""
    candidate = fenced(request.last_user)
    if candidate is not None:
        right = any(f"\\boxed{{{gold}}}" in candidate for gold in QUESTIONS.values())
        if "one digit" in request.last_user:  # the step judge
            return "1" if right else "0"
        return judge_reply(dict.fromkeys(CRITERIA, 5 if right else 2))
    question = request.last_user.split("\n")[0]
    gold = QUESTIONS[question]
    answer = gold if request.choice % 2 == 0 else str(int(gold) + 1)
    return f"Working it out. The answer is \\boxed{{{answer}}}."


@pytest.fixture
def problems(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps({"q": q, "a": a}) + "\n" for q, a in QUESTIONS.items()))
    return load_problems(path, question="q", answer="a")


async def test_a_run_writes_rows_summary_and_plot_and_resumes(loopback, tmp_path, problems):
    server = loopback(world)
    out = tmp_path / "run"
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        judge = RubricJudge("helpfulness", model, mode="structured")
        seen = []
        summary = await evaluate(
            problems,
            model,
            n=4,
            out=out,
            verifier=judge,
            on_problem=lambda pid, done, total: seen.append((done, total)),
        )
        rows = [json.loads(line) for line in (out / "candidates.jsonl").read_text().splitlines()]
        assert len(rows) == 12
        assert {r["correct"] for r in rows if r["index"] % 2 == 0} == {True}
        assert {r["correct"] for r in rows if r["index"] % 2 == 1} == {False}
        assert all(r["score"] is not None and r["tokens"] > 0 for r in rows)
        assert sorted(seen) == [(1, 3), (2, 3), (3, 3)]
        assert summary.accuracy("naive", 4) == 1.0
        assert summary.accuracy("pass", 1) == 1.0
        assert summary.accuracy("majority", 2) == 1.0  # a tie: the first answer wins
        assert json.loads((out / "summary.json").read_text())["problems"] == 3
        assert (out / "accuracy.png").stat().st_size > 10_000

        requests = len(server.requests)
        again = await evaluate(problems, model, n=4, out=out, verifier=judge)
        assert len(server.requests) == requests  # everything was finished: nothing re-sent
        assert again.points == summary.points

        # a problem whose rows are gone (or were never written) is the only one redone
        kept = [r for r in rows if r["problem"] != "1"]
        (out / "candidates.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
        server.reset()
        await evaluate(problems, model, n=4, out=out, verifier=judge)
        questions = {r.last_user.split("\n")[0] for r in server.requests if not fenced(r.last_user)}
        assert questions == {"What is 2 * 5?"}

        with pytest.raises(ConfigurationError, match="holds a run with other settings"):
            await evaluate(problems, model, n=8, out=out, verifier=judge)


async def test_without_a_verifier_only_majority_and_pass(loopback, tmp_path, problems):
    server = loopback(world)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        summary = await evaluate(problems, model, n=2, out=tmp_path / "r", plot=False)
    assert {p.method for p in summary.points} == {"majority", "pass"}
    assert "majority" in summary.table()


def test_ttc_eval_from_the_command_line(loopback, tmp_path, problems):
    from test_cli import ttc, ttc_eval

    server = loopback(world)
    data = tmp_path / "questions.jsonl"
    out = tmp_path / "run"
    done = ttc_eval(
        data,
        "-n",
        "4",
        "--judge",
        "helpfulness",
        "--out",
        str(out),
        server=server,
    )
    assert done.returncode == 0, done.stderr
    assert "3 problems" in done.stdout
    assert "weighted" in done.stdout and "100.0%" in done.stdout
    assert (out / "accuracy.png").is_file()
    bad = ttc("eval", str(data), "--out", str(tmp_path / "x"), server=server)
    assert bad.returncode == 2
    assert "give the question and answer field names" in bad.stderr
    assert not (tmp_path / "x").exists()


def test_ttc_eval_step_card_gives_one_verdict_per_whole_solution(loopback, tmp_path, problems):
    """The step judge scores each candidate once, as one step, however many steps it has."""
    from test_cli import ttc_eval

    def two_steps(request):
        reply = world(request)
        return reply.replace("Working it out. ", "Working it out.\n\n")

    server = loopback(two_steps)
    data, out = tmp_path / "questions.jsonl", tmp_path / "run"
    done = ttc_eval(
        data,
        "-n",
        "4",
        "--out",
        str(out),
        server=server,
    )
    assert done.returncode == 0, done.stderr
    verdicts = [r for r in server.requests if "one digit" in (r.prompt or r.last_user)]
    assert len(verdicts) == 3 * 2  # each problem's two distinct solutions (verdicts are cached)
    assert "100.0%" in done.stdout


def test_ttc_eval_asks_about_whole_solutions_and_searches_about_steps(loopback, tmp_path, problems):
    """Whole-solution verdicts use the math_solution card; step searches keep math_step, whose
    prompt says the last paragraph is the step to check."""
    from test_cli import ttc_eval

    server = loopback(world, flavour="vllm")  # a server whose steps continue
    data, out = tmp_path / "questions.jsonl", tmp_path / "run"
    done = ttc_eval(
        data,
        "-n",
        "2",
        "--search",
        "beam_search",
        "--out",
        str(out),
        server=server,
    )
    assert done.returncode == 0, done.stderr
    verdicts = [r.last_user for r in server.requests if "one digit" in r.last_user]
    whole = [v for v in verdicts if "The student's complete solution" in v]
    steps = [v for v in verdicts if "the last paragraph is the latest step" in v]
    assert len(whole) == 3 * 2  # each problem's two distinct candidates, once each
    assert steps and len(whole) + len(steps) == len(verdicts)
    assert json.loads((out / "summary.json").read_text())["settings"]["verifier"] == (
        "math_solution"
    )


async def test_step_searches_run_at_every_budget(loopback, tmp_path, problems):
    from ttc_agent import LLMStepJudge, beam_search

    server = loopback(world, flavour="vllm")
    out = tmp_path / "run"
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        steps = LLMStepJudge(model)
        searches = {"beam_search": lambda k: beam_search(model, steps, n=k, keep=min(2, k))}
        summary = await evaluate(problems, model, n=4, out=out, searches=searches, plot=False)
        rows = [json.loads(line) for line in (out / "candidates.jsonl").read_text().splitlines()]
        beams = [r for r in rows if r["strategy"] == "beam_search"]
        assert sorted((r["problem"], r["n"]) for r in beams) == [
            (p, k) for p in ("0", "1", "2") for k in (1, 2, 4)
        ]
        assert [summary.accuracy("beam_search", k) for k in (1, 2, 4)] == [1.0, 1.0, 1.0]
        assert all(r["calls"] >= 1 for r in beams)  # what --fit-policy weighs a search by
        assert "beam_search" in summary.table()
        requests = len(server.requests)
        await evaluate(problems, model, n=4, out=out, searches=searches, plot=False)
        assert len(server.requests) == requests  # every budget of every search was kept
        with pytest.raises(ConfigurationError, match="taken by the metrics"):
            await evaluate(
                problems, model, n=4, out=out, searches={"pass": searches["beam_search"]}
            )


@pytest.mark.parametrize(
    ("command", "missing", "message"),
    [
        (
            ["eval", str(DATA / "gsm8k_test.jsonl"), "--no-judge"],
            "matplotlib",
            "need matplotlib: pip install matplotlib",
        ),
        (["eval", str(DATA / "gsm8k_test.jsonl"), "--no-judge"], "math_verify", "math-verify"),
        (
            ["writing", str(DATA / "mt_bench_questions.jsonl")],
            "matplotlib",
            "need matplotlib: pip install matplotlib",
        ),
    ],
)
def test_missing_optional_packages_are_named_before_the_run(
    loopback, tmp_path, monkeypatch, capsys, command, missing, message
):
    from ttc_agent.cli import main

    server = loopback(world)
    monkeypatch.setitem(sys.modules, missing, None)  # as if it were not installed
    out = tmp_path / "run"
    status = main(
        [
            *command,
            "--limit",
            "1",
            "-n",
            "2",
            "--out",
            str(out),
            "--base-url",
            server.base_url,
            "--model",
            "m",
        ]
    )
    assert status == 2
    assert message in capsys.readouterr().err
    assert server.requests == []  # nothing was spent before the error
    assert not out.exists()
