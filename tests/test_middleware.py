"""TestTimeComputeMiddleware in a real LangChain ``create_agent`` agent (ChatOpenAI from
langchain-openai on the loopback server, a real tool): turns that call tools are chosen by
agreement on the call, or passed through; turns that answer are searched by the strategy, with
its verifier; the search record and its usage ride on each message; the agent's context sets
the effort per invocation. Sync and async."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from langchain.agents import create_agent
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from ttc_agent import ConfigurationError, OpenAIChat, RubricJudge, TestTimeComputeMiddleware
from ttc_agent.testing import Reply, fenced, judge_reply

CRITERIA = ["correctness", "completeness", "specificity", "clarity"]
ANSWERS = ["It is 6, I think.", "The sum is 5.", "Five, or so."]


@tool
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


class World:
    """Asked the question, two of every three replies call ``tool`` (add) with a=2, b=3 and
    the third with a=2, b=4 (so any two draws in a row agree, whichever arrives first); given
    the tool's result, the replies answer in turn from ANSWERS. The judge gives "The sum is 5."
    5 and any other answer 2."""

    def __init__(self, tool: str = "add") -> None:
        self.count, self.lock, self.tool = {"tool": 0, "answer": 0}, threading.Lock(), tool

    def __call__(self, request):
        candidate = fenced(request.last_user)
        if candidate is not None:
            return judge_reply(dict.fromkeys(CRITERIA, 5 if candidate == ANSWERS[1] else 2))
        kind = "answer" if request.messages[-1]["role"] == "tool" else "tool"
        with self.lock:
            k = self.count[kind]
            self.count[kind] += 1
        if kind == "answer":
            return ANSWERS[k % 3]
        return Reply("", tool_calls=((self.tool, {"a": 2, "b": 4 if k % 3 == 2 else 3}),))


def model_requests(server):
    return [r for r in server.requests if fenced(r.last_user) is None]


def judge_requests(server):
    return [r for r in server.requests if fenced(r.last_user) is not None]


@pytest.fixture
def agent_for(loopback):
    """``make(**middleware_options) -> (server, agent)``: an agent with the add tool whose
    model is ChatOpenAI on a loopback server, and the middleware with a rubric judge (whose
    clients, one per event loop the agent ran on, go with the server at the test's end)."""

    def make(**options):
        server = loopback(World())
        chat = ChatOpenAI(model="m", base_url=server.base_url, api_key="k", max_retries=0)
        judge_model = OpenAIChat("m", base_url=server.base_url, api_key="k")
        judge = RubricJudge("helpfulness", judge_model, mode="structured")
        middleware = TestTimeComputeMiddleware(verifier=judge, **options)
        return server, create_agent(chat, tools=[add], middleware=[middleware])

    return make


QUESTION = {"messages": [("user", "What is 2 + 3?")]}


def check_two_turns(server, state, n: int = 3) -> None:
    _, calling, result, answer = state["messages"]
    assert [call["args"] for call in calling.tool_calls] == [{"a": 2, "b": 3}]
    assert result.content == "5"  # the tool ran with the agreed arguments
    record = calling.response_metadata["ttc"]
    assert record["selection"] == "tool_call_agreement" and len(record["candidates"]) == n
    assert sorted(record["group_scores"].values()) == sorted([n - n // 3, n // 3])
    assert answer.content == "The sum is 5." and not answer.tool_calls
    final = answer.response_metadata["ttc"]
    assert final["strategy"] == "best_of_n" and len(final["candidates"]) == n
    assert len(judge_requests(server)) == n  # the answers are judged; the tool calls are not
    usage = final["usage"]
    total = sum(usage[part]["prompt_tokens"] + usage[part]["completion_tokens"] for part in usage)
    assert answer.usage_metadata["total_tokens"] == total > 0
    requests = model_requests(server)
    assert len(requests) == 2 * n and all(r.body["tools"] for r in requests)
    assert all(r.body["temperature"] == 0.8 for r in requests)  # the strategy's, for variety


def test_a_sync_agent_agrees_on_tool_calls_and_judges_answers(agent_for):
    server, agent = agent_for(n=3)
    check_two_turns(server, agent.invoke(QUESTION))


async def test_an_async_agent_agrees_on_tool_calls_and_judges_answers(agent_for):
    server, agent = agent_for(n=3)
    check_two_turns(server, await agent.ainvoke(QUESTION))


async def test_the_agents_context_sets_the_effort_per_invocation(agent_for):
    server, agent = agent_for(n=3)
    check_two_turns(server, await agent.ainvoke(QUESTION, context={"ttc": {"n": 6}}), n=6)
    server.reset()
    state = agent.invoke(QUESTION, context={"ttc": {"n": 6}})
    assert len(model_requests(server)) == 12 and state["messages"][-1].content == ANSWERS[1]
    with pytest.raises(ConfigurationError, match=r"unknown override\(s\) \['rounds'\]"):
        await agent.ainvoke(QUESTION, context={"ttc": {"rounds": 2}})


async def test_tool_turns_may_pass_through(agent_for):
    server, agent = agent_for(n=3, tool_calls="pass")
    state = await agent.ainvoke(QUESTION)
    calling, answer = state["messages"][1], state["messages"][-1]
    assert calling.response_metadata["ttc"]["selection"] == "passed_through"
    assert len(calling.response_metadata["ttc"]["candidates"]) == 1
    assert answer.content == ANSWERS[1]
    assert len(model_requests(server)) == 1 + 3  # one call for the tool turn


async def test_progress_streams_from_the_agent(agent_for):
    _, agent = agent_for(n=2)
    events = [e async for e in agent.astream(QUESTION, stream_mode="custom")]
    assert {e["ttc"] for e in events} >= {"sampled", "scored", "selected"}
    assert all(e["strategy"] == "best_of_n" for e in events)


async def test_under_a_budget_the_turn_is_marked(agent_for):
    _, agent = agent_for(n=3, budget={"calls": 4})
    state = await agent.ainvoke(QUESTION)
    assert state["messages"][1].response_metadata["ttc"]["budget_limited"] is False
    final = state["messages"][-1].response_metadata["ttc"]
    assert final["budget_limited"] is True  # 3 answers, then room to judge only one


def test_bad_configurations_are_refused_when_built():
    judge = RubricJudge("helpfulness", OpenAIChat("m", base_url="http://127.0.0.1:9/v1"))
    cases = [
        ({"strategy": "beam_search"}, "beam_search grows partial replies"),
        ({"strategy": "particle_filter"}, "particle_filter grows partial replies"),
        ({"strategy": "best_of_n", "rounds": 2}, r"best_of_n has no setting\(s\) \['rounds'\]"),
        ({"strategy": "think_harder", "n": 4}, "think_harder has no size to set n for"),
        ({"strategy": "best_of_n", "tool_calls": "vote"}, "tool_calls must be agree or pass"),
        ({"strategy": "magic"}, "unknown strategy 'magic'"),
    ]
    for options, problem in cases:
        with pytest.raises(ConfigurationError, match=problem):
            TestTimeComputeMiddleware(verifier=judge, **options)
    with pytest.raises(ConfigurationError, match="best_of_n needs verifier"):
        TestTimeComputeMiddleware()


async def test_a_structured_output_turn_is_refused_by_name(loopback):
    from pydantic import BaseModel

    class Sum(BaseModel):
        value: int

    server = loopback(World())
    chat = ChatOpenAI(model="m", base_url=server.base_url, api_key="k", max_retries=0)
    judge = RubricJudge("helpfulness", OpenAIChat("m", base_url=server.base_url, api_key="k"))
    middleware = TestTimeComputeMiddleware(verifier=judge)
    agent = create_agent(chat, tools=[add], middleware=[middleware], response_format=Sum)
    with pytest.raises(ConfigurationError, match="structured output"):
        await agent.ainvoke(QUESTION)
    assert server.requests == []


def test_ttc_agent_imports_without_langchain():
    script = (
        "import sys; sys.modules['langchain'] = None\n"
        "import ttc_agent\n"
        "print(ttc_agent.best_of_n.__name__)\n"
        "try:\n"
        "    ttc_agent.TestTimeComputeMiddleware\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "best_of_n"
    assert "pip install 'ttc-agent[langchain]'" in lines[1]


def test_the_example_runs(loopback):
    from test_cli import run

    server = loopback(World(tool="divide"))
    done = run([sys.executable, "examples/agent_middleware.py", "What is 2 / 3?"], server)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ANSWERS[1]
    assert "[best_of_n: chose" in done.stderr and "by tool_call_agreement" in done.stderr
    assert "[tool: 2 = 0 * 3 + 2]" in done.stderr
    assert len(model_requests(server)) == 2 + 2  # n = 2 for this invocation, both turns
