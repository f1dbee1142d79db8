"""An adapter so that any langchain-core chat model can be the model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.runnables import Runnable

from ttc_agent.budget import current_meter, prompt_token_bound, within_budget
from ttc_agent.errors import ConfigurationError
from ttc_agent.models.endpoint import concurrency_limit
from ttc_agent.models.metering import metered_call, request_cost
from ttc_agent.protocols import OnCompletion
from ttc_agent.types import Completion, Message, TokenLogprob, ToolCall, Usage

LangChainContinuation = Literal["prefill"]


class LangChainChat:
    """Samples from a langchain-core chat model with concurrent ``ainvoke`` calls.

    ``temperature`` and ``max_tokens`` are bound as call arguments, which most chat model
    integrations (ChatOpenAI, ChatAnthropic, ChatOllama ...) accept. Retries are the wrapped
    model's own (for example ``ChatOpenAI(max_retries=...)``). Logprobs are read from
    ``response_metadata["logprobs"]`` where the integration returns them; tool calls (of a model
    bound with ``bind_tools``) from the reply's ``tool_calls``.

    Under a budget every call is metered like ``OpenAIChat``'s: it reserves its worst case (its
    prompt's bound and ``max_tokens``, which the budget may shorten: the model must honour it)
    and settles to the reply's ``usage_metadata``, or to the reservation when it has none.

    ``continuation`` says whether the model can continue a partial reply (step-level search):
    ``None`` (the default) refuses, as most chat APIs answer a partial reply afresh;
    ``"prefill"`` sends it as a final ``AIMessage``, for models that continue one (Anthropic's,
    llama.cpp's llama-server, Ollama).

    Example:
        >>> from langchain_core.language_models import GenericFakeChatModel
        >>> model = LangChainChat(GenericFakeChatModel(messages=iter(["hi"])), name="fake")
        >>> model.name
        'fake'
    """

    def __init__(
        self,
        chat_model: Runnable[Any, Any],
        *,
        name: str | None = None,
        max_concurrency: int | None = None,
        continuation: LangChainContinuation | None = None,
    ) -> None:
        if continuation not in (None, "prefill"):
            raise ConfigurationError(f"continuation must be None or prefill, got {continuation!r}")
        self.chat_model = chat_model
        self.name = name or type(getattr(chat_model, "bound", chat_model)).__name__
        self.max_concurrency = concurrency_limit(max_concurrency)
        self.continuation = continuation
        self._slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    def __repr__(self) -> str:
        return f"LangChainChat({self.name!r})"

    async def aclose(self) -> None:
        """Nothing to close: the wrapped model owns its connections."""

    async def check_continuation(self) -> None:
        """Raise ``ConfigurationError`` unless told that the model continues a partial reply."""
        if self.continuation is None:
            raise ConfigurationError(
                f"step search needs to continue partial replies, but {self!r} was not told "
                "its model can: pass LangChainChat(..., continuation='prefill') for a model that "
                "continues a final AIMessage (Anthropic's, llama-server, Ollama), or use "
                "OpenAIChat on a vLLM or llama.cpp server"
            )

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
    ) -> list[Completion]:
        """Sample ``n`` completions with ``n`` concurrent calls (at most ``max_concurrency`` in
        flight across all calls on this model; unset, up to 256: a round goes out at once)."""
        if n < 1:
            raise ConfigurationError(f"n must be at least 1, got {n}")
        if prefix is not None:
            await self.check_continuation()
            messages = [*messages, {"role": "assistant", "content": prefix}]
        bound: dict[str, Any] = {"temperature": temperature}
        if top_logprobs is not None:
            bound |= {"logprobs": True, "top_logprobs": top_logprobs}
        if json_schema is not None:
            bound["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": json_schema, "strict": True},
            }
        prompt_bound = prompt_token_bound(list(messages), tools=_tools(self.chat_model))
        prompt = convert_to_messages(list(messages))
        loop = asyncio.get_running_loop()
        slots = self._slots.setdefault(loop, asyncio.Semaphore(self.max_concurrency))

        async def one() -> Completion:
            cost, most = await request_cost(self.name, prompt_bound, max_tokens, 1, billed)
            options = {k: v for k, v in (bound | {"max_tokens": most}).items() if v is not None}
            runnable = self.chat_model.bind(**options) if options else self.chat_model
            meter = current_meter()

            async def invoke() -> BaseMessage:
                return await runnable.ainvoke(prompt, stop=list(stop) if stop else None)

            async with slots:
                if meter is None or cost is None:
                    reply = await invoke()
                else:
                    reply = await metered_call(meter, cost, invoke)
            completion = completion_of(reply)
            if on_completion is not None:
                on_completion(completion)
            return completion

        results = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
        return within_budget(results)  # a budget stop keeps what arrived (in ``partial``)


def _tools(runnable: Runnable[Any, Any]) -> list[Any] | None:
    """The tools a chat model was bound with (``bind_tools``), for the prompt's bound."""
    kwargs = getattr(runnable, "kwargs", None)
    return kwargs.get("tools") if isinstance(kwargs, dict) else None


def billed(reply: Any) -> Usage | None:
    """What a chat model's reply says it billed (None: it does not say)."""
    usage = getattr(reply, "usage_metadata", None)
    if not usage:
        return None
    return Usage(
        prompt_tokens=usage.get("input_tokens", 0),
        completion_tokens=usage.get("output_tokens", 0),
        calls=1,
    )


def completion_of(reply: BaseMessage) -> Completion:
    """A chat model's reply as a completion: its text, logprobs, tool calls and usage."""
    meta = reply.response_metadata or {}
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
        usage=billed(reply) or Usage(calls=1),
        tool_calls=_tool_calls(reply),
    )


def _tool_calls(reply: BaseMessage) -> list[ToolCall]:
    """The reply's tool calls; those whose arguments did not parse keep them as written."""
    calls = [
        ToolCall(id=call.get("id") or f"call_{i}", name=call["name"], arguments=json.dumps(args))
        for i, call in enumerate(getattr(reply, "tool_calls", None) or [])
        if isinstance(args := call.get("args"), dict)
    ]
    invalid = getattr(reply, "invalid_tool_calls", None) or []
    for i, call in enumerate(invalid):
        name, arguments = call.get("name") or "", call.get("args") or ""
        calls.append(ToolCall(id=call.get("id") or f"invalid_{i}", name=name, arguments=arguments))
    return calls
