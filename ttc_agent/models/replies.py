"""Reading an OpenAI-compatible server's replies: the JSON read straight into the fields used
here, choices as completions, the bill, and the samples that were lost."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Required

from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypedDict

from ttc_agent.errors import ModelError, SamplesFailed
from ttc_agent.models.retry import EmptyResponse, UnreadableReply
from ttc_agent.types import Completion, TokenLogprob, ToolCall, Usage


class _Alternative(TypedDict):
    token: str
    logprob: float


class _Token(TypedDict, total=False):
    token: Required[str]
    logprob: Required[float]
    top_logprobs: list[_Alternative] | None


class _Logprobs(TypedDict, total=False):
    content: list[_Token] | None  # chat completions
    tokens: list[str] | None  # text completions, with the next two
    token_logprobs: list[float | None] | None
    top_logprobs: list[dict[str, float] | None] | None


class _Message(TypedDict, total=False):
    content: str | None
    tool_calls: list[dict[str, Any]] | None


class _Choice(TypedDict, total=False):
    message: _Message | None
    text: str | None
    finish_reason: str | None
    stop_reason: Any  # vLLM's: the stop string or token that cut the reply, None at EOS
    logprobs: _Logprobs | None


class Reply(TypedDict, total=False):
    """The fields of a chat or text completion read here; the rest is skipped unread."""

    choices: list[_Choice] | None
    usage: dict[str, Any] | None


_REPLY = TypeAdapter(Reply)


def read_reply(raw: bytes) -> Reply:
    """A completion's JSON, read into ``Reply`` (in pydantic's Rust parser: no Python objects
    for the fields skipped, such as each token's bytes), or an error worth another try:
    ``UnreadableReply`` for a body that is not such JSON, ``EmptyResponse`` for no choices.

    Example:
        >>> read_reply(b'{"id": "x", "choices": [{"text": "Hi", "finish_reason": "stop"}]}')
        {'choices': [{'text': 'Hi', 'finish_reason': 'stop'}]}
    """
    try:
        reply = _REPLY.validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:3]
        )
        raise UnreadableReply(
            f"the reply is not a completion ({problems}): {raw[:200]!r}"
        ) from None
    if not reply.get("choices"):
        raise EmptyResponse("the server returned no choices")
    return reply


def billed(reply: Reply) -> Usage | None:
    """What the server says a reply cost (None when it does not say: the caller charges its
    reservation, never nothing)."""
    usage = reply.get("usage")
    if not isinstance(usage, dict):
        return None
    return Usage(
        prompt_tokens=usage.get("prompt_tokens") or 0,
        completion_tokens=usage.get("completion_tokens") or 0,
        calls=1,
    )


def completions_of(reply: Reply) -> list[Completion]:
    """The choices of a chat or text completion, each with its share of the usage."""
    choices = reply.get("choices") or []
    messages = [choice.get("message") or {} for choice in choices]
    texts = [
        (message.get("content") if "message" in choice else choice.get("text")) or ""
        for choice, message in zip(choices, messages, strict=True)
    ]
    usage = billed(reply)
    prompt = usage.prompt_tokens if usage else 0
    shares = split_tokens(usage.completion_tokens if usage else 0, texts)
    completions = []
    for i, (choice, message, text, tokens) in enumerate(
        zip(choices, messages, texts, shares, strict=True)
    ):
        completions.append(
            Completion.model_construct(  # every field already validated, by Reply or here
                text=text,
                finish_reason=choice.get("finish_reason"),
                ended=_ended(choice),
                logprobs=_logprobs(choice.get("logprobs")),
                usage=Usage(
                    prompt_tokens=prompt if i == 0 else 0,
                    completion_tokens=tokens,
                    calls=1 if i == 0 else 0,
                ),
                tool_calls=tool_calls_of(message.get("tool_calls") or []),
            )
        )
    return completions


def tool_calls_of(calls: list[dict[str, Any]]) -> list[ToolCall]:
    """The function calls of a chat message (other kinds of tool call have no name to call)."""
    return [
        ToolCall(
            id=call.get("id") or f"call_{i}",
            name=call["function"]["name"],
            arguments=call["function"].get("arguments") or "{}",
        )
        for i, call in enumerate(calls)
        if isinstance(call.get("function"), dict)
    ]


def _ended(choice: _Choice) -> bool | None:
    if choice.get("finish_reason") == "length":
        return False
    if choice.get("finish_reason") == "stop" and "stop_reason" in choice:  # vLLM: None is EOS
        return choice["stop_reason"] is None
    return None


def _logprobs(logprobs: _Logprobs | None) -> list[TokenLogprob] | None:
    if logprobs is None:
        return None
    if (tokens := logprobs.get("tokens")) is not None:  # the completions endpoint
        top = logprobs.get("top_logprobs") or [{}] * len(tokens)
        return [
            TokenLogprob(token, logprob or 0.0, alternatives or {})
            for token, logprob, alternatives in zip(
                tokens, logprobs.get("token_logprobs") or [], top, strict=False
            )
        ]
    if (content := logprobs.get("content")) is not None:
        return [
            TokenLogprob(
                item["token"],
                item["logprob"],
                {alt["token"]: alt["logprob"] for alt in item.get("top_logprobs") or []},
            )
            for item in content
        ]
    return None


def without_lost_samples(batches: list[Any], arrived: list[Completion]) -> list[Any]:
    """The batches of single-sample requests, or ``SamplesFailed`` when some failed for good.

    Failures that would fail every request alike (a refused key, a bad request) and budget
    stops are left for the caller; when every sample failed, the first failure is raised.
    """
    lost = [b for b in batches if isinstance(b, ModelError) and not b.fails_every_request]
    if not lost:
        return batches
    if any(isinstance(b, BaseException) and b not in lost for b in batches):
        return batches  # a budget stop or a failure of every request decides
    kept = [c for b in batches if not isinstance(b, BaseException) for c in b]
    if not (arrived or kept):
        raise lost[0]
    raise SamplesFailed(
        f"{len(lost)} of {len(batches) + len(arrived)} samples failed for good: {lost[0]}",
        partial=arrived + kept,
        failed=len(lost),
    )


def split_tokens(total: int, texts: Sequence[str]) -> list[int]:
    """Apportion a call's completion tokens to its choices by text length, summing exactly.

    Example:
        >>> split_tokens(10, ["aaa", "a"])
        [8, 2]
    """
    if not texts:
        return []
    weights = [max(len(text), 1) for text in texts]
    whole = sum(weights)
    shares = [total * weight / whole for weight in weights]
    floors = [int(share) for share in shares]
    order = sorted(range(len(texts)), key=lambda i: floors[i] - shares[i])
    for i in order[: total - sum(floors)]:
        floors[i] += 1
    return floors
