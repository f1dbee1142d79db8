"""Kill a search (SIGKILL, a real subprocess) and resume its thread from SQLite: nothing that
was already generated and scored is requested again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ttc_agent.testing import Reply, fenced, judge_reply

PROGRAM = Path(__file__).parent / "programs" / "resumable_search.py"
CRITERIA = ["correctness", "completeness", "specificity", "clarity"]


def handler(request):
    candidate = fenced(request.last_user)
    if candidate is not None and request.body.get("max_tokens") == 2:  # the step judge
        time.sleep(0.4)
        return Reply("1", alternatives={0: {"1": -0.2, "0": -1.7}})
    if candidate is not None:
        time.sleep(0.4)
        return judge_reply(dict.fromkeys(CRITERIA, 3))
    depth = (request.prefix or "").count("\n\n")
    return f"step {depth + 1} of {request.index}\n\nmore"


def stored_task_results(db: str) -> int:
    """Task results (the ``__return__`` writes of sampling and scoring tasks) in the store."""
    if db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db) as connection:
            try:
                query = "SELECT count(*) FROM checkpoint_writes WHERE channel = '__return__'"
                return connection.execute(query).fetchone()[0]
            except psycopg.errors.UndefinedTable:
                return 0
    import sqlite3

    try:
        with sqlite3.connect(db) as connection:
            query = "SELECT count(*) FROM writes WHERE channel = '__return__'"
            return connection.execute(query).fetchone()[0]
    except sqlite3.OperationalError:  # no tables yet
        return 0


def fresh_database(url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name}")
        connection.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + f"/{name}"


def run(db: str, base_url: str, strategy: str, mode: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TTC_"))}
    return subprocess.Popen(
        [sys.executable, str(PROGRAM), db, base_url, strategy, mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the search"
        time.sleep(0.02)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
@pytest.mark.parametrize("strategy", ["best_of_n", "beam_search"])
def test_killed_search_resumes_without_paying_twice(loopback, tmp_path, request, strategy, store):
    server = loopback(handler, honour_n=False)
    if store == "sqlite":
        db = str(tmp_path / "checkpoints.sqlite")
    else:  # a database of its own on the session's server, so threads never collide
        db = fresh_database(request.getfixturevalue("postgres_url"), f"resume_{strategy}")

    def judged() -> list:
        return [r for r in server.requests if fenced(r.last_user) is not None]

    def first_step() -> list:
        return [r for r in server.requests if fenced(r.last_user) is None and r.prefix is None]

    child = run(db, server.base_url, strategy, "start")
    # best_of_n: killed while judging; beam_search: killed while judging step 2. LangGraph
    # stores a task's result in the background a moment after the task ends: the kill waits
    # until the sampling task's result is stored (what a resume can know of).
    wait_for(lambda: len(judged()) >= (1 if strategy == "best_of_n" else 5))
    wait_for(lambda: stored_task_results(db) >= 1)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    sampled_before = len(first_step())
    assert sampled_before == 4

    child = run(db, server.base_url, strategy, "resume")
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert out.strip()  # it finished with an answer
    assert len(first_step()) == sampled_before  # the first step was not sampled again
