"""The ready-to-serve graphs listed in langgraph.json import, compile and run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from ttc_agent import search_result
from ttc_agent.answers import parse_math
from ttc_agent.errors import ConfigurationError
from ttc_agent.models.embedded import cache_dir
from ttc_agent.testing import Reply, fenced, judge_reply

ROOT = Path(__file__).resolve().parents[1]
JUDGES = {
    "helpfulness": ["correctness", "completeness", "specificity", "clarity"],
    "writing_quality": ["clarity", "style", "engagement", "relevance"],
}


def handler(request):
    candidate = fenced(request.last_user)
    if candidate is not None and request.body.get("max_tokens") == 2:  # the step judge
        return Reply("1", alternatives={0: {"1": -0.1, "0": -2.3}})
    if candidate is not None:
        criteria = JUDGES[
            "writing_quality" if "writing editor" in request.system else "helpfulness"
        ]
        return judge_reply(dict.fromkeys(criteria, 4))
    if request.prefix is not None:
        return "So x = 1/2, and the answer is \\boxed{0.5}."
    if request.body.get("stop"):
        return "Halve both sides.\n\nmore"
    return "Hello!"


def load(spec: str):
    path, name = spec.split(":")
    module_spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module  # as langgraph's loader does
    module_spec.loader.exec_module(module)
    return module, getattr(module, name)


@pytest.fixture
def endpoint(loopback, monkeypatch):
    server = loopback(handler, honour_n=True, flavour="vllm")  # the maths graph's steps continue
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("TTC_MODEL", "m")
    monkeypatch.setenv("TTC_N", "2")
    return server


async def test_langgraph_json_graphs_import_compile_and_run(endpoint):
    graphs = json.loads((ROOT / "langgraph.json").read_text())["graphs"]
    assert set(graphs) == {"think_harder_chat", "writing_assistant", "maths_solver"}
    results = {}
    for name, spec in graphs.items():
        _, graph = load(spec)
        state = await graph.ainvoke({"messages": [HumanMessage("Solve 2x = 1.")]})
        results[name] = state
    assert results["think_harder_chat"]["messages"][-1].content == "Hello!"
    assert search_result(results["think_harder_chat"]).settings["effort"] == "low"
    assert search_result(results["writing_assistant"]).settings["verifier"] == "writing_quality"
    assert results["maths_solver"]["answer"] == "1/2"
    assert search_result(results["maths_solver"]).strategy == "beam_search"


async def test_chat_keeps_conversations_in_sqlite(endpoint, tmp_path):
    module, _ = load("graphs/think_harder_chat.py:graph")
    path = str(tmp_path / "chat.sqlite")
    thread = {"configurable": {"thread_id": "alice"}}
    async with module.sqlite_chat(path) as app:
        await app.ainvoke({"messages": [HumanMessage("Hi")], "effort": "none"}, thread)
    async with module.sqlite_chat(path) as app:  # a new process would see the same
        state = await app.ainvoke({"messages": [HumanMessage("Again")], "effort": "low"}, thread)
    assert [m.content for m in state["messages"]] == ["Hi", "Hello!", "Again", "Hello!"]
    assert search_result(state).settings["effort"] == "low"


async def test_an_invalid_effort_never_reaches_the_thread_state(endpoint):
    from langgraph.checkpoint.memory import InMemorySaver

    module, _ = load("graphs/think_harder_chat.py:graph")
    app = module.build(checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": "t"}}
    with pytest.raises(ValueError, match=r"effort.*'extreme'"):
        await app.ainvoke({"messages": [HumanMessage("Hi")], "effort": "extreme"}, thread)
    state = await app.ainvoke({"messages": [HumanMessage("Hi")]}, thread)  # the thread lives on
    assert state.get("effort") != "extreme"
    assert state["messages"][-1].content == "Hello!"


async def test_maths_solver_keeps_its_system_message_first(endpoint):
    _, graph = load("graphs/maths_solver.py:graph")
    state = await graph.ainvoke({"messages": [HumanMessage("Solve 2x = 1.")]})
    assert [m.type for m in state["messages"]][:2] == ["system", "human"]
    steps = [r for r in endpoint.requests if fenced(r.last_user) is None]
    assert all(r.messages[0]["role"] == "system" for r in steps)
    assert all(r.messages[1]["role"] == "user" for r in steps)


@pytest.mark.parametrize(
    ("graph", "variable", "value"),
    [
        ("graphs/maths_solver.py:graph", "TTC_N", "eight"),
        ("graphs/writing_assistant.py:graph", "TTC_N", "0"),
        ("graphs/think_harder_chat.py:graph", "TTC_EFFORT", "extreme"),
        ("graphs/writing_assistant.py:graph", "TTC_WRITING", "refin"),
    ],
)
def test_a_wrong_setting_of_a_graph_names_the_variable(
    endpoint, monkeypatch, graph, variable, value
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=f"{variable} must be .*got '{value}'"):
        load(graph)


async def test_the_settings_choose_what_the_graphs_run(endpoint, monkeypatch):
    monkeypatch.setenv("TTC_N", "3")
    monkeypatch.setenv("TTC_WRITING", "refine")
    monkeypatch.setenv("TTC_EFFORT", "high")
    prompt = {"messages": [HumanMessage("Write a line.")]}
    _, writing = load("graphs/writing_assistant.py:graph")
    assert search_result(await writing.ainvoke(prompt)).strategy == "refine"
    _, chat = load("graphs/think_harder_chat.py:graph")
    assert search_result(await chat.ainvoke(prompt)).settings["effort"] == "high"


def test_cache_dir_must_be_a_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TTC_CACHE_DIR", str(tmp_path / "missing"))
    assert cache_dir() == tmp_path / "missing"  # created when a model is first assembled
    afile = tmp_path / "afile"
    afile.write_text("")
    monkeypatch.setenv("TTC_CACHE_DIR", str(afile))
    with pytest.raises(ConfigurationError, match="TTC_CACHE_DIR must be a folder"):
        cache_dir()


def test_maths_without_math_verify_says_how_to_install_it(endpoint, monkeypatch):
    monkeypatch.setitem(sys.modules, "math_verify", None)  # as if it were not installed
    with pytest.raises(ConfigurationError, match=r"pip install 'ttc-agent\[math\]'"):
        parse_math(r"\boxed{1}")
    with pytest.raises(ConfigurationError, match=r"needs math-verify"):
        load("graphs/maths_solver.py:graph")  # when the graph is built, not after its search
