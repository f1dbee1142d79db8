"""The wire under the models: the openai client over its aiohttp transport, replies read here
from their bytes, and failures that still say what happened (dropped, timed out, unreadable)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ttc_agent import EndpointUnreachable, ModelError, OpenAIChat, RetryPolicy
from ttc_agent.testing import Fault, Reply

ROOT = Path(__file__).resolve().parents[2]
FAST = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05)
PROMPT = [{"role": "user", "content": "Name a colour."}]


def answered_with(server, body) -> None:
    """Make ``server`` answer its next request with ``body`` (JSON) instead of a completion."""
    original = server._completion
    pending = [body]

    def once(request_body, index, replies):
        payload = original(request_body, index, replies)
        return pending.pop() if pending else payload

    server._completion = once


async def test_a_connection_that_keeps_dropping_is_lost_not_timed_out(model_for):
    server, model = model_for(lambda request: "ok")
    model.endpoint.retry = FAST
    await model.sample(PROMPT)  # reached once: later drops are retried
    server.inject(Fault.dropped(), times=3)
    with pytest.raises(EndpointUnreachable, match=r"unreachable: connection lost \(after 3"):
        await model.sample(PROMPT)


async def test_a_server_that_hangs_past_the_timeout_timed_out(loopback):
    server = loopback(lambda request: "late")
    server.inject(Fault.hang(2.0), times=3)
    async with OpenAIChat(
        "m", base_url=server.base_url, api_key="k", timeout=0.3, retry=FAST
    ) as model:
        with pytest.raises(EndpointUnreachable, match=r"timed out \(after 3 attempts\)"):
            await model.sample(PROMPT)


async def test_a_reply_that_is_not_a_completion_is_retried(loopback):
    server = loopback(lambda request: "fine")
    answered_with(server, "<html>busy</html>")
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", retry=FAST) as model:
        [completion] = await model.sample(PROMPT)
    assert completion.text == "fine"
    assert len(server.requests) == 2


async def test_a_server_that_never_answers_a_completion_is_a_clear_error(loopback):
    server = loopback(lambda request: "fine")
    server._completion = lambda body, index, replies: {"choices": "none today"}
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", retry=FAST) as model:
        with pytest.raises(ModelError, match=r"not a completion .*choices.* after 3 attempts"):
            await model.sample(PROMPT)
    assert len(server.requests) == 3


async def test_replies_read_from_bytes_keep_every_field_used(loopback):
    reply = Reply("A 4", alternatives={2: {"4": -0.2, "5": -1.8}})
    server = loopback(lambda request: reply, stop_reason=True)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        [completion] = await model.sample(PROMPT, 1, top_logprobs=2)
    assert completion.text == "A 4"
    assert completion.finish_reason == "stop" and completion.ended is True  # vLLM: EOS
    assert completion.logprobs[2].top == {"4": -0.2, "5": -1.8}
    billed = server.requests[0].usage
    assert completion.usage.prompt_tokens == billed["prompt_tokens"]
    assert completion.usage.completion_tokens == billed["completion_tokens"]


async def test_the_loopback_server_answers_at_once_like_real_servers(loopback):
    """No 40 ms wait for a delayed ACK per request (Nagle's algorithm, which real servers turn
    off): it would add to every measured latency."""
    server = loopback(lambda request: "ok")
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        await model.sample(PROMPT)
        started = time.monotonic()
        for _ in range(10):
            await model.sample(PROMPT)
        took = time.monotonic() - started
    assert took < 0.3  # ten requests one after the other; with the stall, over 0.4 s


NEVER_CLOSED = """
import asyncio, sys
from ttc_agent import OpenAIChat

model = OpenAIChat("m", base_url=sys.argv[1], api_key="k")


async def ask():
    [completion] = await model.sample([{"role": "user", "content": "Hi"}])
    return completion.text


print(asyncio.run(ask()), asyncio.run(ask()))  # two event loops, two connection pools
"""


def test_a_model_never_closed_leaves_no_complaint_at_exit(loopback, tmp_path):
    server = loopback(lambda request: "ok")
    script = tmp_path / "never_closed.py"
    script.write_text(NEVER_CLOSED)
    command = [sys.executable, str(script), server.base_url]
    environment = os.environ | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120)
    assert done.stdout.strip() == "ok ok", done.stderr
    assert "Unclosed" not in done.stderr


CYCLES = """
import asyncio, gc
from ttc_agent import OpenAIChat
from ttc_agent.testing import LoopbackServer, Reply


async def main(url):
    async with OpenAIChat("m", base_url=url, api_key="k") as model:

        async def round_of(n):
            prompt = [{"role": "user", "content": "Hi"}]
            await asyncio.gather(*(model.sample(prompt, top_logprobs=2) for _ in range(n)))

        await round_of(8)  # connections open
        gc.collect()
        gc.disable()
        await round_of(40)
        print(gc.collect())


reply = Reply("A 4", alternatives={2: {"4": -0.2, "5": -1.8}})
with LoopbackServer(lambda request: reply) as server:
    asyncio.run(main(server.base_url))
"""


def test_requests_leave_nothing_in_reference_cycles(tmp_path):
    """What a request leaves behind is freed at once: garbage in reference cycles (tenacity
    left 33 objects a request) waits for the collector, whose full sweeps of a heap with
    LangGraph loaded took about 100 ms, inside rounds. (A process of its own: other tests'
    garbage would be counted.)"""
    script = tmp_path / "cycles.py"
    script.write_text(CYCLES)
    environment = os.environ | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=environment, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) < 40  # not even one object per request of 40
