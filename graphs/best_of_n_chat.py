"""A chat assistant that answers every turn with best-of-N and the helpfulness judge.

Serve it with ``langgraph dev`` (see langgraph.json) or import ``graph``. The model comes from
``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` / ``TTC_MODEL``, else the embedded local model. Set
``TTC_N`` for the number of candidates (default 4), or override per run with
``{"configurable": {"ttc": {"n": 8}}}``.
"""

from __future__ import annotations

import os

from langgraph.graph import END, START, MessagesState, StateGraph

from ttc_agent import OpenAIChat, RubricJudge, best_of_n

model = OpenAIChat()
builder = StateGraph(MessagesState)
builder.add_node(
    "answer", best_of_n(model, RubricJudge("helpfulness", model), n=int(os.environ.get("TTC_N", 4)))
)
builder.add_edge(START, "answer")
builder.add_edge("answer", END)
graph = builder.compile()
