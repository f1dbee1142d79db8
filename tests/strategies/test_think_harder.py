"""think_harder: effort levels that change per turn in one running chat graph."""

from __future__ import annotations

from typing import Annotated

import pytest
from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from ttc_agent import OpenAIChat, Preset, RubricJudge, search_result, think_harder
from ttc_agent.testing import fenced, judge_reply

CRITERIA = ["correctness", "completeness", "specificity", "clarity"]


def handler(request):
    candidate = fenced(request.last_user)
    if candidate is not None:
        return judge_reply(dict.fromkeys(CRITERIA, 2 + len(candidate) % 3))
    if "A reviewer scored" in request.last_user:
        return f"A revised reply {request.index}."
    return f"Reply {request.index}.{request.choice}"


class ChatState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    effort: str


@pytest.fixture
async def chat(loopback):
    server = loopback(handler, honour_n=True)
    model = OpenAIChat("m", base_url=server.base_url, api_key="k")
    judge = RubricJudge("helpfulness", model, mode="structured")
    graph = StateGraph(ChatState)
    graph.add_node("assistant", think_harder(model, judge, effort="none"))
    graph.add_edge(START, "assistant")
    yield server, graph.compile(checkpointer=InMemorySaver())
    await model.aclose()


async def test_effort_changes_turn_by_turn_through_the_state(chat):
    server, app = chat
    thread = {"configurable": {"thread_id": "t"}}
    plan = [
        ("none", "none", 1),
        ("low", "best_of_n", 4),
        ("high", "refine", 4 + 4 + 4),  # 4 drafts; each round revises the best 2 twice
        ("none", "none", 1),
    ]
    for turn, (effort, strategy, candidates) in enumerate(plan):
        state = await app.ainvoke(
            {"messages": [HumanMessage(f"turn {turn}")], "effort": effort}, thread
        )
        result = search_result(state)
        assert result.settings["effort"] == effort
        assert result.strategy == strategy
        assert len(result.candidates) == candidates
    assert len(state["messages"]) == 8  # one question and one reply per turn, in one thread
    last_turn = server.requests[-1]
    assert next(m["content"] for m in last_turn.messages if m["role"] == "user") == "turn 0"


async def test_effort_per_invocation_overrides_the_state(chat):
    _, app = chat
    thread = {"configurable": {"thread_id": "u", "ttc": {"effort": "low"}}}
    state = await app.ainvoke({"messages": [HumanMessage("hi")], "effort": "none"}, thread)
    assert search_result(state).settings["effort"] == "low"


async def test_presets_are_yours_to_change(loopback):
    server = loopback(handler, honour_n=True)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        judge = RubricJudge("helpfulness", model, mode="structured")
        node = think_harder(model, judge, presets={"high": Preset(strategy="best_of_n", n=3)})
        result = await node.ainvoke("Q", effort="high")
        assert result.strategy == "best_of_n" and len(result.candidates) == 3
        with pytest.raises(Exception, match="effort"):
            await node.ainvoke("Q", effort="extreme")


def test_terminal_chat_example_switches_effort(loopback):
    import os
    import subprocess
    import sys
    from pathlib import Path

    server = loopback(handler, honour_n=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TTC_"))}
    env |= {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "k", "TTC_MODEL": "m"}
    done = subprocess.run(
        [sys.executable, "examples/think_harder_chat.py"],
        input="Hello\n/effort low\nAnd again\n/effort extreme\n/quit\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert "(none, 1 candidate(s)" in done.stdout
    assert "effort: low" in done.stdout
    assert "(best_of_n, 4 candidate(s)" in done.stdout
    assert "unknown effort 'extreme'" in done.stdout


def chat_example(env_extra, **options):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TTC_"))}
    env |= {"OPENAI_API_KEY": "k", "TTC_MODEL": "m"} | env_extra
    return subprocess.Popen(
        [sys.executable, "examples/think_harder_chat.py"],
        env=env,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **options,
    )


def test_terminal_chat_rejects_unknown_commands(loopback):
    server = loopback(handler, honour_n=True)
    chat = chat_example({"OPENAI_BASE_URL": server.base_url})
    out, err = chat.communicate("/effrot high\n/help\nHello\n/quit\n", timeout=120)
    assert chat.returncode == 0, err
    assert "unknown command /effrot; commands: /effort none|low|medium|high, /quit" in out
    assert "unknown command /help" in out
    asked = [m["content"] for r in server.requests for m in r.messages if m["role"] == "user"]
    assert asked and all(not text.startswith("/") for text in asked)


def test_terminal_chat_reports_an_unreachable_endpoint_and_goes_on():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    chat = chat_example({"OPENAI_BASE_URL": url})
    out, err = chat.communicate("Hello\n/effort low\n/quit\n", timeout=120)
    assert chat.returncode == 0, err
    assert "Traceback" not in out + err
    assert f"error: {url} is unreachable: connection refused" in out
    assert "effort: low" in out  # the chat went on after the failed turn


def test_terminal_chat_leaves_quietly_on_ctrl_c(loopback):
    import signal
    import time

    server = loopback(handler, honour_n=True)
    chat = chat_example({"OPENAI_BASE_URL": server.base_url})
    assert "Commands:" in chat.stdout.readline()  # it waits for input now
    time.sleep(0.2)
    chat.send_signal(signal.SIGINT)
    _, err = chat.communicate(timeout=60)
    assert "Traceback" not in err, err
    assert chat.returncode == 130
