"""An adapter so that any langchain-core ``BaseChatModel`` can be the model."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, convert_to_messages

from ttc_agent.errors import ConfigurationError
from ttc_agent.models.protocol import OnCompletion
from ttc_agent.types import Completion, Message, TokenLogprob, Usage


class LangChainChat:
    """Samples from a langchain-core chat model with concurrent ``ainvoke`` calls.

    ``temperature`` and ``max_tokens`` are bound as call arguments, which most chat model
    integrations (ChatOpenAI, ChatAnthropic, ChatOllama ...) accept. Retries are the wrapped
    model's own (for example ``ChatOpenAI(max_retries=...)``). Logprobs are read from
    ``response_metadata["logprobs"]`` where the integration returns them.

    Example:
        >>> from langchain_core.language_models import GenericFakeChatModel
        >>> model = LangChainChat(GenericFakeChatModel(messages=iter(["hi"])), name="fake")
        >>> model.name
        'fake'
    """

    def __init__(
        self, chat_model: BaseChatModel, *, name: str | None = None, max_concurrency: int = 8
    ) -> None:
        if max_concurrency < 1:
            raise ConfigurationError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.chat_model = chat_model
        self.name = name or type(chat_model).__name__
        self.max_concurrency = max_concurrency
        self._slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    def __repr__(self) -> str:
        return f"LangChainChat({self.name!r})"

    async def aclose(self) -> None:
        """Nothing to close: the wrapped model owns its connections."""

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
        on_completion: OnCompletion | None = None,
    ) -> list[Completion]:
        """Sample ``n`` completions with ``n`` concurrent calls (at most ``max_concurrency`` in
        flight across all calls on this model)."""
        if n < 1:
            raise ConfigurationError(f"n must be at least 1, got {n}")
        bound: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
        if top_logprobs is not None:
            bound |= {"logprobs": True, "top_logprobs": top_logprobs}
        if json_schema is not None:
            bound["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": json_schema, "strict": True},
            }
        bound = {key: value for key, value in bound.items() if value is not None}
        runnable = self.chat_model.bind(**bound) if bound else self.chat_model
        prompt = convert_to_messages(list(messages))
        loop = asyncio.get_running_loop()
        slots = self._slots.setdefault(loop, asyncio.Semaphore(self.max_concurrency))

        async def one() -> Completion:
            async with slots:
                reply = await runnable.ainvoke(prompt, stop=list(stop) if stop else None)
            completion = _completion(reply)
            if on_completion is not None:
                on_completion(completion)
            return completion

        return list(await asyncio.gather(*(one() for _ in range(n))))


def _completion(reply: BaseMessage) -> Completion:
    meta = reply.response_metadata or {}
    usage = getattr(reply, "usage_metadata", None) or {}
    logprobs = None
    raw = meta.get("logprobs")
    if isinstance(raw, dict):
        raw = raw.get("content")
    if isinstance(raw, list):
        logprobs = [
            TokenLogprob(
                token=item["token"],
                logprob=item["logprob"],
                top={alt["token"]: alt["logprob"] for alt in item.get("top_logprobs") or []},
            )
            for item in raw
        ]
    return Completion(
        text=str(reply.text),
        finish_reason=meta.get("finish_reason"),
        logprobs=logprobs,
        usage=Usage(
            prompt_tokens=usage.get("input_tokens", 0),
            completion_tokens=usage.get("output_tokens", 0),
            calls=1,
        ),
    )
