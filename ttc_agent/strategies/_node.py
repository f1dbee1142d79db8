"""The one node every strategy runs in: the LangGraph node contract.

A strategy is a settings model (frozen pydantic: the values an invocation may override) and a
search function (``ttc_agent.protocols.SearchFunction``). ``StrategyNode`` does the rest, the same
for all: it is a callable you pass to ``StateGraph.add_node``; it reads the conversation from
``messages`` (so it works with ``MessagesState``), applies the invocation's overrides and budget,
runs the search and appends exactly one ``AIMessage``: the selected answer (with its tool calls),
carrying the whole search record in ``response_metadata["ttc"]`` (read it back with
``search_result``). With ``result_key`` set, the ``SearchResult`` is also written to that key.

Settings are fixed at construction; any of them can be overridden for one invocation through
``config={"configurable": {"ttc": {"n": 4}}}`` (or a runtime context with a ``ttc`` mapping),
without rebuilding the graph. Outside a graph, ``await node.ainvoke("prompt")`` runs the same
node in a one-node graph and returns the ``SearchResult``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Generic, TypedDict, TypeVar

from langchain_core.messages import (
    AnyMessage,
    BaseMessage,
    HumanMessage,
    convert_to_messages,
    convert_to_openai_messages,
)
from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.runtime import get_runtime
from pydantic import BaseModel, ValidationError

from ttc_agent.budget import Budget, metered
from ttc_agent.errors import ConfigurationError
from ttc_agent.protocols import Parts, SearchFunction
from ttc_agent.strategies import _replay as replay
from ttc_agent.strategies._reply import METADATA_KEY, reply, search_result
from ttc_agent.strategies._tasks import counting_failures
from ttc_agent.types import Message, SearchResult

S = TypeVar("S", bound=BaseModel)


class StateKeys(TypedDict, total=False):
    """Where a node reads and writes the graph's state.

    Attributes:
        messages_key: the state key holding the conversation (default ``"messages"``).
        result_key: also write the ``SearchResult`` to this state key (default: only on the
            reply's ``response_metadata["ttc"]``).
    """

    messages_key: str
    result_key: str | None


class NodeOptions(StateKeys, total=False):
    """The keywords every strategy factory takes (``**options: Unpack[NodeOptions]``).

    Attributes:
        budget: the ceiling on what one invocation may spend (a ``Budget``, or its fields as a
            mapping); override it per invocation with ``{"ttc": {"budget": {...}}}``.
        messages_key: see ``StateKeys``.
        result_key: see ``StateKeys``.
    """

    budget: Budget | Mapping[str, Any] | None


class StrategyNode(Generic[S]):
    """A strategy as a LangGraph node: its name, its search function, its settings and parts.

    Every factory (``best_of_n`` and the others) builds one; ``registry.strategy(name).node``
    builds one from a registered strategy's name.

    Args:
        strategy: the strategy's name (the node's name in ``graph``, and in error messages).
        search: the strategy's search function.
        settings: its validated settings (``make_settings``).
        parts: what the search draws on besides its settings.
        budget, messages_key, result_key: see ``NodeOptions``.
        state_settings: settings read from the graph state when its key holds a value:
            ``{state key: setting}`` (``think_harder`` reads its effort so); an override in the
            invocation's config wins.
    """

    def __init__(
        self,
        strategy: str,
        search: SearchFunction[S],
        settings: S,
        parts: Parts,
        *,
        budget: Budget | Mapping[str, Any] | None = None,
        messages_key: str = "messages",
        result_key: str | None = None,
        state_settings: Mapping[str, str] | None = None,
    ) -> None:
        self.strategy, self.search, self.settings, self.parts = strategy, search, settings, parts
        self.budget = _as_budget(budget, strategy)
        self.messages_key = messages_key
        self.result_key = result_key
        self.state_settings = dict(state_settings or {})
        self._graph: Any = None

    async def __call__(self, state: Any, config: RunnableConfig) -> dict[str, Any]:
        messages = state.get(self.messages_key) if isinstance(state, Mapping) else None
        if not messages:
            raise ConfigurationError(
                f"{self.strategy}: the state has no messages under {self.messages_key!r}"
            )
        prompt = convert_to_openai_messages(list(messages))
        config = self._with_state_settings(state, config)
        settings, budget = self.settings_for(config), self.budget_for(config)
        with metered(budget) as meter, counting_failures() as failures, replay.new_run():
            result = await self.search(prompt, settings, self.parts)
        if meter is not None and meter.exhausted:
            result = result.model_copy(update={"budget_limited": True})
        if failures:
            result = result.model_copy(update={"failed": result.failed + sum(failures)})
        update: dict[str, Any] = {self.messages_key: [reply(result)]}
        if self.result_key is not None:
            update[self.result_key] = result
        return update

    def settings_for(self, config: RunnableConfig | None) -> S:
        """The construction settings with this invocation's overrides applied and validated."""
        overrides = {k: v for k, v in _overrides(config).items() if k != "budget"}
        if not overrides:
            return self.settings
        known = set(type(self.settings).model_fields)
        if unknown := sorted(set(overrides) - known):
            raise ConfigurationError(
                f"{self.strategy}: unknown override(s) {unknown}; known: {sorted(known)}"
            )
        return make_settings(
            self.strategy, type(self.settings), self.settings.model_dump() | overrides
        )

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

    def _with_state_settings(self, state: Any, config: RunnableConfig) -> RunnableConfig:
        """``config`` with the settings the state holds added to its overrides (the state's
        value, unless the invocation's config names that setting itself)."""
        given = ((config or {}).get("configurable") or {}).get(METADATA_KEY) or {}
        from_state = {
            setting: state[key]
            for key, setting in self.state_settings.items()
            if isinstance(state, Mapping) and state.get(key) and setting not in given
        }
        if not from_state:
            return config
        configurable = dict(config.get("configurable") or {})
        configurable[METADATA_KEY] = {**given, **from_state}
        return {**config, "configurable": configurable}


def make_settings(strategy: str, settings_type: type[S], values: Mapping[str, Any]) -> S:
    """Validate a strategy's settings, raising ``ConfigurationError`` that names the problem.

    Example:
        >>> from ttc_agent.strategies.best_of_n import BestOfNSettings
        >>> make_settings("best_of_n", BestOfNSettings, {"n": 2}).n
        2
    """
    try:
        return settings_type.model_validate(dict(values))
    except ValidationError as exc:
        raise ConfigurationError(f"{strategy}: {_problems(exc)}") from None


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
