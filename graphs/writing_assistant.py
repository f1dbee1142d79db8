"""A writing assistant: best-of-N drafts judged by the writing_quality card, or (with
``TTC_WRITING=refine``) drafts revised with the judge's feedback. ``TTC_N`` sets n (default 4).
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, MessagesState, StateGraph

from ttc_agent import OpenAIChat, RubricJudge, best_of_n, refine
from ttc_agent.environment import choice_from_env, count_from_env


def build(model: OpenAIChat | None = None, checkpointer: Any = None) -> Any:
    """The compiled writing graph."""
    n = count_from_env("TTC_N", 4)
    strategy = choice_from_env("TTC_WRITING", "best_of_n", ["best_of_n", "refine"])
    model = model or OpenAIChat()
    judge = RubricJudge("writing_quality", model)
    if strategy == "refine":
        writer = refine(model, judge, rounds=2, width=max(1, n // 2), keep=2)
    else:
        writer = best_of_n(model, judge, n=n)
    builder = StateGraph(MessagesState)
    builder.add_node("write", writer)
    builder.add_edge(START, "write")
    builder.add_edge("write", END)
    return builder.compile(checkpointer=checkpointer)


graph = build()
