"""What every strategy node shares: the LangGraph node contract.

A strategy node is a callable you pass to ``StateGraph.add_node``. It reads the conversation
from ``messages`` (so it works with ``MessagesState``), runs its search and appends exactly one
``AIMessage``: the selected answer, carrying the whole search record in
``response_metadata["ttc"]`` (read it back with ``search_result``). With ``result_key`` set, the
``SearchResult`` is also written to that state key.

Settings are fixed at construction; any of them can be overridden for one invocation through
``config={"configurable": {"ttc": {"n": 4}}}`` (or a runtime context with a ``ttc`` mapping),
without rebuilding the graph. Outside a graph, ``await node.ainvoke("prompt")`` runs the same
node in a one-node graph and returns the ``SearchResult``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, TypedDict

from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    convert_to_messages,
    convert_to_openai_messages,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call
from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.runtime import get_runtime
from pydantic import BaseModel, ValidationError

from ttc_agent.budget import Budget, metered
from ttc_agent.errors import ConfigurationError
from ttc_agent.strategies import _replay as replay
from ttc_agent.strategies._tasks import counting_failures
from ttc_agent.types import Message, SearchResult, ToolCall

METADATA_KEY = "ttc"


class StrategyNode(ABC):
    """Base class of the strategy nodes (``best_of_n`` and the others)."""

    strategy: ClassVar[str]
    settings_type: ClassVar[type[BaseModel]]

    def __init__(
        self,
        settings: BaseModel,
        *,
        budget: Budget | Mapping[str, Any] | None = None,
        messages_key: str = "messages",
        result_key: str | None = None,
    ) -> None:
        self.settings = settings
        self.budget = _as_budget(budget, self.strategy)
        self.messages_key = messages_key
        self.result_key = result_key
        self._graph: Any = None

    @classmethod
    def make_settings(cls, **values: Any) -> Any:
        """Validate construction settings, raising ``ConfigurationError`` with the problem."""
        try:
            return cls.settings_type(**values)
        except ValidationError as exc:
            raise ConfigurationError(f"{cls.strategy}: {_problems(exc)}") from None

    @abstractmethod
    async def search(self, prompt: list[Message], settings: Any) -> SearchResult:
        """Run the search for one prompt (inside a graph run: steps are LangGraph tasks)."""

    async def __call__(self, state: Any, config: RunnableConfig) -> dict[str, Any]:
        messages = state.get(self.messages_key) if isinstance(state, Mapping) else None
        if not messages:
            raise ConfigurationError(
                f"{self.strategy}: the state has no messages under {self.messages_key!r}"
            )
        prompt = convert_to_openai_messages(list(messages))
        settings, budget = self.settings_for(config), self.budget_for(config)
        with metered(budget) as meter, counting_failures() as failures, replay.new_run():
            result = await self.search(prompt, settings)
        if meter is not None and meter.exhausted:
            result = result.model_copy(update={"budget_limited": True})
        if failures:
            result = result.model_copy(update={"failed": result.failed + sum(failures)})
        total = result.usage.total
        reply = AIMessage(
            content=result.answer,
            response_metadata={METADATA_KEY: result.model_dump(mode="json")},
            usage_metadata={
                "input_tokens": total.prompt_tokens,
                "output_tokens": total.completion_tokens,
                "total_tokens": total.total_tokens,
            },
            **tool_calls(result.best.tool_calls if result.best else []),
        )
        update: dict[str, Any] = {self.messages_key: [reply]}
        if self.result_key is not None:
            update[self.result_key] = result
        return update

    def settings_for(self, config: RunnableConfig | None) -> Any:
        """The construction settings with this invocation's overrides applied and validated."""
        overrides = {k: v for k, v in _overrides(config).items() if k != "budget"}
        if not overrides:
            return self.settings
        known = set(self.settings_type.model_fields)
        if unknown := sorted(set(overrides) - known):
            raise ConfigurationError(
                f"{self.strategy}: unknown override(s) {unknown}; known: {sorted(known)}"
            )
        try:
            return self.settings_type.model_validate(self.settings.model_dump() | overrides)
        except ValidationError as exc:
            raise ConfigurationError(f"{self.strategy}: {_problems(exc)}") from None

    def budget_for(self, config: RunnableConfig | None) -> Budget | None:
        """This invocation's budget: an override (``{"ttc": {"budget": {...}}}``) or the node's."""
        override = _overrides(config).get("budget")
        if override is None:
            return self.budget
        return _as_budget(override, self.strategy)

    async def ainvoke(
        self,
        prompt: str | Sequence[BaseMessage | Message],
        config: RunnableConfig | None = None,
        **overrides: Any,
    ) -> SearchResult:
        """Run the node on a prompt or message list, outside any graph of yours.

        Example:
            >>> # result = await best_of_n(model, judge, n=4).ainvoke("Write a haiku", n=2)
            >>> # print(result.answer)
        """
        messages = (
            [HumanMessage(prompt)] if isinstance(prompt, str) else convert_to_messages(prompt)
        )
        run: RunnableConfig = {**(config or {})}
        if overrides:
            configurable = dict(run.get("configurable") or {})
            configurable[METADATA_KEY] = {**configurable.get(METADATA_KEY, {}), **overrides}
            run["configurable"] = configurable
        final = await self.graph.ainvoke({self.messages_key: messages}, run)
        return search_result(final[self.messages_key][-1])

    @property
    def graph(self) -> Any:
        """This node alone in a compiled one-node graph (what ``ainvoke`` runs); stream it with
        ``stream_mode="custom"`` to watch progress.

        Example:
            >>> # async for event in node.graph.astream({"messages": [("user", "Hi")]},
            >>> #                                      stream_mode="custom"): print(event)
        """
        if self._graph is None:
            state = TypedDict(  # a state whose key is known only now: no static type
                "StandaloneState",
                {self.messages_key: Annotated[list[AnyMessage], add_messages]},  # type: ignore[misc]
            )
            graph = StateGraph(state)
            graph.add_node(self.strategy, self)
            graph.add_edge(START, self.strategy)
            self._graph = graph.compile()
        return self._graph


def tool_calls(calls: Sequence[ToolCall]) -> dict[str, list[Any]]:
    """The chosen candidate's tool calls as an ``AIMessage``'s: those whose arguments parse as
    ``tool_calls``, the others as ``invalid_tool_calls`` (with the arguments as written).

    Example:
        >>> tool_calls([ToolCall(id="c1", name="add", arguments='{"a": 1}')])["tool_calls"]
        [{'name': 'add', 'args': {'a': 1}, 'id': 'c1', 'type': 'tool_call'}]
    """
    valid: list[Any] = []
    invalid: list[Any] = []
    for call in calls:
        try:
            valid.append(tool_call(name=call.name, args=call.args, id=call.id))
        except ValueError as exc:
            invalid.append(
                invalid_tool_call(name=call.name, args=call.arguments, id=call.id, error=str(exc))
            )
    return {"tool_calls": valid, "invalid_tool_calls": invalid}


def search_result(source: BaseMessage | Mapping[str, Any] | None) -> SearchResult:
    """The ``SearchResult`` recorded on a strategy's reply (a message, or a state whose last
    message is one).

    Example:
        >>> # state = await graph.ainvoke({"messages": [("user", "Hi")]})
        >>> # search_result(state).candidates
    """
    if source is None:
        raise ConfigurationError("no state to read a search result from: the graph gave none")
    message = source
    if isinstance(source, Mapping):
        message = list(source["messages"])[-1]
    record = getattr(message, "response_metadata", {}).get(METADATA_KEY)
    if record is None:
        raise ConfigurationError("this message was not written by a ttc-agent strategy node")
    return SearchResult.model_validate(record)


def _overrides(config: RunnableConfig | None) -> Mapping[str, Any]:
    configurable = (config or {}).get("configurable") or {}
    if METADATA_KEY in configurable:
        return configurable[METADATA_KEY] or {}
    try:
        context = get_runtime().context
    except RuntimeError:
        return {}
    if isinstance(context, Mapping):
        return context.get(METADATA_KEY) or {}
    return getattr(context, METADATA_KEY, None) or {}


def _as_budget(value: Budget | Mapping[str, Any] | None, strategy: str) -> Budget | None:
    """A budget from a ``Budget`` or its fields as a mapping; a clear error otherwise."""
    if value is None or isinstance(value, Budget):
        return value
    try:
        return Budget.model_validate(value)
    except ValidationError as exc:
        raise ConfigurationError(f"{strategy}: budget: {_problems(exc)}") from None


def _problems(exc: ValidationError) -> str:
    """Pydantic's errors as one line: ``field: message`` (no field for whole-model checks)."""
    problems = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        where = ".".join(map(str, error["loc"]))
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)
