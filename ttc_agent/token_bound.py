"""An upper bound on the tokens a prompt costs, before it is sent (what a budget reserves).

Every byte-level tokenizer (GPT, Llama 3, Qwen, Mistral's Tekken) makes at most one token per
UTF-8 byte of text, and a SentencePiece one (Llama 2, Gemma, Mistral's older ones) at most one
more per text it encodes (the dummy prefix). So a prompt costs at most the bytes of everything
sent plus what the chat template adds:

- once per prompt, ``PROMPT_ALLOWANCE``: the beginning-of-text token, a default system prompt
  (Qwen2.5's alone is about 20 tokens) and the assistant's header;
- per message, ``MESSAGE_ALLOWANCE``: its role markers and end of turn;
- per tool call, tool definition and non-text content part, ``PART_ALLOWANCE`` and its JSON,
  counted as verbosely as a template may render it (indented, non-ASCII escaped);
- once when tools are offered, ``TOOLS_ALLOWANCE``: the template's instructions for using them.

Checked against Qwen2.5's template and tokenizer (llama.cpp) and Mistral's tokenizers
(``mistral-common``) in ``tests/guarantees/test_token_bound.py``. Images are counted by the
bytes of their part (an image given by URL may cost more tokens than that).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

PROMPT_ALLOWANCE = 64
MESSAGE_ALLOWANCE = 8
PART_ALLOWANCE = 8
TOOLS_ALLOWANCE = 256

Prompt = str | Mapping[str, Any] | Sequence[Mapping[str, Any]]


def prompt_token_bound(messages: Prompt, *, tools: Sequence[Any] | None = None) -> int:
    """An upper bound on the tokens of a prompt: a rendered text, or chat messages (with the
    tools offered beside them).

    Example:
        >>> prompt_token_bound("Hi")
        11
        >>> prompt_token_bound([{"role": "user", "content": "Hi"}])
        80
    """
    if isinstance(messages, str):
        return _bytes(messages) + MESSAGE_ALLOWANCE
    if isinstance(messages, Mapping):
        messages = [messages]
    total = PROMPT_ALLOWANCE + sum(_message_bound(message) for message in messages)
    if tools:
        total += TOOLS_ALLOWANCE + sum(PART_ALLOWANCE + json_bound(tool) for tool in tools)
    return total


def json_bound(value: Any) -> int:
    """The most bytes ``value`` takes as JSON in a template: indented by 4 (and by up to 8
    more a line where it is nested), non-ASCII escaped.

    Example:
        >>> json_bound({"a": 1})
        38
    """
    text = json.dumps(value, indent=4, ensure_ascii=True, default=str)
    return len(text) + 8 * (text.count("\n") + 1)


def _message_bound(message: Mapping[str, Any]) -> int:
    calls = message.get("tool_calls") or []
    rest = {k: v for k, v in message.items() if k not in ("role", "content", "tool_calls")}
    return (
        MESSAGE_ALLOWANCE
        + _bytes(str(message.get("role", "")))
        + _content_bound(message.get("content"))
        + (json_bound(rest) if rest else 0)
        + sum(_tool_call_bound(call) for call in calls)
    )


def _content_bound(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return _bytes(content)
    if isinstance(content, Sequence):
        return sum(_part_bound(part) for part in content)
    return PART_ALLOWANCE + json_bound(content)


def _part_bound(part: Any) -> int:
    if isinstance(part, str):
        return PART_ALLOWANCE + _bytes(part)
    if isinstance(part, Mapping) and isinstance(part.get("text"), str):
        rest = {k: v for k, v in part.items() if k != "text"}
        return PART_ALLOWANCE + _bytes(part["text"]) + json_bound(rest)
    return PART_ALLOWANCE + json_bound(part)


def _tool_call_bound(call: Any) -> int:
    """A tool call's name, id and arguments, whether a template renders the arguments as the
    string the model wrote or as the object it parses to."""
    if not isinstance(call, Mapping):
        return PART_ALLOWANCE + json_bound(call)
    raw = call.get("function")
    function: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    arguments = function.get("arguments", call.get("args"))
    rest = {k: v for k, v in call.items() if k not in ("function", "args")}
    rest |= {k: v for k, v in function.items() if k != "arguments"}
    forms = [json_bound(arguments)]
    if isinstance(arguments, str):
        with contextlib.suppress(ValueError):  # not JSON: rendered as the string only
            forms.append(json_bound(json.loads(arguments)))
    return PART_ALLOWANCE + json_bound(rest) + max(forms)


def _bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass")) + 1  # + a SentencePiece dummy prefix
