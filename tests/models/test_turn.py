"""Endpoints that share a turn (the embedded servers, which share the CPU cores) send one
request at a time between them, across event loops and processes; without one they overlap."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

from test_openai_chat import PROMPT

from ttc_agent import OpenAIChat
from ttc_agent.models.endpoint import Endpoint
from ttc_agent.models.turn import SharedTurn


def peak_counter():
    """A handler that records how many requests it answers at once, and that peak."""
    state = {"active": 0, "peak": 0}
    lock = threading.Lock()

    def slow(request):
        with lock:
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])
        time.sleep(0.05)
        with lock:
            state["active"] -= 1
        return "ok"

    return slow, state


async def test_endpoints_sharing_a_turn_send_one_request_at_a_time(loopback):
    """Embedded servers share the CPU: a generator and a judge never compute at once."""
    handler, state = peak_counter()
    first, second = loopback(handler, honour_n=False), loopback(handler, honour_n=False)
    turn = SharedTurn()

    def model(server):
        endpoint = Endpoint(server.base_url, "k", turn=turn)
        return OpenAIChat("m", base_url=server.base_url, endpoint=endpoint, n_mode="parallel")

    async with model(first) as generator, model(second) as judge:
        drafts, verdicts = await asyncio.gather(
            generator.sample(PROMPT, 4), judge.sample(PROMPT, 4)
        )
    assert len(drafts) == len(verdicts) == 4
    assert len(first.requests) == len(second.requests) == 4
    assert state["peak"] == 1


async def test_without_a_turn_endpoints_overlap(loopback):
    """The control: two requests meet at a barrier only if both are in flight at once."""
    meeting = threading.Barrier(2, timeout=30)

    def meet(request):
        meeting.wait()
        return "ok"

    first, second = loopback(meet, honour_n=False), loopback(meet, honour_n=False)
    async with (
        OpenAIChat("m", base_url=first.base_url, api_key="k") as generator,
        OpenAIChat("m", base_url=second.base_url, api_key="k") as judge,
    ):
        drafts, verdicts = await asyncio.gather(generator.sample(PROMPT), judge.sample(PROMPT))
    assert [d.text for d in drafts + verdicts] == ["ok", "ok"]


def test_a_turn_is_exclusive_across_event_loops():
    turn, inside, peak = SharedTurn(), [0], [0]

    async def hold():
        async with turn.taken():
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
            await asyncio.sleep(0.02)
            inside[0] -= 1

    threads = [threading.Thread(target=asyncio.run, args=(hold(),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 1


def test_a_turn_with_a_lock_file_is_exclusive_across_processes(tmp_path):
    """Two processes' embedded servers share the cores too: the turn is a file lock."""
    lock_file, log = tmp_path / "cpu.lock", tmp_path / "log"
    program = f"""
import asyncio, os, time
from pathlib import Path
from ttc_agent.models.turn import SharedTurn

async def hold():
    async with SharedTurn(Path({str(lock_file)!r})).taken():
        with open({str(log)!r}, "a") as log:
            log.write(f"in {{os.getpid()}}\\n")
        time.sleep(0.2)
        with open({str(log)!r}, "a") as log:
            log.write(f"out {{os.getpid()}}\\n")

asyncio.run(hold())
"""
    processes = [subprocess.Popen([sys.executable, "-c", program]) for _ in range(3)]
    assert [process.wait(timeout=60) for process in processes] == [0, 0, 0]
    events = log.read_text().split()
    pairs = list(zip(events[0::4], events[1::4], events[2::4], events[3::4], strict=True))
    assert len(pairs) == 3
    assert all(into == "in" and out == "out" and a == b for into, a, out, b in pairs)
