"""The node contract, for every strategy in the registry: a new strategy inherits these tests by
its one registry row.

Each strategy runs as a LangGraph node on the loopback server, with local verifiers (an outcome
verifier, a step verifier, an answer key and an equivalence), and must: append exactly one
``AIMessage`` carrying its search record; take an override of its settings for one invocation
and refuse a knob it does not have; stream progress events; keep to a budget; and, resumed after
a crash in its verifier, ask the model for nothing it asked for before the crash.
"""

from __future__ import annotations

import re

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph

from ttc_agent import Budget, ConfigurationError, SearchError, search_result
from ttc_agent.protocols import Parts
from ttc_agent.strategies import registry
from ttc_agent.types import Score, StepScores, Usage

ROWS = registry.strategies()
ANSWERS = [r"so the answer is \boxed{4}", r"so the answer is \boxed{5}", r"it is \boxed{4}"]


def answers(request):
    """Final answers, by request and choice, from a short list (a step search ends at once)."""
    return ANSWERS[(request.index + request.choice) % len(ANSWERS)]


def last_number(text: str) -> str | None:
    numbers = re.findall(r"\d+", text)
    return numbers[-1] if numbers else None


class Verifiers:
    """An outcome verifier, a step verifier and an equivalence, reading answers by their last
    number (4 is right), which can be told to crash once, at the first of them called."""

    name = "number"

    def __init__(self) -> None:
        self.fail_once, self.calls = False, 0

    def _check(self) -> None:
        self.calls += 1
        if self.fail_once:
            self.fail_once = False
            raise RuntimeError("the verifier crashed")

    async def score(self, prompt, candidates, *, on_score=None):
        self._check()
        scores = []
        for index, text in enumerate(candidates):
            value = 1.0 if last_number(text) == "4" else 0.2
            score = Score(value=value, normalized=value, rationale="checked", usage=Usage())
            if on_score is not None:
                on_score(index, score)
            scores.append(score)
        return scores

    def labels(self, texts):
        self._check()
        return [last_number(text) for text in texts]

    async def score_steps(self, prompt, solutions):
        self._check()
        return [
            StepScores(steps=[1.0 if last_number(step) == "4" else 0.2 for step in steps])
            for steps in solutions
        ]


def parts_for(model, verifiers: Verifiers) -> Parts:
    return Parts(
        model=model,
        verifier=verifiers,
        step_verifier=verifiers,
        answer_key=last_number,
        equivalence=verifiers,
    )


def small(row: registry.Strategy) -> dict:
    """Settings that keep a run short: a size of 3 and one or two steps or rounds."""
    fields = row.settings.model_fields
    values = {name: value for name, value in SMALL.items() if name in fields}
    if row.size is not None:
        values[row.size] = 3
    return values


SMALL = {"max_steps": 2, "rounds": 1, "keep": 1, "subtrees": 1, "iterations": 3}


def graph_of(node, checkpointer=None):
    graph = StateGraph(MessagesState)
    graph.add_node("answer", node)
    graph.add_edge(START, "answer")
    return graph.compile(checkpointer=checkpointer)


@pytest.fixture
def node_for(model_for):
    def make(row, handler=answers, **options):
        server, model = model_for(handler, honour_n=True)
        verifiers = Verifiers()
        node = row.node(parts_for(model, verifiers), small(row), **options)
        return server, verifiers, node

    return make


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
async def test_the_node_appends_one_reply_carrying_its_search(row, node_for):
    _, _, node = node_for(row)
    state = await graph_of(node).ainvoke({"messages": [HumanMessage("What is 2 + 2?")]})
    [_, reply] = state["messages"]
    assert isinstance(reply, AIMessage)
    result = search_result(state)
    assert result.strategy == row.name or row.chooses  # a chooser records what it ran
    assert reply.content == result.answer and result.candidates


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
async def test_an_override_holds_for_one_invocation_and_an_unknown_one_is_refused(row, node_for):
    server, _, node = node_for(row)
    await node.ainvoke("What is 2 + 2?", temperature=0.3)
    assert {request.body["temperature"] for request in server.requests} == {0.3}
    server.reset()
    await node.ainvoke("What is 2 + 2?")  # the next invocation: back to its own settings
    assert 0.3 not in {request.body["temperature"] for request in server.requests}
    with pytest.raises(ConfigurationError, match="unknown override"):
        await node.ainvoke("What is 2 + 2?", no_such_knob=1)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
async def test_progress_events_reach_the_parent_stream(row, node_for):
    _, _, node = node_for(row)
    events = [
        event
        async for event in graph_of(node).astream(
            {"messages": [HumanMessage("What is 2 + 2?")]}, stream_mode="custom"
        )
    ]
    assert events and all(isinstance(e, dict) and "ttc" in e for e in events)
    assert any(e.get("strategy") == row.name for e in events) or row.chooses


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
async def test_a_budget_of_calls_is_kept(row, node_for):
    server, _, node = node_for(row, budget=Budget(calls=2))
    try:
        result = await node.ainvoke("What is 2 + 2?")
    except SearchError as exc:  # nothing could be finished within it: said, not overspent
        assert "budget" in str(exc).lower()
    else:
        assert result.usage.total.calls <= 2
    assert len(server.requests) <= 2


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
async def test_a_resumed_run_asks_the_model_nothing_twice(row, node_for):
    server, _, node = node_for(row)
    await graph_of(node).ainvoke({"messages": [HumanMessage("What is 2 + 2?")]})
    uninterrupted = len(server.requests)

    server, verifiers, node = node_for(row)
    app = graph_of(node, InMemorySaver())
    config = {"configurable": {"thread_id": row.name}}
    verifiers.fail_once = True
    with pytest.raises(Exception) as crash:
        await app.ainvoke({"messages": [HumanMessage("What is 2 + 2?")]}, config)
    assert "the verifier crashed" in _causes(crash.value)
    state = await app.ainvoke(None, config)
    assert search_result(state).answer
    assert len(server.requests) == uninterrupted


def _causes(exc: BaseException | None) -> str:
    """The messages of an exception and of what caused it."""
    text = ""
    while exc is not None:
        text, exc = text + f" {exc}", exc.__cause__ or exc.__context__
    return text
