"""Reading an OpenAI-compatible server's replies: choices as completions, the bill, and the
samples that were lost."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ttc_agent.errors import ModelError, SamplesFailed
from ttc_agent.types import Completion, TokenLogprob, ToolCall, Usage


def billed(response: Any) -> Usage | None:
    """What the server says a reply cost (None when it does not say: the caller charges its
    reservation, never nothing)."""
    usage = getattr(response, "usage", None)
    if usage is None:
        return None
    return Usage(
        prompt_tokens=usage.prompt_tokens or 0,
        completion_tokens=usage.completion_tokens or 0,
        calls=1,
    )


def completions_of(response: Any) -> list[Completion]:
    """The choices of a chat or text completion, each with its share of the usage."""
    texts = [
        (choice.message.content if hasattr(choice, "message") else choice.text) or ""
        for choice in response.choices
    ]
    usage = response.usage
    prompt = usage.prompt_tokens if usage else 0
    shares = split_tokens(usage.completion_tokens if usage else 0, texts)
    completions = []
    for i, (choice, text, tokens) in enumerate(zip(response.choices, texts, shares, strict=True)):
        message = getattr(choice, "message", None)
        completions.append(
            Completion(
                text=text,
                finish_reason=choice.finish_reason,
                ended=_ended(choice),
                logprobs=_logprobs(choice),
                usage=Usage(
                    prompt_tokens=prompt if i == 0 else 0,
                    completion_tokens=tokens,
                    calls=1 if i == 0 else 0,
                ),
                tool_calls=tool_calls_of(getattr(message, "tool_calls", None) or []),
            )
        )
    return completions


def tool_calls_of(calls: list[Any]) -> list[ToolCall]:
    """The function calls of a chat message (other kinds of tool call have no name to call)."""
    return [
        ToolCall(
            id=call.id or f"call_{i}",
            name=call.function.name,
            arguments=call.function.arguments or "{}",
        )
        for i, call in enumerate(calls)
        if getattr(call, "function", None) is not None
    ]


def _ended(choice: Any) -> bool | None:
    if choice.finish_reason == "length":
        return False
    extra = choice.model_extra or {}
    if choice.finish_reason == "stop" and "stop_reason" in extra:  # vLLM: None means EOS
        return extra["stop_reason"] is None
    return None


def _logprobs(choice: Any) -> list[TokenLogprob] | None:
    if getattr(choice.logprobs, "tokens", None) is not None:  # the completions endpoint
        top = choice.logprobs.top_logprobs or [{}] * len(choice.logprobs.tokens)
        return [
            TokenLogprob(token=token, logprob=logprob or 0.0, top=dict(alternatives or {}))
            for token, logprob, alternatives in zip(
                choice.logprobs.tokens, choice.logprobs.token_logprobs, top, strict=False
            )
        ]
    if getattr(choice.logprobs, "content", None) is not None:
        return [
            TokenLogprob(
                token=item.token,
                logprob=item.logprob,
                top={alt.token: alt.logprob for alt in item.top_logprobs or []},
            )
            for item in choice.logprobs.content
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
