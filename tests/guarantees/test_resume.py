"""Kill a search (SIGKILL, a real subprocess) and resume its thread from SQLite or PostgreSQL:
nothing that was already generated or judged is requested again, and the resumed search spends
only what is left of its budget."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ttc_agent.testing import Reply, fenced, judge_reply

PROGRAM = Path(__file__).resolve().parents[1] / "programs" / "resumable_search.py"
CRITERIA = ["correctness", "completeness", "specificity", "clarity"]


class World:
    """Generation writes "step <depth> of <request index>"; judging answers at once, except, in
    the first run, the judgements of ``slow`` candidates, which wait until the run is killed
    (so the kill always finds them unanswered and the others answered)."""

    def __init__(self, slow) -> None:
        self.slow, self.first_run, self.released = slow, True, threading.Event()
        self.answered: list[str] = []  # judged candidates whose verdict was sent
        self.lock = threading.Lock()

    def __call__(self, request):
        candidate = fenced(request.last_user)
        if candidate is None:
            depth = (request.prefix or "").count("\n\n")
            return f"step {depth + 1} of {request.index}\n\nmore"
        if self.first_run and self.slow(candidate):
            self.released.wait(60)
            return Reply("0")  # sent to a dead client
        with self.lock:
            self.answered.append(candidate)
        if request.body.get("max_tokens") == 2:  # the step judge
            return Reply("1", alternatives={0: {"1": -0.2, "0": -1.7}})
        return judge_reply(dict.fromkeys(CRITERIA, 3))

    def judged(self, requests) -> list[str]:
        return [fenced(r.last_user) for r in requests if fenced(r.last_user) is not None]


def last_step(candidate: str) -> tuple[int, int]:
    """(depth, request index) of the last step in a candidate."""
    depth, index = re.findall(r"step (\d+) of (\d+)", candidate)[-1]
    return int(depth), int(index)


SLOW = {  # best_of_n: killed while judging; beam_search: killed while judging step 2
    "best_of_n": lambda candidate: last_step(candidate)[1] % 2 == 1,
    "beam_search": lambda candidate: (
        last_step(candidate)[0] == 2 and last_step(candidate)[1] % 2 == 1
    ),
}


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


def run(db: str, base_url: str, strategy: str, mode: str, calls: str = "") -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TTC_"))}
    return subprocess.Popen(
        [sys.executable, str(PROGRAM), db, base_url, strategy, mode, calls],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the search"
        time.sleep(0.02)


def settled(db: str, quiet: float = 1.0) -> None:
    """Wait until no task result has been stored for ``quiet`` seconds: LangGraph stores a
    task's result in the background a moment after the task ends, and a resume can only know
    of what was stored."""
    count, since = stored_task_results(db), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.05)
        if (now := stored_task_results(db)) != count:
            count, since = now, time.monotonic()


def kill_while_judging(child: subprocess.Popen, world: World, server, db: str) -> list[str]:
    """Kill the search once the slow judgements are in flight and everything else is answered
    and stored; the candidates judged before the kill."""
    wait_for(lambda: sum(map(world.slow, world.judged(server.requests))) == 2)
    settled(db)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    answered = list(world.answered)
    world.first_run = False
    world.released.set()
    return answered


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
@pytest.mark.parametrize("strategy", ["best_of_n", "beam_search"])
def test_killed_search_resumes_without_paying_twice(loopback, tmp_path, request, strategy, store):
    world = World(SLOW[strategy])
    server = loopback(world, honour_n=False)
    if store == "sqlite":
        db = str(tmp_path / "checkpoints.sqlite")
    else:  # a database of its own on the session's server, so threads never collide
        db = fresh_database(request.getfixturevalue("postgres_url"), f"resume_{strategy}")

    child = run(db, server.base_url, strategy, "start")
    answered = kill_while_judging(child, world, server, db)
    before = len(server.requests)
    in_flight = [c for c in world.judged(server.requests) if world.slow(c)]
    assert len(in_flight) == 2 and not set(in_flight) & set(answered)

    child = run(db, server.base_url, strategy, "resume")
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert json.loads(out)["answer"]  # it finished with an answer
    resumed = server.requests[before:]
    judged_again = world.judged(resumed)
    assert not set(judged_again) & set(answered)  # no verdict it had was asked for again
    sampled_again = [r for r in resumed if fenced(r.last_user) is None]
    if strategy == "best_of_n":
        assert sorted(judged_again) == sorted(in_flight)  # only what the kill interrupted
        assert sampled_again == []
    else:  # and step 3: four samples from the two survivors, four new steps judged
        assert sorted(judged_again[:2]) == sorted(in_flight)
        assert [last_step(c)[0] for c in judged_again[2:]] == [3] * 4
        assert len(judged_again) == 6
        assert [r.prefix.count("\n\n") for r in sampled_again] == [2] * 4


def test_a_resumed_search_spends_only_what_is_left_of_its_budget(loopback, tmp_path):
    """24 calls would finish the beam search (8 per step); the budget is 20. Killed in step 2
    after 14 answered calls, the resumed search may make 6 more: the 2 judgements the kill
    interrupted and step 3's 4 samples; judging step 3 no longer fits."""
    world = World(SLOW["beam_search"])
    server = loopback(world, honour_n=False)
    db = str(tmp_path / "checkpoints.sqlite")

    child = run(db, server.base_url, "beam_search", "start", "20")
    answered = kill_while_judging(child, world, server, db)
    assert len(answered) == 4 + 2  # step 1's judgements and step 2's quick ones
    before = len(server.requests)

    child = run(db, server.base_url, "beam_search", "resume", "20")
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    result = json.loads(out)
    resumed = server.requests[before:]
    assert len(resumed) == 6
    assert len(world.judged(resumed)) == 2
    assert result["budget_limited"] is True
    assert result["candidates"] == 4  # step 2's beams: what the last full step left
