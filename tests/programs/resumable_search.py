"""A search in its own process, checkpointed to SQLite or PostgreSQL, for the kill-and-resume
test. STORE is a SQLite file or a postgresql:// URL; CALLS, when given, is a budget of calls.
Prints one JSON line: the answer, whether the budget limited it, and its candidates.

python resumable_search.py STORE BASE_URL best_of_n|beam_search start|resume [CALLS]
"""

import asyncio
import json
import sys
from contextlib import asynccontextmanager

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import START, MessagesState, StateGraph

from ttc_agent import Budget, LLMStepJudge, OpenAIChat, RubricJudge, beam_search, best_of_n
from ttc_agent.strategies import search_result


@asynccontextmanager
async def checkpointer(store: str):
    if not store.startswith("postgresql://"):
        async with AsyncSqliteSaver.from_conn_string(store) as saver:
            yield saver
        return
    async with AsyncPostgresSaver.from_conn_string(store) as saver:
        await saver.setup()  # creates the tables on first use
        yield saver


async def main(store: str, base_url: str, strategy: str, mode: str, calls: str = "") -> None:
    budget = Budget(calls=int(calls)) if calls else None
    async with (
        checkpointer(store) as saver,
        OpenAIChat("m", base_url=base_url, api_key="k", continuation="prefill") as model,
    ):
        if strategy == "best_of_n":
            judge = RubricJudge("helpfulness", model, mode="structured")
            node = best_of_n(model, judge, n=4, budget=budget)
        else:
            node = beam_search(model, LLMStepJudge(model), n=4, keep=2, max_steps=3, budget=budget)
        graph = StateGraph(MessagesState)
        graph.add_node("answer", node)
        graph.add_edge(START, "answer")
        app = graph.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "resumable"}}
        start = {"messages": [("user", "Solve it.")]}
        state = await app.ainvoke(start if mode == "start" else None, config)
        result = search_result(state)
        record = {"answer": result.answer, "budget_limited": result.budget_limited}
        print(json.dumps(record | {"candidates": len(result.candidates)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
