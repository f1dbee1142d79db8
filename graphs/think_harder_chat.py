"""A chat assistant with a "think harder" toggle: each turn's effort is none, low, medium or high.

The effort comes from the state (send ``{"messages": [...], "effort": "high"}``) or the config
(``{"configurable": {"ttc": {"effort": "high"}}}``); it defaults to ``$TTC_EFFORT`` or ``low``.
``langgraph dev`` serves ``graph`` with the server's own persistence; in your own program,
``async with sqlite_chat("chat.sqlite") as app:`` keeps conversations in SQLite.
"""

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from langchain_core.messages import AnyMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from ttc_agent import OpenAIChat, think_harder, valid_effort
from ttc_agent.environment import choice_from_env
from ttc_agent.strategies.think_harder import EFFORTS


class ChatState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    effort: Annotated[str, valid_effort]  # a wrong level is refused before the thread keeps it


def build(model: OpenAIChat | None = None, checkpointer: Any = None) -> Any:
    """The compiled chat graph (model from the environment, else the embedded one)."""
    effort = choice_from_env("TTC_EFFORT", "low", EFFORTS)
    model = model or OpenAIChat()
    builder = StateGraph(ChatState)
    builder.add_node("assistant", think_harder(model, effort=effort))
    builder.add_edge(START, "assistant")
    builder.add_edge("assistant", END)
    return builder.compile(checkpointer=checkpointer)


@contextlib.asynccontextmanager
async def sqlite_chat(
    path: str = "chat.sqlite", model: OpenAIChat | None = None
) -> AsyncIterator[Any]:
    """The chat graph with its conversations kept in a SQLite file."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with AsyncSqliteSaver.from_conn_string(path) as saver:
        yield build(model, checkpointer=saver)


graph = build()
