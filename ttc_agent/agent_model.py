"""An agent's model call, as a ``ChatModel`` a strategy can sample from.

Inside LangChain's ``create_agent``, a middleware's ``wrap_model_call`` gets the request the
agent is about to send (its model, messages, tools, settings) and a handler that sends it
(through any middleware further in). ``AgentTurn`` samples by calling that handler once per
sample, with the strategy's temperature and token limit as model settings, so every candidate
is what the agent itself would have produced, tools and all. A prompt other than the turn's
own (a revision prompt) replaces the request's messages. Every call is metered like
``LangChainChat``'s: the prompt's bound and ``max_tokens`` reserved, the reply's usage settled.

A reply that calls tools is shown to judges with its calls after its content (as ``ttc serve``
shows them: ``serve_tools.shown``). The turn's first draws decide what kind of turn it is:
with ``tool_calls="agree"``, when at least half of them call tools, ``ToolTurn`` stops the
strategy before anything is judged, carrying the draws; with ``"pass"``, one draw is made
first, and ``ToolTurn`` carries it when it calls tools.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Sequence
from typing import Any, Literal

from langchain_core.messages import SystemMessage, convert_to_messages
from langchain_core.utils.function_calling import convert_to_openai_tool

from ttc_agent.budget import current_meter, prompt_token_bound, within_budget
from ttc_agent.errors import ConfigurationError
from ttc_agent.models.langchain_chat import billed, completion_of
from ttc_agent.models.metering import metered_call, request_cost
from ttc_agent.protocols import OnCompletion
from ttc_agent.serve_tools import shown
from ttc_agent.types import Completion, Message

ToolCalls = Literal["agree", "pass"]
Handler = Callable[[Any], Any]
"""``wrap_model_call``'s handler (returns a ``ModelResponse``), or ``awrap_model_call``'s
(returns an awaitable of one)."""


class ToolTurn(Exception):
    """The turn calls tools: the strategy stops before judging; ``drawn`` are its draws."""

    def __init__(self, drawn: list[Completion]) -> None:
        super().__init__("the turn calls tools")
        self.drawn = drawn


class AgentTurn:
    """Samples one agent turn through the middleware handler (see the module's description).

    Args:
        request: the ``ModelRequest`` of the turn.
        handler: the handler that sends it.
        prompt: the turn's conversation as OpenAI messages (the strategy's prompt).
        tool_calls: how the first draws decide a tool turn: ``agree`` or ``pass``.
        sync: the handler is the sync one (called in a worker thread, in ``context``).
        context: the agent's context, which sync handler calls run in.
    """

    def __init__(
        self,
        request: Any,
        handler: Handler,
        prompt: list[Message],
        tool_calls: ToolCalls,
        *,
        sync: bool = False,
        context: contextvars.Context | None = None,
    ) -> None:
        self.request, self.handler, self.prompt = request, handler, prompt
        self.tool_calls, self.sync, self.context = tool_calls, sync, context
        model = request.model
        self.name = str(getattr(model, "model_name", None) or type(model).__name__)
        self._decided = False
        tools = [t if isinstance(t, dict) else convert_to_openai_tool(t) for t in request.tools]
        self._tools = tools or None  # for the prompt's bound

    async def check_continuation(self) -> None:
        """Refuse: an agent's model answers whole turns."""
        raise ConfigurationError(
            "an agent's model answers whole turns, it does not continue partial replies: a "
            "step search cannot run in TestTimeComputeMiddleware"
        )

    async def aclose(self) -> None:
        """Nothing to close: the agent owns its model."""

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
        """``n`` turns, each one handler call; the turn's first draws may end the search (see
        ``ToolTurn``)."""
        if prefix is not None or json_schema is not None:
            await self.check_continuation()
        options: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
        options |= {"stop": list(stop) if stop else None}
        if top_logprobs is not None:
            options |= {"logprobs": True, "top_logprobs": top_logprobs}
        settings = {k: v for k, v in options.items() if v is not None}
        deciding = not self._decided and list(messages) == self.prompt
        self._decided = self._decided or deciding
        if not deciding:
            return await self._draw(messages, n, settings, on_completion)
        first = 1 if self.tool_calls == "pass" else n
        drawn = await self._draw(messages, first, settings, on_completion)
        calling = sum(bool(c.tool_calls) for c in drawn)
        if calling and (self.tool_calls == "pass" or 2 * calling >= len(drawn)):
            raise ToolTurn(drawn)
        if first < n:
            drawn += await self._draw(messages, n - first, settings, on_completion)
        return drawn

    async def _draw(
        self,
        messages: Sequence[Message],
        n: int,
        settings: dict[str, Any],
        on_completion: OnCompletion | None,
    ) -> list[Completion]:
        bound = prompt_token_bound(list(messages), tools=self._tools)

        async def one() -> Completion:
            cost, most = await request_cost(self.name, bound, settings.get("max_tokens"), 1, billed)
            capped = {"max_tokens": most} if most is not None else {}
            request = self._request(messages, settings | capped)
            meter = current_meter()
            if meter is None or cost is None:
                reply = await self._send(request)
            else:
                reply = await metered_call(meter, cost, lambda: self._send(request))
            completion = completion_of(reply)
            text = shown(completion.text, completion.tool_calls)  # what a judge reads
            completion = completion.model_copy(update={"text": text})
            if on_completion is not None:
                on_completion(completion)
            return completion

        results = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
        return within_budget(results)

    def _request(self, messages: Sequence[Message], settings: dict[str, Any]) -> Any:
        """The turn's request with these settings, and these messages where they are not the
        turn's own."""
        changed: dict[str, Any] = {"model_settings": {**self.request.model_settings, **settings}}
        if list(messages) != self.prompt:
            converted = convert_to_messages(list(messages))
            system = [m for m in converted if isinstance(m, SystemMessage)]
            changed["system_message"] = system[0] if system else None
            changed["messages"] = [m for m in converted if not isinstance(m, SystemMessage)]
        return self.request.override(**changed)

    async def _send(self, request: Any) -> Any:
        """One handler call; its reply message."""
        if self.sync:
            context = self.context or contextvars.copy_context()
            response = await asyncio.to_thread(context.copy().run, self.handler, request)
        else:
            response = await self.handler(request)
        return _message(response)


def _message(response: Any) -> Any:
    """The AI message of a handler's response (a ``ModelResponse``, or one with a command)."""
    response = getattr(response, "model_response", response)
    result = getattr(response, "result", None)
    return result[0] if result else response
