"""Streaming one completion with its logprobs, and cancelling it mid-way: the loopback server
streams logprobs as vLLM, llama.cpp and OpenAI do, and sees when a client closes a stream."""

from __future__ import annotations

import asyncio
import time

import openai

from ttc_agent import Budget, OpenAIChat
from ttc_agent.budget import metered
from ttc_agent.confidence import GroupWatch
from ttc_agent.testing import confident_reply, count_tokens

PROMPT = [{"role": "user", "content": "Count."}]
LONG = " ".join(["step"] * 60)  # 60 words and 59 spaces: 119 tokens
SHAKY = confident_reply(LONG, doubtful=set(range(30, 119)))  # sure, then unsure from token 30


def closed(server, index=0, timeout=5.0):
    """The request once the server has seen its stream closed early (it notices on its next
    write), or as it stands after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not server.requests[index].closed_early and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.requests[index]


async def test_the_loopback_streams_each_tokens_logprobs(loopback):
    server = loopback(lambda request: confident_reply("x = 42", doubtful={4}))
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="k")
    stream = await client.chat.completions.create(
        model="m", messages=PROMPT, stream=True, logprobs=True, top_logprobs=2
    )
    tokens = [
        (chunk.choices[0].delta.content, chunk.choices[0].logprobs.content[0].top_logprobs)
        async for chunk in stream
        if chunk.choices and chunk.choices[0].delta.content
    ]
    await client.close()
    assert [text for text, _ in tokens] == ["x", " ", "=", " ", "4", "2"]
    assert [round(alt.logprob, 3) for alt in tokens[4][1]] == [-0.693, -0.693]
    assert not server.requests[0].closed_early


async def test_a_stream_read_to_the_end_is_one_completion_with_logprobs_and_usage(loopback):
    server = loopback(lambda request: SHAKY)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        with metered(Budget(total_tokens=10_000)) as meter:
            completion = await model.stream_sample(PROMPT, max_tokens=500, top_logprobs=2)
    body = server.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    assert completion.text == LONG and completion.finish_reason == "stop"
    assert len(completion.logprobs) == 119
    assert completion.usage.completion_tokens == 119 and completion.usage.calls == 1
    assert meter.spent.output_tokens == 119  # settled to the usage the stream ended with
    assert not server.requests[0].closed_early


async def test_a_cancelled_stream_is_closed_and_the_server_sees_it(loopback):
    server = loopback(lambda request: SHAKY, token_latency=0.005)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        completion = await model.stream_sample(
            PROMPT, top_logprobs=2, cancel_when=lambda: GroupWatch(window=8, threshold=2.0).add
        )
    request = closed(server)
    assert completion.finish_reason == "cancelled"
    # the window's mean first falls below 2.0 at the second unsure token, the 32nd:
    # (6 * 2.31 + 2 * 0.69) / 8 = 1.90
    assert len(completion.logprobs) == 32
    assert completion.text == "".join(t.token for t in completion.logprobs)
    assert request.closed_early and 32 <= request.streamed < 119
    assert completion.usage.completion_tokens == 32  # what it received (no usage was sent)


async def test_a_cancelled_stream_without_usage_is_charged_its_reservation(loopback):
    server = loopback(lambda request: SHAKY, token_latency=0.002)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        with metered(Budget(output_tokens=1_000)) as meter:
            watch = lambda: GroupWatch(window=8, threshold=2.0).add  # noqa: E731
            await model.stream_sample(PROMPT, max_tokens=300, top_logprobs=2, cancel_when=watch)
    assert meter.spent.output_tokens == 300  # the server may have generated up to max_tokens
    assert meter.spent.calls == 1 and meter.reserved.output_tokens == 0


async def test_vllms_running_usage_settles_a_cancelled_stream(loopback):
    server = loopback(lambda request: SHAKY, flavour="vllm", token_latency=0.002)
    running = {"stream_options": {"include_usage": True, "continuous_usage_stats": True}}
    async with OpenAIChat(
        "m", base_url=server.base_url, api_key="k", continuation="vllm", extra_body=running
    ) as model:
        with metered(Budget(output_tokens=1_000)) as meter:
            watch = lambda: GroupWatch(window=8, threshold=2.0).add  # noqa: E731
            completion = await model.stream_sample(
                PROMPT, max_tokens=300, top_logprobs=2, cancel_when=watch
            )
    assert meter.spent.output_tokens == 32 == completion.usage.completion_tokens
    prompt = server.requests[0].usage["prompt_tokens"]
    assert completion.usage.prompt_tokens == prompt == count_tokens("Count.")


async def test_a_stream_without_logprobs_has_none(loopback):
    server = loopback(lambda request: "Plain words here.")
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", logprobs=False) as model:
        completion = await model.stream_sample(PROMPT, top_logprobs=2)
    assert "logprobs" not in server.requests[0].body
    assert completion.logprobs is None and completion.text == "Plain words here."
    assert completion.usage.completion_tokens == 6


async def test_concurrent_streams_cancel_independently(loopback):
    replies = {"sure": confident_reply(LONG), "shaky": SHAKY}
    server = loopback(lambda request: replies[request.last_user], token_latency=0.002)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:

        def watch():
            return GroupWatch(window=8, threshold=2.0).add

        sure, shaky = await asyncio.gather(
            model.stream_sample(
                [{"role": "user", "content": "sure"}], top_logprobs=2, cancel_when=watch
            ),
            model.stream_sample(
                [{"role": "user", "content": "shaky"}], top_logprobs=2, cancel_when=watch
            ),
        )
    assert sure.finish_reason == "stop" and len(sure.logprobs) == 119
    assert shaky.finish_reason == "cancelled" and len(shaky.logprobs) == 32
