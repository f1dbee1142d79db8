"""A strategy node's reply: the chosen answer as an ``AIMessage`` that carries the whole search
record, and reading that record back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.tool import invalid_tool_call, tool_call

from ttc_agent.errors import ConfigurationError
from ttc_agent.types import SearchResult, ToolCall

METADATA_KEY = "ttc"
"""Where the reply keeps the search record (``response_metadata``) and where a config keeps the
invocation's overrides (``configurable``)."""


def reply(result: SearchResult) -> AIMessage:
    """The node's reply: the chosen answer and its tool calls, the record in its metadata and
    the search's total tokens as its usage (so tracers count the whole cost)."""
    total = result.usage.total
    return AIMessage(
        content=result.answer,
        response_metadata={METADATA_KEY: result.model_dump(mode="json")},
        usage_metadata={
            "input_tokens": total.prompt_tokens,
            "output_tokens": total.completion_tokens,
            "total_tokens": total.total_tokens,
        },
        **tool_calls(result.best.tool_calls if result.best else []),
    )


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
