"""OpenAIChat against the loopback server, through the real openai client over HTTP: n in one
request or filled in, bounded concurrency, the served model discovered, the environment, the
fields a request carries (logprobs, JSON schemas) and replies without choices."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ttc_agent import (
    ConfigurationError,
    OpenAIChat,
    RetryPolicy,
)
from ttc_agent.testing import Reply, count_tokens

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
