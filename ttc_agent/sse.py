"""A whole chat completion sent as a stream: the server-sent events an OpenAI client reads when
it asks for ``stream=True`` (``chat.completion.chunk`` events, then ``data: [DONE]``).

``ttc serve`` streams its answers this way once a search is done, and relays an upstream that
answers a streaming request with one JSON body (as some OpenAI-compatible servers do) the same
way, so that the client still gets its answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

PIECE = 32  # characters of content per chunk

USAGE_FIELDS = ("usage", "ttc")  # sent in the last chunk when the client asked for usage


def event(payload: dict[str, Any]) -> str:
    """One server-sent event carrying ``payload`` as JSON.

    Example:
        >>> event({"a": 1})
        'data: {"a": 1}\\n\\n'
    """
    return f"data: {json.dumps(payload)}\n\n"


def completion_events(completion: dict[str, Any], *, include_usage: bool) -> Iterator[str]:
    """The events of a ``chat.completion``: per choice its role, its content in pieces (and
    its tool calls), its finish reason; then, if asked, the usage (and ``ttc``); then [DONE].

    Example:
        >>> done = {"id": "c", "created": 0, "model": "m", "usage": {"total_tokens": 2},
        ...         "choices": [{"index": 0, "finish_reason": "stop",
        ...                      "message": {"role": "assistant", "content": "Hi"}}]}
        >>> [json.loads(e[6:])["choices"] for e in completion_events(done, include_usage=False)
        ...  if e != "data: [DONE]\\n\\n"]  # doctest: +NORMALIZE_WHITESPACE
        [[{'index': 0, 'delta': {'role': 'assistant'}}],
         [{'index': 0, 'delta': {'content': 'Hi'}}],
         [{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]]
    """
    base = {
        "id": completion.get("id", "chatcmpl"),
        "object": "chat.completion.chunk",
        "created": completion.get("created", 0),
        "model": completion.get("model", ""),
    }
    for choice in completion.get("choices", []):
        index, message = choice.get("index", 0), choice.get("message") or {}
        yield event(base | {"choices": [{"index": index, "delta": {"role": "assistant"}}]})
        text = message.get("content") or ""
        for start in range(0, len(text), PIECE):
            delta = {"content": text[start : start + PIECE]}
            yield event(base | {"choices": [{"index": index, "delta": delta}]})
        if calls := message.get("tool_calls"):
            delta = {"tool_calls": [{"index": i, **call} for i, call in enumerate(calls)]}
            yield event(base | {"choices": [{"index": index, "delta": delta}]})
        finish = {"index": index, "delta": {}, "finish_reason": choice.get("finish_reason")}
        yield event(base | {"choices": [finish]})
    if include_usage:
        extra = {key: completion[key] for key in USAGE_FIELDS if key in completion}
        yield event(base | {"choices": []} | extra)
    yield "data: [DONE]\n\n"
