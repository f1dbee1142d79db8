"""DVTS as search-and-learn defines it: each subtree follows its best child, finished or not,
and stops when that child is finished; a partial solution never beats a finished one; a resumed
DVTS asks again only what failed."""

from __future__ import annotations

import threading
import time

import pytest
from test_step_search import FinishedLow, NumberVerifier, Stepper, _log, generation

from ttc_agent.strategies.dvts import dvts
from ttc_agent.testing import Reply, fenced
from ttc_agent.verifiers.step_judge import LLMStepJudge


async def test_dvts_subtree_stops_when_its_best_child_finishes(model_for):
    # step 1: s1.1 (0.1) and s1.2, which finishes with the best score (0.2)
    server, model = model_for(Stepper(final_at={2: 5}), honour_n=False)
    result = await dvts(model, NumberVerifier(), n=2, subtrees=1, max_steps=4).ainvoke("Q")
    assert result.settings["steps"] == [1]  # it did not go on expanding s1.1
    assert len(generation(server)) == 2
    assert result.answer == "s1.2 so the answer is \\boxed{5}"


async def test_dvts_subtree_follows_its_best_child_past_finished_siblings(model_for):
    # every odd request finishes, scored below its unfinished sibling: the tree goes on
    finals = {k: k for k in range(1, 12, 2)}
    server, model = model_for(Stepper(final_at=finals), honour_n=False)
    result = await dvts(model, FinishedLow(), n=2, subtrees=1, max_steps=3).ainvoke("Q")
    assert result.settings["steps"] == [3]
    assert len(generation(server)) == 6
    assert len(result.candidates) == 3  # one finished sibling per step
    assert all(c.finish_reason == "stop" for c in result.candidates)


async def test_dvts_never_returns_a_partial_solution_over_a_finished_one(model_for):
    # the first request finishes (scored 0.1); everything else stays unfinished at 0.9
    _, model = model_for(Stepper(final_at={1: 5}), honour_n=False)
    result = await dvts(model, FinishedLow(), n=4, subtrees=2, max_steps=2).ainvoke("Q")
    assert result.answer == "s1.1 so the answer is \\boxed{5}"
    assert {c.finish_reason for c in result.candidates} == {"stop"}


async def test_dvts_resumed_after_a_failure_asks_again_only_what_failed(model_for):
    """A judge failure in one subtree's step 2 fails the node; resuming the thread replays
    everything that finished (the other subtree, each sample, each verdict given) and asks the
    judge again only about the step it failed on."""
    from langchain_core.messages import HumanMessage
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import START, MessagesState, StateGraph

    from ttc_agent import JudgeOutputError

    state = {"fail": None, "answered": []}
    lock = threading.Lock()

    def handler(request):
        candidate = fenced(request.last_user)
        if candidate is None:
            depth = (request.prefix or "").count("\n\n") + 1
            return f"s{depth}.{request.index}\n\nrest"
        with lock:
            failing = candidate.count("\n\n") == 1 and state["fail"] in (None, candidate)
            if failing:
                state["fail"] = candidate  # the first step-2 verdict fails, every attempt
            else:
                state["answered"].append(candidate)
        if failing:  # slowly: the other subtree finishes first
            time.sleep(0.2)
            return "not a digit"
        return Reply("1", alternatives={0: {"1": _log(0.7), "0": _log(0.3)}})

    server, model = model_for(handler, honour_n=False)
    graph = StateGraph(MessagesState)
    graph.add_node("answer", dvts(model, LLMStepJudge(model), n=4, subtrees=2, max_steps=2))
    graph.add_edge(START, "answer")
    app = graph.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "dvts"}}
    with pytest.raises(JudgeOutputError):
        await app.ainvoke({"messages": [HumanMessage("Q")]}, config)
    before, answered = len(server.requests), list(state["answered"])
    failed, state["fail"] = state["fail"], "nothing any more"
    await app.ainvoke(None, config)
    resumed = server.requests[before:]
    assert [fenced(r.last_user) for r in resumed] == [failed]
    assert len(generation(server)) == 2 * 2 * 2  # two trees, two steps, two samples each
    assert len(answered) == 4 + 3  # step 1 of both trees; step 2 but the failed one


async def test_dvts_subtrees_are_independent(model_for):
    server, model = model_for(Stepper(), honour_n=False)
    verifier = NumberVerifier()
    result = await dvts(model, verifier, n=4, subtrees=2, max_steps=3).ainvoke("Q")
    assert sorted(c.tree for c in result.candidates) == [0, 0, 1, 1]
    by_tree = {}
    for candidate in result.candidates:
        by_tree.setdefault(candidate.tree, set()).add(candidate.text.split("\n\n")[0])
    # within a tree all survivors share the tree's own first step; the trees differ
    assert all(len(first) == 1 for first in by_tree.values())
    assert by_tree[0] != by_tree[1]
    # each tree keeps one beam and expands it n // subtrees = 2 times per step
    assert len(generation(server)) == 2 * 2 * 3
    assert result.chosen == max(range(4), key=lambda i: (result.candidates[i].score.value, -i))


async def test_dvts_progress_events_name_the_tree(model_for):
    _, model = model_for(Stepper(), honour_n=False)
    node = dvts(model, NumberVerifier(), n=4, subtrees=2, max_steps=2)
    events = [
        e async for e in node.graph.astream({"messages": [("user", "Q")]}, stream_mode="custom")
    ]
    steps = [(e["tree"], e["step"]) for e in events if e["ttc"] == "step"]
    assert sorted(steps) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]  # 0: the start
