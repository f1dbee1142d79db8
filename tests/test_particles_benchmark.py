"""benchmarks/particles.py end to end against the loopback server (playing vLLM): three step
searches per problem, one row each, and a rerun that resumes: nothing asked again."""

from __future__ import annotations

import json
import sys

from test_cli import run

from ttc_agent.testing import Reply, fenced


def world(request):
    if fenced(request.last_user) is not None:  # LLMStepJudge: one digit, read by its logprobs
        return Reply("1", alternatives={0: {"1": -0.1, "0": -2.4}})
    if (request.prefix or "").count("\n\n") >= 1:
        return "So the answer is 18."
    return f"Step one, take {request.choice}.\n\nrest"


def test_the_benchmark_writes_a_row_per_search_and_resumes(loopback, tmp_path):
    server = loopback(world, flavour="vllm", honour_n=False)  # as llama.cpp: a call a sample
    out = tmp_path / "particles.jsonl"
    options = ["--problems", "1", "--n", "2", "--max-steps", "3", "--out", str(out)]
    command = [sys.executable, "benchmarks/particles.py", *options]
    done = run(command, server, TTC_MODEL="m")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["strategy"] for row in rows] == ["particle_filter", "beam_search", "dvts"]
    assert all(row["answer"] == "18" and row["correct"] for row in rows)  # GSM8K's first: 18
    assert all(row["step_generations"] == 4 for row in rows)  # n = 2, two steps each
    assert "| particle filter | 1 of 1 | 1/1 (100%) | 4.0 |" in done.stdout
    asked = len(server.requests)
    again = run(command, server, TTC_MODEL="m")
    assert again.returncode == 0, again.stderr
    assert len(server.requests) == asked  # every search was written: none runs again
    assert again.stdout.strip().splitlines()[-3:] == done.stdout.strip().splitlines()[-3:]
