"""Test-time compute as LangChain agent middleware: ``TestTimeComputeMiddleware``, for agents
built with ``langchain.agents.create_agent`` (LangChain 1.x: ``pip install
'ttc-agent[langchain]'``).

Each model call of the agent becomes a search: the strategy samples several replies, each one
the agent's own model call (through ``AgentTurn``: its tools, its settings, any middleware
further in), and the reply it chooses goes back to the agent. A turn that calls tools (at
least half of its first draws do, with ``tool_calls="agree"``) is chosen by agreement on the
call: the same tool with the same arguments, as most draws make it, without a judge; with
``tool_calls="pass"`` one draw is made first and returned as it is when it calls tools. A turn
that answers is searched by the strategy with its verifier, as any node's search. The search
record rides on the reply's ``response_metadata["ttc"]`` and its usage on ``usage_metadata``;
progress events go to the agent's custom stream. The agent's context sets the effort per
invocation: ``agent.invoke(..., context={"ttc": {"n": 16}})`` (any setting of the strategy,
``effort`` for ``think_harder``, or a ``budget``).

Example:
    >>> # agent = create_agent(model, tools=[search], middleware=[
    >>> #     TestTimeComputeMiddleware(verifier=RubricJudge("helpfulness", judge_model), n=8)])
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, convert_to_openai_messages
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config
from pydantic import BaseModel

from ttc_agent.agent_model import AgentTurn, ToolCalls, ToolTurn
from ttc_agent.budget import Budget
from ttc_agent.errors import ConfigurationError
from ttc_agent.protocols import AnswerKey, Equivalence, Parts, Verifier
from ttc_agent.serve_tools import call_key, choose_tool_call, content_of
from ttc_agent.strategies import StrategyNode, registry, search_result
from ttc_agent.strategies import _tasks as tasks
from ttc_agent.strategies._selection import finish
from ttc_agent.types import Completion, Message, SearchResult

try:
    from langchain.agents.middleware import AgentMiddleware, ModelResponse
except ImportError as exc:  # pragma: no cover: the extra is not installed
    raise ImportError(
        "TestTimeComputeMiddleware needs LangChain 1.x: pip install 'ttc-agent[langchain]'"
    ) from exc

T = TypeVar("T")
_TURN_MODEL: Any = None
"""The parts' model until a turn: each turn samples from its own ``AgentTurn``."""


class TestTimeComputeMiddleware(AgentMiddleware):
    """Search every model call of a ``create_agent`` agent (see the module's description).

    Args:
        strategy: a registered strategy that searches whole replies: ``best_of_n``,
            ``majority_vote``, ``refine``, ``ab_mcts``, ``think_harder``, ``adaptive`` (step
            searches are refused: an agent's model does not continue partial replies).
        verifier: judges the answers (what the strategy needs: a ``RubricJudge``...).
        n: the strategy's size (``best_of_n``'s ``n``, ``refine``'s ``width``...); by default
            the strategy's own.
        tool_calls: ``agree`` (sample the turn, choose the call most draws agree on) or
            ``pass`` (one call; a reply that calls tools goes back as it is).
        answer_key, equivalence: the strategy's, where it takes them.
        budget: the most one turn may spend (a ``Budget`` or its fields).
        **settings: any other setting of the strategy (``temperature``, ``rounds``...).

    Raises:
        ConfigurationError: a strategy it cannot run, a setting the strategy does not have, a
            part the strategy needs and was not given.
    """

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(
        self,
        strategy: str = "best_of_n",
        verifier: Verifier | None = None,
        n: int | None = None,
        *,
        tool_calls: ToolCalls = "agree",
        answer_key: AnswerKey | None = None,
        equivalence: Equivalence | None = None,
        budget: Budget | Mapping[str, Any] | None = None,
        **settings: Any,
    ) -> None:
        super().__init__()
        row = registry.strategy(strategy)
        if row.grows_steps:
            whole = [r.name for r in registry.strategies() if not r.grows_steps]
            raise ConfigurationError(
                f"{strategy} grows partial replies step by step, which an agent's model does "
                f"not continue: use one of {', '.join(whole)}"
            )
        if tool_calls not in ("agree", "pass"):
            raise ConfigurationError(f"tool_calls must be agree or pass, got {tool_calls!r}")
        values = dict(settings)
        if n is not None:
            if row.size is None:
                raise ConfigurationError(f"{strategy} has no size to set n for; give its settings")
            values[row.size] = n
        if unknown := sorted(set(values) - set(row.settings.model_fields)):
            known = sorted(row.settings.model_fields)
            raise ConfigurationError(f"{strategy} has no setting(s) {unknown}; known: {known}")
        parts = Parts(_TURN_MODEL, verifier, answer_key=answer_key, equivalence=equivalence)
        self.row, self.parts, self.tool_calls = row, parts.only(row.needs | row.takes), tool_calls
        self.settings: BaseModel = row.settings_from(self.parts, values)
        node = StrategyNode(row.name, row.search, self.settings, self.parts, budget=budget)
        self.budget = node.budget  # validated as any node's
        self._portal: _Portal | None = None

    async def awrap_model_call(
        self, request: Any, handler: Callable[[Any], Awaitable[Any]]
    ) -> ModelResponse[Any]:
        """Search this turn in the agent's own run (its tasks, stream and checkpoints)."""
        messages = _conversation(request)
        turn = AgentTurn(request, handler, _openai(messages), self.tool_calls)
        update = await self._node(turn)({"messages": messages}, _config())
        return ModelResponse(result=[_answer(update["messages"][0])])

    def wrap_model_call(self, request: Any, handler: Callable[[Any], Any]) -> ModelResponse[Any]:
        """Search this turn on the middleware's own event loop (the sync handler runs in
        worker threads, in the agent's context), as a one-node graph of its own."""
        messages = _conversation(request)
        context = contextvars.copy_context()
        turn = AgentTurn(
            request, handler, _openai(messages), self.tool_calls, sync=True, context=context
        )
        node, config = self._node(turn), _config()  # this invocation's settings, read here
        fixed = StrategyNode(
            node.strategy,
            node.search,
            node.settings_for(config),
            node.parts,
            budget=node.budget_for(config),
        )
        self._portal = self._portal or _Portal()
        final = self._portal.run(fixed.graph.ainvoke({"messages": messages}))
        return ModelResponse(result=[_answer(final["messages"][-1])])

    def _node(self, turn: AgentTurn) -> StrategyNode[Any]:
        parts = dataclasses.replace(self.parts, model=turn)
        return StrategyNode(self.row.name, self._search, self.settings, parts, budget=self.budget)

    async def _search(self, prompt: list[Message], settings: Any, parts: Parts) -> SearchResult:
        """The strategy's search, unless the turn's first draws call tools."""
        try:
            result = await self.row.search(prompt, settings, parts)
        except ToolTurn as turn:
            return _tool_choice(turn.drawn, self.row.name, settings, parts, self.tool_calls)
        if parts.verifier is None:
            return result
        return await choose_tool_call(result, prompt, parts.verifier)


def _tool_choice(
    drawn: list[Completion], strategy: str, settings: BaseModel, parts: Parts, mode: ToolCalls
) -> SearchResult:
    """A tool turn's reply: the calls most draws make (names and arguments), the first of
    them on a tie; with ``pass``, the one draw."""
    candidates = [
        c.model_copy(update={"key": call_key(c.tool_calls) if c.tool_calls else None})
        for c in tasks.candidates_from(drawn)
    ]
    record = settings.model_dump() | {"model": parts.model.name, "turn": "tool_calls"}
    if parts.verifier is not None:
        record["verifier"] = parts.verifier.name
    result = finish(strategy, candidates, "majority", record)
    selection = "passed_through" if mode == "pass" else "tool_call_agreement"
    return result.model_copy(update={"selection": selection})


def _conversation(request: Any) -> list[BaseMessage]:
    """The turn's messages, its system message first.

    Raises:
        ConfigurationError: the agent asks for structured output, which is not an answer the
            strategy can choose among (its reply is parsed by the agent, not judged).
    """
    if request.response_format is not None:
        raise ConfigurationError(
            "TestTimeComputeMiddleware searches answers and tool calls, not structured output: "
            "build the agent without response_format, or leave this middleware out"
        )
    system = [request.system_message] if request.system_message is not None else []
    return [*system, *request.messages]


def _openai(messages: list[BaseMessage]) -> list[Message]:
    return list(convert_to_openai_messages(messages))


def _answer(message: AIMessage) -> AIMessage:
    """The node's reply with its content as the model wrote it (judges read tool calls shown
    after the content)."""
    best = search_result(message).best
    if best is None or not best.tool_calls:
        return message
    return message.model_copy(update={"content": content_of(best.text, best.tool_calls)})


def _config() -> RunnableConfig:
    """The running graph's config (the agent's), or none outside one."""
    try:
        return get_config()
    except RuntimeError:
        return {}


class _Portal:
    """An event loop on a thread of its own, where sync turns run their async search: one
    loop for the middleware's life, so that models keep their clients between turns."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the loop (in a fresh context: no graph around it) and wait."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()
