"""The ready-to-serve graphs listed in langgraph.json import, compile and run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from langchain_core.messages import HumanMessage

from ttc_agent import search_result
from ttc_agent.testing import fenced, judge_reply

ROOT = Path(__file__).resolve().parents[1]


def load(spec: str):
    path, name = spec.split(":")
    module_spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, name)


async def test_langgraph_json_graphs_run(loopback, monkeypatch):
    criteria = ["correctness", "completeness", "specificity", "clarity"]
    server = loopback(
        lambda r: judge_reply(dict.fromkeys(criteria, 4)) if fenced(r.last_user) else "Hello!"
    )
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("TTC_MODEL", "m")
    monkeypatch.setenv("TTC_N", "2")
    graphs = json.loads((ROOT / "langgraph.json").read_text())["graphs"]
    assert graphs
    for spec in graphs.values():
        graph = load(spec)
        state = await graph.ainvoke({"messages": [HumanMessage("Hi")]})
        assert state["messages"][-1].content == "Hello!"
        assert len(search_result(state).candidates) == 2
