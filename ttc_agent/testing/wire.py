"""How the loopback server (``ttc_agent.testing``) writes a reply and bills it: choices cut at
stop strings and ``max_tokens``, tool calls, logprobs, and token counts; and scripted replies
(a judge's verdict, a reply of known confidence).

Two ways to count tokens: ``words`` (digits, words, spaces and punctuation each count one: a
count a client could guess) and ``bytes`` (every UTF-8 byte of every text sent is a token, the
most a byte-level tokenizer makes, framed as Qwen2.5's chat template frames it: a default
system prompt, role markers, tool instructions). ``bytes`` is a server whose counts exceed any
estimate a client could make from the words.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any, Literal

Counting = Literal["words", "bytes"]

_TOKEN = re.compile(r"\d|[^\W\d]+|\s+|[^\w\s]")

# Qwen2.5's template, in its own tokens: the default system prompt ("You are Qwen, created by
# Alibaba Cloud. You are a helpful assistant." and its framing), the markers around a message,
# the assistant's header, and the instructions it adds when tools are offered.
DEFAULT_SYSTEM_TOKENS = 25
MESSAGE_TOKENS = 5
GENERATION_TOKENS = 3
TOOLS_TOKENS = 110


@dataclass(frozen=True)
class Reply:
    """One scripted choice.

    Args:
        text: the message content.
        finish_reason: as the server reports it (``tool_calls`` when there are tool calls and
            it is left at ``stop``).
        alternatives: top logprobs to report at the token starting at a character offset,
            e.g. ``{12: {"4": -0.5, "5": -1.0}}``; other tokens report only themselves.
        tool_calls: ``(name, arguments)`` pairs the reply calls, in order.
    """

    text: str
    finish_reason: str = "stop"
    alternatives: dict[int, dict[str, float]] = field(default_factory=dict)
    tool_calls: tuple[tuple[str, dict[str, Any]], ...] = ()


def confident_reply(
    text: str, doubtful: Container[int] = (), sure: float = 0.99, unsure: float = 0.5
) -> Reply:
    """A reply whose every token comes with two alternatives: itself at probability ``sure``
    (``unsure`` for the tokens whose index is in ``doubtful``) and ``"~"`` with the rest, so
    its confidence signals are known (``ttc_agent.confidence``: about 2.31 a sure token at
    0.99, ln 2 = 0.69 an unsure one at 0.5).

    Example:
        >>> reply = confident_reply("x = 4", doubtful={4})
        >>> reply.alternatives[4]["4"] == math.log(0.5)
        True
    """
    alternatives = {}
    for i, match in enumerate(_TOKEN.finditer(text)):
        p = unsure if i in doubtful else sure
        alternatives[match.start()] = {match.group(): math.log(p), "~": math.log(1 - p)}
    return Reply(text, alternatives=alternatives)


def count_tokens(text: str, counting: Counting = "words") -> int:
    """The loopback server's token count of a text.

    Example:
        >>> count_tokens("Hi, 42!"), count_tokens("Hi, 42!", "bytes")
        (6, 7)
    """
    if counting == "bytes":
        return len(text.encode("utf-8", "surrogatepass"))
    return len(_TOKEN.findall(text))


def prompt_tokens(body: dict[str, Any], counting: Counting = "words") -> int:
    """What the loopback server bills for a request's prompt."""
    if "prompt" in body:
        return count_tokens(body["prompt"], counting)
    messages = body.get("messages") or []
    texts = [text for message in messages for text in _texts(message)]
    texts += [json.dumps(tool) for tool in body.get("tools") or []]
    total = sum(count_tokens(text, counting) for text in texts)
    if counting == "bytes":
        has_system = bool(messages) and messages[0].get("role") == "system"
        total += MESSAGE_TOKENS * len(messages) + GENERATION_TOKENS
        total += 0 if has_system else DEFAULT_SYSTEM_TOKENS
        total += TOOLS_TOKENS if body.get("tools") else 0
    return total


def _texts(message: dict[str, Any]) -> list[str]:
    """Every text a template renders of a message: its content (text parts too), its tool
    calls (as Qwen2.5 writes them) and the id a tool result answers."""
    content = message.get("content")
    if isinstance(content, str):
        texts = [content]
    else:
        texts = [part.get("text") or "" for part in content or [] if isinstance(part, dict)]
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        call_text = json.dumps(
            {"name": function.get("name"), "arguments": function.get("arguments")}
        )
        texts.append(f"\n<tool_call>\n{call_text}\n</tool_call>")
    if message.get("role") == "tool":
        texts.append("\n<tool_response>\n\n</tool_response>")
    return texts


def limit(
    reply: Reply, stop: Any, max_tokens: Any, counting: Counting = "words"
) -> tuple[Reply, str | None]:
    """Cut a reply at its first stop string and at max_tokens, as a server would."""
    text, finish, stopped_by = reply.text, reply.finish_reason, None
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    cuts = [(text.find(s), s) for s in stops if s and s in text]
    if cuts:
        position, stopped_by = min(cuts)
        text, finish = text[:position], "stop"
    if max_tokens is not None and count_tokens(text, counting) > int(max_tokens):
        if counting == "bytes":
            text = text.encode()[: int(max_tokens)].decode(errors="ignore")
        else:
            text = "".join(_TOKEN.findall(text)[: int(max_tokens)])
        finish, stopped_by = "length", None
    if text == reply.text:
        return reply, stopped_by
    return Reply(text, finish, reply.alternatives, reply.tool_calls), stopped_by


def chat_message(reply: Reply, index: int) -> dict[str, Any]:
    """A chat reply's message, with its tool calls as OpenAI writes them."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_{index}_{k}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            for k, (name, arguments) in enumerate(reply.tool_calls)
        ]
    return message


def completion(
    body: dict[str, Any],
    index: int,
    replies: list[Reply],
    *,
    counting: Counting = "words",
    stop_reason: bool = False,
    model: str = "loopback",
) -> dict[str, Any]:
    """The completion a server sends for ``replies`` to request number ``index`` (a chat or a
    text completion, as ``body`` asks), cut at its stop strings and ``max_tokens``, with the
    logprobs it asks for and the usage it bills.

    Example:
        >>> body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
        >>> reply = completion(body, 0, [Reply("Hello there")])
        >>> reply["choices"][0]["message"]["content"], reply["usage"]["completion_tokens"]
        ('Hello', 1)
    """
    chat = "prompt" not in body
    want_logprobs = bool(body.get("logprobs"))
    top_k = int(body.get("top_logprobs") or 0) if chat else int(body.get("logprobs") or 0)
    stop, most = body.get("stop"), body.get("max_completion_tokens", body.get("max_tokens"))
    cut = [limit(reply, stop, most, counting) for reply in replies]
    choices = []
    for i, (reply, stopped_by) in enumerate(cut):
        tokens = logprobs(reply, top_k) if want_logprobs else None
        finish = "tool_calls" if reply.tool_calls and reply.finish_reason == "stop" else None
        choice: dict[str, Any] = {"index": i, "finish_reason": finish or reply.finish_reason}
        if chat:
            choice["message"] = chat_message(reply, i)
            choice["logprobs"] = {"content": tokens} if tokens is not None else None
        else:
            choice["text"] = reply.text
            choice["logprobs"] = text_logprobs(tokens) if tokens is not None else None
        if stop_reason:
            choice["stop_reason"] = stopped_by
        choices.append(choice)
    prompt = prompt_tokens(body, counting)
    generated = sum(count_tokens(reply.text, counting) for reply, _ in cut)
    generated += sum(
        count_tokens(json.dumps(r.tool_calls), counting) for r, _ in cut if r.tool_calls
    )
    return {
        "id": f"chatcmpl-loopback-{index}",
        "object": "chat.completion" if chat else "text_completion",
        "created": 0,
        "model": body.get("model") or model,
        "choices": choices,
        "usage": usage_of(prompt, generated),
    }


def usage_of(prompt: int, completion: int) -> dict[str, int]:
    """A reply's usage field.

    Example:
        >>> usage_of(3, 4)
        {'prompt_tokens': 3, 'completion_tokens': 4, 'total_tokens': 7}
    """
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def text_logprobs(tokens: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "tokens": [t["token"] for t in tokens],
        "token_logprobs": [t["logprob"] for t in tokens],
        "top_logprobs": [{a["token"]: a["logprob"] for a in t["top_logprobs"]} for t in tokens],
        "text_offset": [],
    }


def logprobs(reply: Reply, top_k: int) -> list[dict[str, Any]]:
    tokens = []
    for match in _TOKEN.finditer(reply.text):
        alternatives = reply.alternatives.get(match.start(), {match.group(): 0.0})
        ranked = sorted(alternatives.items(), key=lambda item: -item[1])[: max(top_k, 1)]
        logprob = alternatives.get(match.group(), ranked[0][1])
        tokens.append(
            {
                "token": match.group(),
                "logprob": logprob,
                "bytes": list(match.group().encode()),
                "top_logprobs": [
                    {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in ranked
                ][:top_k],
            }
        )
    return tokens


def judge_reply(
    scores: dict[str, int], probabilities: dict[str, dict[int, float]] | None = None
) -> Reply:
    """A judge's JSON reply giving ``scores`` per criterion, with optional score distributions.

    ``probabilities[criterion]`` maps score points to probabilities reported as top logprobs
    at that criterion's score token.

    Example:
        >>> judge_reply({"clarity": 4}).text
        '{"clarity": {"reason": "clarity is 4", "score": 4}}'
    """
    verdict = {
        name: {"reason": f"{name} is {value}", "score": value} for name, value in scores.items()
    }
    text = json.dumps(verdict)
    alternatives: dict[int, dict[str, float]] = {}
    for name, distribution in (probabilities or {}).items():
        block = text.index(f'"{name}": {{')
        offset = text.index('"score": ', block) + len('"score": ')
        alternatives[offset] = {
            str(point): math.log(p) for point, p in distribution.items() if p > 0
        }
    return Reply(text, alternatives=alternatives)
