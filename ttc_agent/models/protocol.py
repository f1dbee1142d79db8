"""The one interface strategies and verifiers use to reach a model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from ttc_agent.errors import ConfigurationError
from ttc_agent.types import Completion, Message

OnCompletion = Callable[[Completion], object]
"""Called once for each completion as it arrives (for progress events)."""


@runtime_checkable
class ChatModel(Protocol):
    """Anything that can sample chat completions: ``OpenAIChat``, ``LangChainChat``, yours.

    ``sample`` returns exactly ``n`` completions, each carrying its share of the token usage.
    ``top_logprobs`` asks for that many alternatives at every generated token, where the
    endpoint gives them (completions come back without logprobs where it does not).
    ``json_schema`` asks for a reply constrained to that JSON schema, in whatever way the
    endpoint supports it (a hint: callers still validate what comes back). ``prefix`` continues
    the assistant's reply from that text (step-level search): the completions hold only the
    continuation. A model declares whether it can continue a partial reply at all through
    ``check_continuation``, which step search awaits before its first request.
    """

    @property
    def name(self) -> str:
        """The model's name, as results record it."""
        ...

    async def sample(
        self,
        messages: Sequence[Message],
        n: int = 1,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_logprobs: int | None = None,
        stop: Sequence[str] | None = None,
        json_schema: dict[str, Any] | None = None,
        prefix: str | None = None,
        on_completion: OnCompletion | None = None,
    ) -> list[Completion]: ...

    async def check_continuation(self) -> None:
        """Raise ``ConfigurationError`` (naming the model and how to fix it) unless ``sample``
        can continue a partial reply given as ``prefix``."""
        ...

    async def aclose(self) -> None: ...


async def can_continue(model: ChatModel) -> bool:
    """Whether ``model`` can continue a partial reply (its ``check_continuation`` passes)."""
    try:
        await model.check_continuation()
    except ConfigurationError:
        return False
    return True


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
