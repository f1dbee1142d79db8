"""``ttc`` as a newcomer meets it: an 80-column terminal or a pipe, ``--version``, budgets,
effort levels, adaptive selection, and ``ttc serve`` on a port that is taken."""

from __future__ import annotations

import json
import re
import socket
import sys

from test_cli import HELPFULNESS, run, ttc

from ttc_agent.testing import fenced, judge_reply

LONG = "A long draft that goes on about basil, light, water and pots, to fill a preview. " * 3


def judged(request):
    candidate = fenced(request.last_user)
    if candidate is not None:
        return judge_reply(dict.fromkeys(HELPFULNESS, 1 + request.index % 5))
    return f"{request.index}.{request.choice} {LONG}"


def test_every_score_shows_at_80_columns_in_a_pipe(loopback):
    server = loopback(judged, honour_n=True)
    done = ttc("run", "Q", "-n", "5", server=server, COLUMNS="80")  # stdout is a pipe here
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    rows = [line for line in lines if re.match(r"^\s*\*?\d+\s+\d+\.\d\d\s", line)]
    assert len(rows) == 5, done.stdout
    for row in rows:  # index, score, four criteria and tokens, all in full
        assert len(re.findall(r"\b\d+\.\d\d\b", row)) == 5, row
        assert re.search(r"\s\d+\s", row[-30:]) or re.search(r"\s\d+$", row), row
    header = next(line for line in lines if line.lstrip().startswith("#"))
    assert "score" in header and "tokens" in header
    assert all(len(line) <= 80 for line in lines[lines.index(header) - 1 :])


def test_previews_shrink_first_and_go_when_there_is_no_room(loopback):
    server = loopback(judged, honour_n=True)
    wide = ttc("run", "Q", "-n", "2", server=server, COLUMNS="160")
    narrow = ttc("run", "Q", "-n", "2", server=server, COLUMNS="50")
    assert "text" in wide.stdout and "A long draft" in wide.stdout
    assert "text" not in narrow.stdout.split("candidates")[1]
    assert len(re.findall(r"^\s*\*?\d+\s+\d+\.\d\d", narrow.stdout, re.MULTILINE)) == 2


def test_json_has_the_answer_and_the_total_usage(loopback):
    server = loopback(judged, honour_n=True)
    done = ttc("run", "Q", "-n", "3", "--json", server=server)
    record = json.loads(done.stdout)
    assert record["answer"] == record["candidates"][record["chosen"]]["text"]
    usage = record["usage"]
    assert usage["total"]["total_tokens"] == (
        usage["generation"]["prompt_tokens"]
        + usage["generation"]["completion_tokens"]
        + usage["verification"]["prompt_tokens"]
        + usage["verification"]["completion_tokens"]
    )
    assert usage["total"]["calls"] == usage["generation"]["calls"] + usage["verification"]["calls"]


def test_version():
    from importlib.metadata import version

    done = ttc("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"ttc {version('ttc-agent')}"


def test_budget_calls_and_tokens_are_ceilings(loopback):
    server = loopback(judged, honour_n=False)  # one call per sample, as llama.cpp
    done = ttc("run", "Q", "-n", "4", "--budget-calls", "5", "--json", server=server)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["budget_limited"] is True
    assert len(server.requests) <= 5
    assert record["usage"]["total"]["calls"] == len(server.requests)
    server.reset()
    done = ttc("run", "Q", "-n", "4", "--budget-tokens", "300", "--json", server=server)
    record = json.loads(done.stdout)
    assert record["budget_limited"] is True
    assert record["usage"]["total"]["total_tokens"] <= 300


def test_effort_runs_think_harder_at_that_level(loopback):
    server = loopback(judged, honour_n=True)
    done = ttc("run", "Q", "--effort", "low", "--json", server=server)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["settings"]["effort"] == "low"
    assert record["strategy"] == "best_of_n" and len(record["candidates"]) == 4
    both = ttc("run", "Q", "--effort", "low", "--strategy", "refine", server=server)
    assert both.returncode == 2
    assert both.stderr.strip() == "ttc: error: give --strategy or --effort, not both"


def test_adaptive_from_the_command_line(loopback):
    def agreeing(request):
        if fenced(request.last_user) is not None:
            return judge_reply(dict.fromkeys(HELPFULNESS, 4))
        return "The answer is 12."

    server = loopback(agreeing, honour_n=True)
    done = ttc("run", "Q", "--strategy", "adaptive", "--json", server=server)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["strategy"] == "adaptive"
    assert record["settings"]["decision"]["difficulty"] == "easy"
    assert record["answer"] == "The answer is 12."


def test_serve_on_a_taken_port_is_one_line_and_no_banner():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = ttc("serve", "--upstream", "http://127.0.0.1:9/v1", "--port", str(port))
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"ttc: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert done.stdout == ""


def test_serve_does_not_default_to_vllms_port():
    done = run([sys.executable, "-m", "ttc_agent.cli", "serve", "--help"])
    assert "default 8400" in done.stdout


def test_serve_rejects_a_malformed_upstream_at_once():
    done = ttc("serve", "--upstream", "localhost:8000")
    assert done.returncode == 2
    assert "--upstream 'localhost:8000' is not an http:// or https:// URL" in done.stderr
