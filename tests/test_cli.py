"""The ``ttc`` command and the drop-in example, as subprocesses against the loopback server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ttc_agent.testing import fenced, judge_reply

ROOT = Path(__file__).resolve().parents[1]
HELPFULNESS = ["correctness", "completeness", "specificity", "clarity"]
WRITING = ["clarity", "style", "engagement", "relevance"]


def script(criteria, answers=("Draft one.", "Draft two, better.", "Draft three.")):
    quality = {"Draft one.": 2, "Draft two, better.": 5, "Draft three.": 3}
    state = {"sampled": 0}

    def handler(request):
        candidate = fenced(request.last_user)
        if candidate is not None:
            return judge_reply(dict.fromkeys(criteria, quality.get(candidate, 1)))
        answer = answers[state["sampled"] % len(answers)]
        state["sampled"] += 1
        return answer

    return handler


def run(args, server=None, **env):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TTC_"))}
    if server is not None:
        environment |= {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "k"}
    environment |= {"COLUMNS": "160"} | env
    return subprocess.run(
        args, capture_output=True, text=True, env=environment, cwd=ROOT, timeout=120
    )


def ttc(*args, server=None, **env):
    return run([sys.executable, "-m", "ttc_agent.cli", *args], server, **env)


def ttc_eval(data, *args, server=None, **env):
    """``ttc eval`` on a JSONL file whose questions are in ``q`` and answers in ``a``."""
    return ttc(
        "eval",
        str(data),
        "--question-field",
        "q",
        "--answer-field",
        "a",
        *args,
        server=server,
        **env,
    )


def test_run_prints_the_answer_and_a_table(loopback):
    server = loopback(script(WRITING), honour_n=True)
    done = ttc("run", "Write a line.", "-n", "3", "--judge", "writing_quality", server=server)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Draft two, better."
    assert "best_of_n: 3 candidates" in done.stdout
    assert "*1" in done.stdout and "relevance" in done.stdout
    assert "judging" in done.stdout and "(3 calls)" in done.stdout


def test_run_json_is_the_search_record(loopback):
    server = loopback(script(HELPFULNESS), honour_n=True)
    done = ttc("run", "Q", "-n", "3", "--json", "--temperature", "0.5", server=server)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["chosen"] == 1
    assert record["settings"]["temperature"] == 0.5
    assert [c["score"]["value"] for c in record["candidates"]] == [2.0, 5.0, 3.0]
    assert record["usage"]["generation"]["calls"] == 1  # the server honoured n


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--judge", "nope"], "unknown judge card 'nope'"),
        (["-n", "0"], "n: Input should be greater than or equal to 1"),
        (["--strategy", "magic"], "unknown strategy 'magic'"),
    ],
)
def test_bad_arguments_are_one_line_and_non_zero(loopback, args, message):
    server = loopback(script(HELPFULNESS))
    done = ttc("run", "Q", *args, server=server)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert message in done.stderr
    assert done.stdout == ""


def test_unreachable_endpoint_is_one_line():
    done = ttc("run", "Q", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--retries", "1")
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == "ttc: error: http://127.0.0.1:9/v1 is unreachable: connection refused"
    )


def test_drop_in_example_runs(loopback):
    server = loopback(script(HELPFULNESS), honour_n=True)
    done = run([sys.executable, "examples/drop_in_best_of_n.py", "Any question?"], server)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Draft two, better."
    assert "chose candidate 1 of 3" in done.stderr
    generation = [r for r in server.requests if fenced(r.last_user) is None]
    assert generation[0].messages[-1]["role"] == "system"  # the triage node ran before


def test_majority_vote_from_the_command_line(loopback):
    answers = iter(["It is 12.", "I get 13.", "So 12!", "12"])
    server = loopback(lambda request: next(answers), honour_n=True)
    done = ttc(
        "run",
        "Q",
        "--strategy",
        "majority_vote",
        "-n",
        "4",
        "--answer",
        "number",
        "--json",
        server=server,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["strategy"] == "majority_vote"
    assert record["group_scores"] == {"12": 3.0, "13": 1.0}
    assert record["candidates"][record["chosen"]]["text"] == "It is 12."


def test_beam_search_from_the_command_line_uses_the_step_judge(loopback):
    from ttc_agent.testing import Reply

    def handler(request):
        if fenced(request.last_user) is not None:  # the math_step judge: one digit
            return Reply("1", alternatives={0: {"1": -0.2, "0": -1.7}})
        depth = (request.prefix or "").count("\n\n")
        return f"step {depth + 1}\n\nrest"

    server = loopback(handler, honour_n=True, flavour="vllm")
    done = ttc(
        "run",
        "Q",
        "--strategy",
        "beam_search",
        "-n",
        "4",
        "--keep",
        "2",
        "--max-steps",
        "2",
        "--json",
        server=server,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["settings"]["verifier"] == "math_step"
    assert record["candidates"][record["chosen"]]["text"] == "step 1\n\nstep 2"
    judged = [r for r in server.requests if fenced(r.last_user) is not None]
    assert all(r.body["logprobs"] is True for r in judged)


def test_refine_from_the_command_line(loopback):
    quality = {"first": 2, "second": 4}

    def handler(request):
        candidate = fenced(request.last_user)
        if candidate is not None:
            return judge_reply(dict.fromkeys(HELPFULNESS, quality[candidate]))
        return "second" if "A reviewer scored" in request.last_user else "first"

    server = loopback(handler)
    done = ttc("run", "Q", "--strategy", "refine", "--rounds", "1", server=server)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "second"
    assert "refine: 2 candidates" in done.stdout


def test_serve_needs_an_api_key_off_loopback():
    done = ttc("serve", "--upstream", "http://127.0.0.1:9/v1", "--host", "0.0.0.0")
    assert done.returncode == 2
    assert done.stderr.strip() == "ttc: error: --api-key is required to serve on 0.0.0.0"
