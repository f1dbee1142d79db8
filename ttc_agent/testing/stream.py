"""How the loopback server (``ttc_agent.testing``) streams a reply: chat.completion.chunk events,
one token each, with the token's logprobs when they were asked for, the usage at the end (or in
every chunk, as vLLM's ``continuous_usage_stats`` does), paced like a server that generates as
it sends, and noticing a client that closes the stream before the end, as a server stops
generating for it.
"""

from __future__ import annotations

import json
import time
from io import BufferedIOBase
from typing import Any

from ttc_agent.testing.wire import _TOKEN, Counting, count_tokens, usage_of


def chunks(
    payload: dict[str, Any], include_usage: bool, running_usage: bool = False
) -> list[dict[str, Any]]:
    """A completion as the chunks a streaming server sends: role, one per token, finish, and
    the usage (with ``include_usage``), or the usage so far in every chunk (``running_usage``).

    Example:
        >>> payload = {"id": "x", "created": 0, "model": "m", "choices": [{"index": 0,
        ...     "message": {"content": "Hi!"}, "finish_reason": "stop", "logprobs": None}]}
        >>> [c["choices"][0]["delta"].get("content") for c in chunks(payload, False)]
        [None, 'Hi', '!', None]
    """
    base = {k: payload[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    usage = payload.get("usage")
    events = []
    for choice in payload["choices"]:
        index = choice["index"]
        events.append(base | {"choices": [{"index": index, "delta": {"role": "assistant"}}]})
        tokens = _TOKEN.findall(choice["message"]["content"])
        logprobs = (choice.get("logprobs") or {}).get("content")
        for i, token in enumerate(tokens):
            part: dict[str, Any] = {"index": index, "delta": {"content": token}}
            if logprobs is not None:
                part["logprobs"] = {"content": logprobs[i : i + 1]}
            event = base | {"choices": [part]}
            if running_usage and usage is not None:
                event["usage"] = usage_of(usage["prompt_tokens"], i + 1)
            events.append(event)
        finish = {"index": index, "delta": {}, "finish_reason": choice["finish_reason"]}
        events.append(base | {"choices": [finish]})
    if (include_usage or running_usage) and usage is not None:
        events.append(base | {"choices": [], "usage": usage})
    return events


def send(stream: BufferedIOBase, events: list[dict[str, Any]], pause: float = 0.0) -> int | None:
    """Write events as server-sent events, ``pause`` seconds after each token, then ``[DONE]``.

    Returns:
        None when the client read to the end; else how many tokens were sent before the client
        was seen to have closed the stream (a write failed), after which nothing more is
        generated.
    """
    sent = 0
    try:
        for event in events:
            stream.write(encoded(event))
            stream.flush()
            if carries_token(event):
                sent += 1
                time.sleep(pause)
        stream.write(DONE)
        stream.flush()
    except (BrokenPipeError, ConnectionResetError):
        return sent
    return None


DONE = b"data: [DONE]\n\n"
"""The server-sent event that ends a stream."""


def encoded(event: dict[str, Any]) -> bytes:
    """One chunk as a server-sent event.

    Example:
        >>> encoded({"choices": []})
        b'data: {"choices": []}\\n\\n'
    """
    return f"data: {json.dumps(event)}\n\n".encode()


def carries_token(event: dict[str, Any]) -> bool:
    """Whether a chunk carries a generated token (what a server paces, and bills when the
    stream is closed early)."""
    return any("content" in choice.get("delta", {}) for choice in event.get("choices", []))


def billed_until(usage: dict[str, int], sent: int, counting: Counting, text: str) -> dict[str, int]:
    """What a stream closed after ``sent`` tokens of ``text`` billed: the prompt and the tokens
    generated until then.

    Example:
        >>> billed_until({"prompt_tokens": 5, "completion_tokens": 9}, 2, "words", "Hi there!")
        {'prompt_tokens': 5, 'completion_tokens': 2, 'total_tokens': 7}
    """
    generated = count_tokens("".join(_TOKEN.findall(text)[:sent]), counting)
    return usage_of(usage["prompt_tokens"], generated)
