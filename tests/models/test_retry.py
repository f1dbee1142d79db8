"""Retries and the errors after them, over real HTTP: 429 after its Retry-After, 5xx, dropped
connections and timeouts retried; client errors not; a refused key and an unreachable endpoint
named, never the key. And RetryPolicy's two details taken from openai-python: a Retry-After beyond
the policy's ``max_wait`` is not retried (waiting less than asked would be refused again), and the
server's ``x-should-retry`` header, when it says ``true`` or ``false``, decides."""

from __future__ import annotations

import time

import pytest
from test_openai_chat import FAST, numbered

from ttc_agent import AuthenticationFailed, EndpointUnreachable, ModelError, OpenAIChat, RetryPolicy
from ttc_agent.testing import Fault

POLICY = RetryPolicy(attempts=4, initial_wait=0.01, max_wait=1.0)
PROMPT = [{"role": "user", "content": "Name a colour."}]


async def test_a_retry_after_beyond_max_wait_is_not_retried(loopback):
    server = loopback(lambda request: "blue")
    server.inject(Fault.rate_limit(retry_after=30))
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", retry=POLICY) as model:
        start = time.monotonic()
        with pytest.raises(ModelError, match=r"asked to wait 30 s.*max_wait of 1 s") as caught:
            await model.sample(PROMPT)
    assert caught.value.status_code == 429
    assert len(server.requests) == 1  # not retried
    assert time.monotonic() - start < 1.0  # nor waited for


async def test_a_retry_after_within_max_wait_is_waited_for(loopback):
    server = loopback(lambda request: "blue")
    server.inject(Fault.rate_limit(retry_after=0.3))
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", retry=POLICY) as model:
        start = time.monotonic()
        [completion] = await model.sample(PROMPT)
    assert completion.text == "blue" and len(server.requests) == 2
    assert time.monotonic() - start >= 0.3


async def test_x_should_retry_false_stops_a_retryable_status(loopback):
    server = loopback(lambda request: "blue")
    server.inject(Fault(503, "overloaded", {"x-should-retry": "false"}))
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", retry=POLICY) as model:
        with pytest.raises(ModelError, match="503") as caught:
            await model.sample(PROMPT)
    assert caught.value.status_code == 503
    assert len(server.requests) == 1


async def test_x_should_retry_true_retries_a_client_error(loopback):
    server = loopback(lambda request: "blue")
    server.inject(Fault(400, "try again", {"x-should-retry": "true"}), times=2)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", retry=POLICY) as model:
        [completion] = await model.sample(PROMPT)
    assert completion.text == "blue"
    assert len(server.requests) == 3


async def test_any_other_x_should_retry_leaves_the_status_to_decide(loopback):
    server = loopback(lambda request: "blue")
    server.inject(Fault(503, "overloaded", {"x-should-retry": "maybe"}))
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", retry=POLICY) as model:
        [completion] = await model.sample(PROMPT)  # the 503 is retried
        assert completion.text == "blue" and len(server.requests) == 2
        server.inject(Fault(400, "bad request", {"x-should-retry": "maybe"}))
        with pytest.raises(ModelError, match="400"):
            await model.sample(PROMPT)  # the 400 is not
    assert len(server.requests) == 3


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
