"""Re-scoring an evaluation's stored candidates with another verifier: no sampling again, the
same rows with the new verifier's scores, the same summary and diagnostics, resumable."""

from __future__ import annotations

import json

import pytest

from ttc_agent import ConfigurationError, OpenAIChat, RubricJudge
from ttc_agent.evaluation import evaluate, load_problems
from ttc_agent.evaluation.rescore import rescore
from ttc_agent.testing import fenced, judge_reply

QUESTIONS = {f"What is {a} + {a}?": str(2 * a) for a in range(1, 4)}
CRITERIA = ["correctness", "completeness", "specificity", "clarity"]


def world(request):
    """Right answers for even candidates. A judge on the model ``sharp`` scores right answers
    5 and wrong ones 1; a judge on any other model scores everything 3 (no signal)."""
    candidate = fenced(request.last_user)
    if candidate is not None:
        right = candidate.startswith("right")
        sharp = request.body["model"] == "sharp"
        return judge_reply(dict.fromkeys(CRITERIA, (5 if right else 1) if sharp else 3))
    gold = QUESTIONS[request.last_user.split("\n")[0]]
    if request.choice % 2 == 0:
        return f"right: \\boxed{{{gold}}}"
    return f"wrong: \\boxed{{{int(gold) + 100}}}"


@pytest.fixture
def problems(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps({"q": q, "a": a}) + "\n" for q, a in QUESTIONS.items()))
    return load_problems(path, question="q", answer="a")


async def test_stored_candidates_are_scored_again_without_sampling(loopback, tmp_path, problems):
    server = loopback(world)
    first, second = tmp_path / "first", tmp_path / "second"
    async with (
        OpenAIChat("m", base_url=server.base_url, api_key="k") as model,
        OpenAIChat("sharp", base_url=server.base_url, api_key="k") as sharp,
    ):
        flat = RubricJudge("helpfulness", model, mode="structured")
        before = await evaluate(problems, model, n=4, out=first, verifier=flat, plot=False)
        server.reset()
        judge = RubricJudge("helpfulness", sharp, mode="structured")
        seen = []
        after = await rescore(
            problems, first, judge, out=second, on_problem=lambda *a: seen.append(a)
        )
        assert all(fenced(r.last_user) is not None for r in server.requests)  # judging only
        assert len(server.requests) == 3 * 4 and len(seen) == 3
        assert before.verifier.auroc == 0.5 and after.verifier.auroc == 1.0
        assert after.verifier.name == "helpfulness" and after.settings["rescored_from"]
        old = [json.loads(line) for line in (first / "candidates.jsonl").open()]
        new = [json.loads(line) for line in (second / "candidates.jsonl").open()]
        texts = {(r["problem"], r["index"]): r["text"] for r in old}
        assert {(r["problem"], r["index"]): r["text"] for r in new} == texts
        assert {r["verifier"] for r in new} == {"helpfulness"}
        assert {r["score"] for r in new} == {0.0, 1.0}  # the sharp judge's, not the flat 0.5
        run = json.loads((second / "run.json").read_text())
        assert run["verifier"] == "helpfulness" and run["rescored_from"] == str(first)
        assert json.loads((second / "summary.json").read_text())["verifier"]["auroc"] == 1.0

        server.reset()
        again = await rescore(problems, first, judge, out=second)
        assert server.requests == [] and again.points == after.points  # resumed: nothing asked


async def test_rescoring_needs_an_earlier_run(tmp_path, problems):
    model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
    judge = RubricJudge("helpfulness", model)
    with pytest.raises(ConfigurationError, match="no evaluation run to re-score at"):
        await rescore(problems, tmp_path / "nothing", judge, out=tmp_path / "out")


def test_ttc_eval_rescores_a_run(loopback, tmp_path, problems):
    from test_cli import ttc_eval

    server = loopback(world)
    data = tmp_path / "questions.jsonl"
    done = ttc_eval(
        data,
        "-n",
        "2",
        "--no-judge",
        "--out",
        str(tmp_path / "samples"),
        server=server,
    )
    assert done.returncode == 0, done.stderr
    server.reset()
    done = ttc_eval(
        data,
        "--rescore",
        str(tmp_path / "samples"),
        "--judge",
        "helpfulness",
        "--judge-model",
        "sharp",
        "--out",
        str(tmp_path / "sharp"),
        server=server,
    )
    assert done.returncode == 0, done.stderr
    assert "verifier helpfulness: AUROC 1.00" in done.stdout
    assert all(fenced(r.last_user) is not None for r in server.requests)
    refused = ttc_eval(
        data,
        "--rescore",
        str(tmp_path / "samples"),
        "--no-judge",
        "--out",
        str(tmp_path / "x"),
        server=server,
    )
    assert refused.returncode == 2 and "--rescore needs a verifier" in refused.stderr
