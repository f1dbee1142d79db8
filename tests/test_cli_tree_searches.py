"""``ttc run --strategy particle_filter`` and ``--strategy ab_mcts``, as subprocesses against the
loopback server."""

from __future__ import annotations

import json

from test_cli import HELPFULNESS, ttc, ttc_eval

from ttc_agent.testing import Reply, fenced, judge_reply


def test_particle_filter_from_the_command_line_with_the_judge_named(loopback):
    def handler(request):
        if fenced(request.last_user) is not None:  # a step judge: one digit, with logprobs
            return Reply("1", alternatives={0: {"1": -0.2, "0": -1.7}})
        depth = (request.prefix or "").count("\n\n")
        return f"step {depth + 1}\n\nrest"

    server = loopback(handler, honour_n=True, flavour="vllm")
    options = ["-n", "4", "--max-steps", "2", "--judge", "math_solution", "--json"]
    done = ttc("run", "Q", "--strategy", "particle_filter", *options, server=server)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["strategy"] == "particle_filter"
    assert record["settings"]["verifier"] == "math_solution"  # the card named, as a step judge
    assert record["settings"]["n"] == 4 and record["settings"]["steps"] == 2
    assert record["candidates"][record["chosen"]]["text"] == "step 1\n\nstep 2"
    judged = [r for r in server.requests if fenced(r.last_user) is not None]
    assert judged and all(r.body["logprobs"] is True for r in judged)


def test_ab_mcts_from_the_command_line_revises_with_the_judges_feedback(loopback):
    def handler(request):
        candidate = fenced(request.last_user)
        if candidate is not None:
            return judge_reply(dict.fromkeys(HELPFULNESS, 5 if "revised" in candidate else 2))
        if "A reviewer scored" in request.last_user:
            return "an answer, revised"
        return "an answer"

    server = loopback(handler, honour_n=True)
    done = ttc("run", "Q", "--strategy", "ab_mcts", "-n", "6", "--json", server=server)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["strategy"] == "ab_mcts" and len(record["candidates"]) == 6
    assert record["settings"]["verifier"] == "helpfulness"
    assert record["settings"]["deeper"] >= 1
    assert record["candidates"][record["chosen"]]["text"] == "an answer, revised"


def test_ttc_eval_searches_with_particle_filtering_at_every_budget(loopback, tmp_path):
    from test_evaluation import QUESTIONS, world

    server = loopback(world, flavour="vllm")  # a server whose steps continue
    data, out = tmp_path / "questions.jsonl", tmp_path / "run"
    data.write_text("".join(json.dumps({"q": q, "a": a}) + "\n" for q, a in QUESTIONS.items()))
    options = ["-n", "2", "--search", "particle_filter", "--out", str(out)]
    done = ttc_eval(data, *options, server=server)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (out / "candidates.jsonl").read_text().splitlines()]
    searched = sorted((r["problem"], r["n"]) for r in rows if r["strategy"] == "particle_filter")
    assert searched == sorted((p, n) for p in {r["problem"] for r in rows} for n in (1, 2))
    assert "particle_filter" in done.stdout
