"""Model access against the loopback server, through the real openai client over HTTP."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import pytest
from langchain_core.language_models import GenericFakeChatModel

from ttc_agent import (
    AuthenticationFailed,
    ConfigurationError,
    EndpointUnreachable,
    LangChainChat,
    ModelError,
    OpenAIChat,
    RetryPolicy,
)
from ttc_agent.models.endpoint import Endpoint
from ttc_agent.models.turn import SharedTurn
from ttc_agent.testing import Fault, Reply, count_tokens

FAST = RetryPolicy(attempts=4, initial_wait=0.01, max_wait=1.0)
PROMPT = [{"role": "user", "content": "Name a colour."}]


def numbered(request):
    return f"answer {request.index}.{request.choice}"


async def test_n_honoured_is_one_request_billing_one_prompt(loopback):
    server = loopback(numbered, honour_n=True)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", retry=FAST) as model:
        completions = await model.sample(PROMPT, 4)
    assert len(server.requests) == 1
    assert server.requests[0].body["n"] == 4
    assert [c.text for c in completions] == [f"answer 0.{i}" for i in range(4)]
    assert sum(c.usage.prompt_tokens for c in completions) == count_tokens("Name a colour.")
    assert sum(c.usage.completion_tokens for c in completions) == 4 * count_tokens("answer 0.0")
    assert sum(c.usage.calls for c in completions) == 1


async def test_n_ignored_is_detected_and_filled_then_remembered(loopback):
    server = loopback(numbered, honour_n=False)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", retry=FAST) as model:
        first = await model.sample(PROMPT, 4)
        assert len(first) == 4
        assert len(server.requests) == 4  # one n=4 request answered once, then three singles
        assert len({c.text for c in first}) == 4
        server.reset()
        second = await model.sample(PROMPT, 3)
    assert len(second) == 3
    assert len(server.requests) == 3
    assert all("n" not in request.body for request in server.requests)
    assert sum(c.usage.calls for c in second) == 3
    assert sum(c.usage.prompt_tokens for c in second) == 3 * count_tokens("Name a colour.")


async def test_concurrency_is_bounded(loopback):
    active, peak, lock = 0, 0, threading.Lock()

    def slow(request):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
        return "ok"

    server = loopback(slow, honour_n=False)
    async with OpenAIChat(
        "m", base_url=server.base_url, api_key="k", max_concurrency=2, n_mode="parallel"
    ) as model:
        completions = await model.sample(PROMPT, 6)
    assert len(completions) == 6
    assert peak == 2


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


async def test_rate_limit_retried_after_retry_after(loopback):
    server = loopback(numbered)
    server.inject(Fault.rate_limit(retry_after=0.3), times=2)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", retry=FAST) as model:
        start = time.monotonic()
        [completion] = await model.sample(PROMPT, 1)
        elapsed = time.monotonic() - start
    assert completion.text == "answer 2.0"
    assert len(server.requests) == 3
    assert elapsed >= 0.6  # waited what the server asked, twice (FAST alone would wait ~0.03 s)


@pytest.mark.parametrize(
    "fault", [Fault.server_error(500), Fault.server_error(503), Fault.dropped()], ids=str
)
async def test_transient_faults_retried(loopback, fault):
    server = loopback(numbered)
    server.inject(fault, times=2)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", retry=FAST) as model:
        [completion] = await model.sample(PROMPT, 1)
    assert completion.text == "answer 2.0"
    assert len(server.requests) == 3


async def test_timeouts_retried(loopback):
    server = loopback(numbered)
    server.inject(Fault.hang(1.0))
    async with OpenAIChat(
        "m", base_url=server.base_url, api_key="k", retry=FAST, timeout=0.3
    ) as model:
        [completion] = await model.sample(PROMPT, 1)
    assert completion.text == "answer 1.0"


@pytest.mark.parametrize("status", [400, 403, 404, 422])
async def test_client_errors_not_retried(loopback, status):
    server = loopback(lambda request: Fault(status, f"refused with {status}"))
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", retry=FAST) as model:
        with pytest.raises(ModelError) as caught:
            await model.sample(PROMPT, 1)
    assert caught.value.status_code == status
    assert len(server.requests) == 1


async def test_retries_give_up_with_the_status(loopback):
    server = loopback(lambda request: Fault.server_error(502))
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", retry=FAST) as model:
        with pytest.raises(ModelError, match="502") as caught:
            await model.sample(PROMPT, 1)
    assert caught.value.status_code == 502
    assert len(server.requests) == FAST.attempts


async def test_wrong_key_is_authentication_failed_without_the_key(loopback):
    server = loopback(numbered, api_key="right-key")
    secret = "sk-wrong-secret-123"
    async with OpenAIChat("m", base_url=server.base_url, api_key=secret, retry=FAST) as model:
        with pytest.raises(AuthenticationFailed) as caught:
            await model.sample(PROMPT, 1)
        assert secret not in repr(model)
    assert secret not in str(caught.value)
    assert len(server.requests) == 0  # refused before a request was recorded; not retried


async def test_unreachable_endpoint():
    model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k", retry=FAST)
    with pytest.raises(EndpointUnreachable, match=r"127\.0\.0\.1:9"):
        await model.sample(PROMPT, 1)
    await model.aclose()


async def test_model_name_discovered_from_the_endpoint(loopback, monkeypatch):
    monkeypatch.delenv("TTC_MODEL", raising=False)
    server = loopback(lambda request: request.body["model"], model="served-model")
    async with OpenAIChat(base_url=server.base_url, api_key="k") as model:
        [completion] = await model.sample(PROMPT, 1)
    assert completion.text == "served-model"
    assert model.name == "served-model"


async def test_environment_configures_the_endpoint(loopback, monkeypatch):
    server = loopback(lambda request: request.body["model"], api_key="env-key")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    monkeypatch.setenv("TTC_MODEL", "env-model")
    async with OpenAIChat() as model:
        [completion] = await model.sample(PROMPT, 1)
    assert completion.text == "env-model"


async def test_logprobs_and_parameters_reach_the_server(loopback):
    server = loopback(lambda request: Reply("A 4", alternatives={2: {"4": -0.2, "5": -1.8}}))
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        [completion] = await model.sample(
            PROMPT, 1, temperature=0.3, max_tokens=7, top_logprobs=2, stop=["\n"]
        )
    body = server.requests[0].body
    assert (body["temperature"], body["max_tokens"], body["stop"]) == (0.3, 7, ["\n"])
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    assert [t.token for t in completion.logprobs] == ["A", " ", "4"]
    assert completion.logprobs[2].top == {"4": -0.2, "5": -1.8}


async def test_empty_choices_are_retried(loopback):
    calls = []

    def handler(request):
        calls.append(request.index)
        return "fine"

    server = loopback(handler)
    server.honour_n = True
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", retry=FAST) as model:
        # a request with n=0 choices would be a client bug; simulate an empty reply instead
        original = server._completion

        def empty_once(body, index, replies):
            payload = original(body, index, replies)
            if index == 0:
                payload["choices"] = []
            return payload

        server._completion = empty_once
        [completion] = await model.sample(PROMPT, 1)
    assert completion.text == "fine"
    assert len(server.requests) == 2


async def test_n_below_one_is_a_clear_error():
    model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
    with pytest.raises(ConfigurationError, match="n must be at least 1"):
        await model.sample(PROMPT, 0)


async def test_langchain_adapter_samples_n_and_reports_usage():
    replies = iter(["first", "second", "third"])
    model = LangChainChat(GenericFakeChatModel(messages=replies), max_concurrency=2)
    seen = []
    completions = await model.sample(PROMPT, 3, on_completion=lambda c: seen.append(c.text))
    assert sorted(c.text for c in completions) == ["first", "second", "third"]
    assert sorted(seen) == ["first", "second", "third"]
    assert all(c.usage.calls == 1 for c in completions)


async def test_one_client_serves_many_concurrent_samples(loopback):
    server = loopback(numbered, honour_n=False, latency=0.02)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        batches = await asyncio.gather(*(model.sample(PROMPT, 4) for _ in range(5)))
    assert [len(batch) for batch in batches] == [4] * 5


SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (
            "json_schema",
            {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": SCHEMA, "strict": True},
            },
        ),
        ("json_object", {"type": "json_object", "schema": SCHEMA}),
        ("off", None),
    ],
)
async def test_json_schema_in_the_servers_dialect(loopback, mode, expected):
    server = loopback(lambda request: '{"a": 1}')
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", json_mode=mode) as model:
        await model.sample(PROMPT, 1, json_schema=SCHEMA)
    assert server.requests[0].body.get("response_format") == expected


async def test_logprobs_can_be_turned_off(loopback):
    server = loopback(lambda request: "plain")
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", logprobs=False) as model:
        [completion] = await model.sample(PROMPT, 1, top_logprobs=5)
    assert "logprobs" not in server.requests[0].body
    assert completion.logprobs is None
