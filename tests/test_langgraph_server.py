"""The graphs behind the real LangGraph server (``langgraph dev``, langgraph-api in memory),
driven by the real ``langgraph-sdk`` client, as a user serves them.

The server forwards an exception's message to clients only for built-in exception types (and
says "An internal error occurred" for the rest), so ttc-agent's errors must be of such types to
reach a client with their message. A thread's state must not keep an effort level the node
rejects, or every later turn of that thread would fail.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ttc_agent.testing import LoopbackServer, fenced, judge_reply

pytest.importorskip("langgraph_api", reason="needs langgraph-api: the dev extra installs it")
from langgraph_sdk import get_client

ROOT = Path(__file__).resolve().parents[1]
HELPFULNESS = ["correctness", "completeness", "specificity", "clarity"]
UNREACHABLE_GRAPH = """
import os

from graphs.think_harder_chat import build
from ttc_agent import OpenAIChat

graph = build(OpenAIChat("m", base_url=os.environ["TEST_CLOSED_URL"], api_key="k"))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def handler(request):
    if fenced(request.last_user) is not None and "writing editor" in request.system:
        return "Lovely writing, 10/10!"  # not a verdict: the writing judge cannot be read
    if fenced(request.last_user) is not None:
        return judge_reply(dict.fromkeys(HELPFULNESS, 4))
    return f"Reply {request.index}.{request.choice}"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, LoopbackServer]]:
    """``langgraph dev`` on a free port serving the chat and writing graphs, with the model
    on a loopback server, and a copy of the chat graph whose endpoint is a closed port."""
    folder = tmp_path_factory.mktemp("langgraph")
    (folder / "unreachable.py").write_text(UNREACHABLE_GRAPH)
    config = {
        "dependencies": [str(ROOT)],
        "graphs": {
            "think_harder_chat": f"{ROOT}/graphs/think_harder_chat.py:graph",
            "writing_assistant": f"{ROOT}/graphs/writing_assistant.py:graph",
            "unreachable_chat": f"{folder}/unreachable.py:graph",
        },
    }
    (folder / "langgraph.json").write_text(json.dumps(config))
    port = free_port()
    with LoopbackServer(handler, honour_n=True) as upstream:
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TTC_"))}
        environment |= {
            "OPENAI_BASE_URL": upstream.base_url,
            "OPENAI_API_KEY": "k",
            "TTC_MODEL": "m",
            "TTC_N": "2",
            "TEST_CLOSED_URL": f"http://127.0.0.1:{free_port()}/v1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "LANGGRAPH_CLI_NO_ANALYTICS": "1",
            "LANGSMITH_TRACING": "false",
        }
        log = (folder / "server.log").open("w")
        command = ["dev", "--config", str(folder / "langgraph.json"), "--port", str(port)]
        process = subprocess.Popen(
            [sys.executable, "-m", "langgraph_cli", *command, "--no-browser", "--no-reload"],
            cwd=folder,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None, (folder / "server.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "langgraph dev did not start in 120 s"
                try:
                    if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            yield url, upstream
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


async def run(url: str, graph: str, thread: str | None, payload: dict[str, Any]) -> list[Any]:
    """Stream one run; the events as (event, data)."""
    client = get_client(url=url)
    thread = thread or (await client.threads.create())["thread_id"]
    return [
        (part.event, part.data)
        async for part in client.runs.stream(thread, graph, input=payload, stream_mode="values")
    ]


def errors(events: list[Any]) -> list[dict[str, Any]]:
    return [data for event, data in events if event == "error"]


async def test_endpoint_unreachable_reaches_the_client_with_its_message(server):
    url, _ = server
    started = time.monotonic()
    events = await run(url, "unreachable_chat", None, {"messages": [("user", "Hi")]})
    [error] = errors(events)
    assert error["error"] == "EndpointUnreachable"
    assert "is unreachable: connection refused" in error["message"]
    assert time.monotonic() - started < 10  # failed fast, not after ~20 s of retries


async def test_judge_output_error_reaches_the_client_with_its_message(server):
    url, _ = server
    events = await run(url, "writing_assistant", None, {"messages": [("user", "A haiku")]})
    [error] = errors(events)
    assert error["error"] == "SearchError"  # the search failed in judging; its cause is named
    assert "judge 'writing_quality' gave unparseable output" in error["message"]


async def test_an_invalid_effort_is_refused_before_it_is_saved(server):
    url, _ = server
    client = get_client(url=url)
    thread = (await client.threads.create())["thread_id"]
    bad = await run(url, "think_harder_chat", thread, {"messages": [("user", "Hi")], "effort": "x"})
    [error] = errors(bad)
    assert "effort" in error["message"] and "'x'" in error["message"]
    good = await run(url, "think_harder_chat", thread, {"messages": [("user", "Hi")]})
    assert errors(good) == []
    state = (await client.threads.get_state(thread))["values"]
    assert state.get("effort") != "x"
    assert state["messages"][-1]["content"].startswith("Reply ")
