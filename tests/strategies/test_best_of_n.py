"""best_of_n as a LangGraph node and standalone, against the loopback server."""

from __future__ import annotations

import re
from typing import Annotated

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from ttc_agent import (
    ConfigurationError,
    OpenAIChat,
    RetryPolicy,
    RubricJudge,
    SearchError,
    SearchResult,
    best_of_n,
    search_result,
)
from ttc_agent.testing import fenced, judge_reply
from ttc_agent.types import Usage

CRITERIA = ["correctness", "completeness", "specificity", "clarity"]  # helpfulness
QUALITY = {"Paris.": 5, "Lyon.": 2, "It is Paris, I think.": 4, "Marseille.": 1}
ANSWERS = list(QUALITY)


class Script:
    """Candidates in a fixed order; the judge scores each by its text."""

    def __init__(self, answers=ANSWERS, quality=QUALITY) -> None:
        self.answers, self.quality, self.sampled = answers, quality, 0

    def __call__(self, request):
        candidate = fenced(request.last_user)
        if candidate is not None:
            return judge_reply(dict.fromkeys(CRITERIA, self.quality[candidate]))
        answer = self.answers[self.sampled % len(self.answers)]
        self.sampled += 1
        return answer


@pytest.fixture
async def setup(loopback):
    models = []

    def make(script=None, honour_n=False, **options):
        server = loopback(script or Script(), honour_n=honour_n)
        model = OpenAIChat(
            "m",
            base_url=server.base_url,
            api_key="k",
            retry=RetryPolicy(attempts=2, initial_wait=0.01),
        )
        models.append(model)
        judge = RubricJudge("helpfulness", model, mode="structured")
        return server, best_of_n(model, judge, **({"n": 4} | options))

    yield make
    for model in models:
        await model.aclose()


def agent_graph(node, checkpointer=None):
    """An ordinary agent graph: a guard node, the answer node, a post-processing node."""

    def add_policy(state: MessagesState):
        return {"messages": [SystemMessage("Answer in one short sentence.")]}

    def log_reply(state: MessagesState):
        assert isinstance(state["messages"][-1], AIMessage)
        return {}

    graph = StateGraph(MessagesState)
    graph.add_node("policy", add_policy)
    graph.add_node("answer", node)  # the one line that adds test-time compute
    graph.add_node("log", log_reply)
    graph.add_edge(START, "policy")
    graph.add_edge("policy", "answer")
    graph.add_edge("answer", "log")
    graph.add_edge("log", END)
    return graph.compile(checkpointer=checkpointer)


async def test_drop_in_node_appends_one_message_with_the_search(setup):
    server, node = setup()
    app = agent_graph(node)
    state = await app.ainvoke({"messages": [HumanMessage("Capital of France?")]})
    messages = state["messages"]
    assert [type(m).__name__ for m in messages] == ["HumanMessage", "SystemMessage", "AIMessage"]
    assert messages[-1].content == "Paris."
    result = search_result(state)
    assert sorted(c.text for c in result.candidates) == sorted(ANSWERS)
    assert result.best.text == "Paris."
    assert result.settings["n"] == 4 and result.settings["verifier"] == "helpfulness"
    assert all(c.score.value == QUALITY[c.text] for c in result.candidates)
    assert result.best.score.criteria == dict.fromkeys(CRITERIA, 5.0)
    # the generator saw the whole conversation, the system message included
    generation = [r for r in server.requests if fenced(r.last_user) is None]
    assert [m["role"] for m in generation[0].messages] == ["user", "system"]


async def test_usage_is_split_and_adds_up_to_what_the_server_billed(setup):
    server, node = setup()
    result = await node.ainvoke("Capital of France?")

    def billed(judging: bool) -> Usage:
        return Usage.sum(
            [
                Usage(
                    prompt_tokens=r.usage["prompt_tokens"],
                    completion_tokens=r.usage["completion_tokens"],
                    calls=1,
                )
                for r in server.requests
                if (fenced(r.last_user) is not None) == judging
            ]
        )

    assert result.usage.generation == billed(judging=False)
    assert result.usage.verification == billed(judging=True)
    assert result.usage.generation.calls == result.usage.verification.calls == 4
    assert Usage.sum([c.usage for c in result.candidates]) == result.usage.generation
    assert Usage.sum([c.score.usage for c in result.candidates]) == result.usage.verification


async def test_weighted_best_of_n_pools_scores_by_answer(setup):
    answers = ["The answer is 7.", "I get 12.", "So 12.", "Final: 12", "It's 7!"]
    quality = dict(zip(answers, [5, 3, 3, 3, 1], strict=True))

    def last_number(text: str) -> str | None:
        numbers = re.findall(r"\d+", text)
        return numbers[-1] if numbers else None

    _, node = setup(Script(answers, quality), honour_n=True, n=5, answer_key=last_number)
    result = await node.ainvoke("What is 3 + 9?")
    assert result.selection == "weighted"
    assert result.group_scores == {"7": pytest.approx(1.0), "12": pytest.approx(1.5)}
    assert result.answer == "I get 12."  # best of the winning group; plain BoN would pick "7"
    assert [c.key for c in result.candidates] == ["7", "12", "12", "12", "7"]


async def test_n_and_temperature_override_per_invocation(setup):
    server, node = setup()
    app = agent_graph(node)
    config = {"configurable": {"ttc": {"n": 2, "temperature": 0.1}}}
    state = await app.ainvoke({"messages": [HumanMessage("Capital?")]}, config)
    result = search_result(state)
    assert len(result.candidates) == 2
    assert result.settings["n"] == 2 and result.settings["temperature"] == 0.1
    generation = [r for r in server.requests if fenced(r.last_user) is None]
    assert {r.body["temperature"] for r in generation} == {0.1}
    # the same compiled graph, next invocation, back to the construction settings
    state = await app.ainvoke({"messages": [HumanMessage("Capital?")]})
    assert len(search_result(state).candidates) == 4


async def test_overrides_through_the_runtime_context(setup):
    _, node = setup()
    graph = StateGraph(MessagesState, context_schema=dict)
    graph.add_node("answer", node)
    graph.add_edge(START, "answer")
    app = graph.compile()
    state = await app.ainvoke({"messages": [HumanMessage("Q")]}, context={"ttc": {"n": 3}})
    assert len(search_result(state).candidates) == 3


async def test_bad_overrides_are_clear_errors(setup):
    _, node = setup()
    with pytest.raises(ConfigurationError, match="unknown override"):
        await node.ainvoke("Q", beams=3)
    with pytest.raises(ConfigurationError, match="n: Input should be greater than or equal to 1"):
        await node.ainvoke("Q", n=0)


def test_bad_construction_is_a_clear_error():
    model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
    with pytest.raises(ConfigurationError, match="best_of_n: n"):
        best_of_n(model, RubricJudge("helpfulness", model), n=0)


async def test_progress_events_reach_the_parent_stream(setup):
    _, node = setup()
    app = agent_graph(node)
    events = [
        chunk
        async for chunk in app.astream(
            {"messages": [HumanMessage("Capital?")]}, stream_mode="custom"
        )
    ]
    sampled = [e for e in events if e["ttc"] == "sampled"]
    scored = [e for e in events if e["ttc"] == "scored"]
    assert [e["done"] for e in sampled] == [0, 1, 2, 3, 4]  # 0: announced before any arrives
    assert [e["done"] for e in scored] == [0, 1, 2, 3, 4]
    assert all(e["total"] == 4 and e["strategy"] == "best_of_n" for e in sampled + scored)
    assert sorted(e["score"] for e in scored[1:]) == [1.0, 2.0, 4.0, 5.0]
    assert events[-1]["ttc"] == "selected" and events[-1]["score"] == 5.0


async def test_standalone_on_a_prompt_or_messages(setup):
    _, node = setup(honour_n=True)
    result = await node.ainvoke("Capital of France?")
    assert isinstance(result, SearchResult)
    assert result.answer == "Paris."
    result = await node.ainvoke([{"role": "user", "content": "Capital of France?"}], n=2)
    assert len(result.candidates) == 2


async def test_judge_failure_keeps_the_sampled_candidates(setup):
    def script(request):
        return "no json here" if fenced(request.last_user) else "An answer."

    _, node = setup(script)
    with pytest.raises(SearchError, match="unparseable") as caught:
        await node.ainvoke("Q")
    partial = caught.value.partial
    assert [c.text for c in partial.candidates] == ["An answer."] * 4
    assert partial.chosen is None and partial.usage.generation.calls == 4


async def test_resumed_thread_does_not_resample(setup):
    """A crash while judging: resuming the thread reuses the checkpointed samples."""
    script = Script()
    failing = {"on": True}

    def flaky(request):
        if failing["on"] and fenced(request.last_user):
            return "broken judge output"
        return script(request)

    server, node = setup(flaky)
    app = agent_graph(node, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t1"}}
    with pytest.raises(SearchError):
        await app.ainvoke({"messages": [HumanMessage("Capital?")]}, config)
    sampled_before = sum(1 for r in server.requests if not fenced(r.last_user))
    failing["on"] = False
    state = await app.ainvoke(None, config)
    sampled_after = sum(1 for r in server.requests if not fenced(r.last_user))
    assert sampled_before == sampled_after == 4
    assert state["messages"][-1].content == "Paris."


async def test_result_key_writes_the_record_to_state(setup):
    class State(TypedDict):
        messages: Annotated[list[AnyMessage], add_messages]
        search: SearchResult

    _, node = setup(result_key="search")
    graph = StateGraph(State)
    graph.add_node("answer", node)
    graph.add_edge(START, "answer")
    state = await graph.compile().ainvoke({"messages": [HumanMessage("Capital?")]})
    assert isinstance(state["search"], SearchResult)
    assert state["search"].answer == state["messages"][-1].content == "Paris."


async def test_missing_messages_is_a_clear_error(setup):
    _, node = setup()
    with pytest.raises(ConfigurationError, match="no messages under 'messages'"):
        await node({"messages": []}, {})
