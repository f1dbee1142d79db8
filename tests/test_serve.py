"""``ttc serve`` in front of the loopback server, driven by the real openai client."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
from serve_proxy import Proxy, client

from ttc_agent.models.retry import RetryPolicy
from ttc_agent.serve import ProxyConfig
from ttc_agent.testing import Fault, LoopbackServer, fenced, judge_reply

CRITERIA = ["correctness", "completeness", "specificity", "clarity"]
UPSTREAM_KEY = "sk-upstream-secret-42"


def handler(request):
    candidate = fenced(request.last_user)
    if candidate is not None:
        return judge_reply(dict.fromkeys(CRITERIA, 5 if "best" in candidate else 2))
    return (
        "the best answer" if request.choice == 1 else f"an answer {request.index}.{request.choice}"
    )


@pytest.fixture
def stack() -> Iterator[tuple[LoopbackServer, Proxy]]:
    with LoopbackServer(handler, honour_n=True, api_key=UPSTREAM_KEY) as upstream:
        config = ProxyConfig(
            upstream=upstream.base_url,
            upstream_key=UPSTREAM_KEY,
            api_key="client-key",
            max_n=8,
            retry=RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05),
        )
        with Proxy(config) as proxy:
            yield upstream, proxy


def billed(upstream: LoopbackServer) -> dict[str, int]:
    return {
        key: sum(r.usage.get(key, 0) for r in upstream.requests)
        for key in ("prompt_tokens", "completion_tokens")
    }


def test_pass_through_without_effort(stack):
    upstream, proxy = stack
    reply = client(proxy).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Hi"}], temperature=0.2
    )
    assert reply.choices[0].message.content == "an answer 0.0"
    assert len(upstream.requests) == 1
    assert upstream.requests[0].body == {
        "model": "m",
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0.2,
    }


def test_pass_through_streams(stack):
    _, proxy = stack
    chunks = client(proxy).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "an answer 0.0"


def test_effort_low_returns_the_best_with_complete_usage(stack):
    upstream, proxy = stack
    reply = client(proxy).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Hi"}], reasoning_effort="low"
    )
    assert reply.choices[0].message.content == "the best answer"
    extension = reply.model_extra["ttc"]
    assert extension["strategy"] == "best_of_n" and extension["candidates"] == 4
    spent = billed(upstream)
    assert reply.usage.prompt_tokens == spent["prompt_tokens"]
    assert reply.usage.completion_tokens == spent["completion_tokens"]
    split = extension["usage"]
    assert split["generation"]["calls"] + split["verification"]["calls"] == len(upstream.requests)


def test_model_suffix_and_extension_field(stack):
    upstream, proxy = stack
    reply = client(proxy).chat.completions.create(
        model="m:low",
        messages=[{"role": "user", "content": "Hi"}],
        extra_body={"ttc": {"strategy": "best_of_n", "n": 2}},
    )
    assert reply.model_extra["ttc"]["candidates"] == 2
    assert {r.body["model"] for r in upstream.requests} == {"m"}


def test_streaming_sends_progress_then_chunks_then_done(stack):
    _, proxy = stack
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "Hi"}],
        "reasoning_effort": "low",
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {"Authorization": "Bearer client-key"}
    with httpx.stream("POST", f"{proxy.url}/chat/completions", json=body, headers=headers) as reply:
        lines = [line for line in reply.iter_lines() if line]
    progress = [
        json.loads(line.removeprefix(": ttc ")) for line in lines if line.startswith(": ttc ")
    ]
    data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    assert [p["done"] for p in progress if p["ttc"] == "sampled"] == [0, 1, 2, 3, 4]
    assert lines.index(next(line for line in lines if line.startswith(": ttc "))) < lines.index(
        next(line for line in lines if line.startswith("data: "))
    )
    assert data[-1] == "[DONE]"
    chunks = [json.loads(item) for item in data[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "the best answer"
    assert chunks[-1]["usage"]["total_tokens"] > 0
    # and the openai client reads the same stream as an ordinary one
    stream = client(proxy).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Hi"}], reasoning_effort="low", stream=True
    )
    assert (
        "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "the best answer"
    )


def test_conversations_reach_the_upstream_whole(stack):
    upstream, proxy = stack
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C, sunny"},
        {"role": "user", "content": "And tomorrow?"},
    ]
    client(proxy).chat.completions.create(model="m", messages=messages, reasoning_effort="none")
    sent = upstream.requests[0].messages
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "user"]
    assert sent[2]["tool_calls"][0]["function"]["name"] == "weather"
    assert sent[3] == {"role": "tool", "tool_call_id": "call_1", "content": "18 C, sunny"}


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"extra_body": {"ttc": {"n": 1000}}}, 400, "ttc.n must be an integer from 1 to 8"),
        ({"reasoning_effort": "extreme"}, 400, "unknown reasoning_effort 'extreme'"),
        ({"reasoning_effort": "low", "n": 2}, 400, "n must be 1 when thinking harder"),
    ],
)
def test_bad_requests_get_a_clear_4xx(stack, kwargs, status, message):
    _, proxy = stack
    with pytest.raises(openai.APIStatusError) as caught:
        client(proxy).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Hi"}], **kwargs
        )
    assert caught.value.status_code == status
    assert message in caught.value.message


def test_bad_json_and_missing_key(stack):
    _, proxy = stack
    reply = httpx.post(
        f"{proxy.url}/chat/completions",
        content=b"{nope",
        headers={"Authorization": "Bearer client-key"},
    )
    assert reply.status_code == 400 and "not valid JSON" in reply.json()["error"]["message"]
    with pytest.raises(openai.AuthenticationError):
        client(proxy, key="wrong").chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Hi"}]
        )


def test_upstream_5xx_becomes_502_without_the_upstream_key(stack):
    upstream, proxy = stack
    upstream.inject(Fault.server_error(503), times=20)
    with pytest.raises(openai.APIStatusError) as caught:
        client(proxy).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Hi"}], reasoning_effort="none"
        )
    assert caught.value.status_code == 502
    assert "upstream" in caught.value.message
    assert UPSTREAM_KEY not in caught.value.response.text
    upstream.reset()
    upstream.inject(Fault.server_error(500))
    with pytest.raises(openai.APIStatusError) as caught:  # pass-through too
        client(proxy).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Hi"}]
        )
    assert caught.value.status_code == 502


def test_models_pass_through(stack):
    _, proxy = stack
    assert [m.id for m in client(proxy).models.list()] == ["loopback"]


def test_oversized_requests_are_refused(stack):
    _, proxy = stack
    huge = {"model": "m", "messages": [{"role": "user", "content": "x" * 1_100_000}]}
    reply = httpx.post(
        f"{proxy.url}/chat/completions", json=huge, headers={"Authorization": "Bearer client-key"}
    )
    assert reply.status_code == 413
    assert "over 1000000 bytes" in reply.json()["error"]["message"]


class PlainJSONServer(LoopbackServer):
    """An upstream that ignores ``stream`` and always answers with one JSON body, as some
    OpenAI-compatible servers do."""

    def _respond(self, body, headers):
        body.pop("stream", None)
        body.pop("stream_options", None)
        return super()._respond(body, headers)


def test_pass_through_streams_even_when_the_upstream_answers_plain_json():
    with PlainJSONServer(handler) as upstream, Proxy(ProxyConfig(upstream=upstream.base_url)) as p:
        stream = client(p, key="any").chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "an answer 0.0"
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
