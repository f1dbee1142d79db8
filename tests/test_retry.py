"""RetryPolicy's two details taken from openai-python: a Retry-After beyond the policy's
``max_wait`` is not retried (waiting less than asked would be refused again), and the server's
``x-should-retry`` header, when it says ``true`` or ``false``, decides; over real HTTP."""

from __future__ import annotations

import time

import pytest

from ttc_agent import ModelError, OpenAIChat, RetryPolicy
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
