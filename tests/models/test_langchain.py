"""LangChainChat is a full ChatModel: budgets, step search, tool calls. The LangChain model is
the real ``ChatOpenAI`` talking to the loopback server over HTTP."""

from __future__ import annotations

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI
from test_openai_chat import PROMPT

from ttc_agent import (
    Budget,
    ConfigurationError,
    LangChainChat,
    LLMStepJudge,
    OpenAIChat,
    RubricJudge,
    beam_search,
    best_of_n,
    dvts,
    majority_vote,
    search_result,
)
from ttc_agent.testing import LoopbackServer, Reply, fenced, judge_reply

CRITERIA = ["correctness", "completeness", "specificity", "clarity"]
ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two numbers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    },
}


def handler(request):
    candidate = fenced(request.last_user)
    if candidate is not None and request.body.get("max_completion_tokens") == 2:  # step judge
        return Reply("1", alternatives={0: {"1": -0.3, "0": -1.4}})
    if candidate is not None:
        return judge_reply(dict.fromkeys(CRITERIA, 1 + len(candidate) % 5))
    if request.body.get("tools"):
        if request.messages[-1]["role"] == "tool":
            return f"The sum is {request.messages[-1]['content']}."
        return Reply("", tool_calls=(("add", {"a": 2, "b": request.index + request.choice}),))
    depth = (request.prefix or "").count("\n\n")
    return f"Step {depth + 1}: the answer might be {request.index % 3} here.\n\nmore text"


def chat(server: LoopbackServer, **options) -> LangChainChat:
    model = ChatOpenAI(model="m", base_url=server.base_url, api_key="k", max_retries=0)
    return LangChainChat(model, **options)


def billed(server: LoopbackServer) -> tuple[int, int]:
    return (
        sum(r.usage.get("prompt_tokens", 0) for r in server.requests),
        sum(r.usage.get("completion_tokens", 0) for r in server.requests),
    )


async def test_a_call_budget_holds_and_is_reported(loopback):
    """Unmetered, a best-of-8 made 32 calls under Budget(calls=2) and was not budget-limited."""
    server = loopback(handler)
    model = chat(server)
    judge = RubricJudge("helpfulness", model, mode="structured")
    result = await best_of_n(model, judge, n=8, budget=Budget(calls=2)).ainvoke("Q")
    assert len(server.requests) == 2
    assert result.budget_limited
    assert len(result.candidates) == 2  # what fitted; none judged
    assert result.usage.generation.calls == 2


async def test_tokens_settle_from_usage_metadata_or_the_reservation(loopback):
    for usage in (True, False):
        server = loopback(handler, usage=usage)
        node = majority_vote(chat(server), n=4, answer="exact", budget=Budget(output_tokens=10))
        result = await node.ainvoke("Q")
        assert result.budget_limited
        assert billed(server)[1] <= 10
        assert all(r.body["max_completion_tokens"] <= 10 for r in server.requests)


async def test_step_search_refuses_unless_the_model_continues(loopback):
    server = loopback(handler)
    judge = LLMStepJudge(OpenAIChat("m", base_url=server.base_url, api_key="k"))
    node = beam_search(chat(server), judge, n=4, keep=2, max_steps=3, max_step_tokens=20)
    with pytest.raises(ConfigurationError, match="continuation='prefill'"):
        await node.ainvoke("Q")
    assert server.requests == []
    with pytest.raises(ConfigurationError, match="continuation must be None or prefill"):
        chat(server, continuation="vllm")


@pytest.mark.parametrize("strategy", ["beam_search", "dvts"])
async def test_prefill_continues_steps_as_a_final_ai_message(loopback, strategy):
    server = loopback(handler)  # continues a final assistant message, as llama-server does
    model = chat(server, continuation="prefill")
    judge = LLMStepJudge(model)
    options = {"max_steps": 3, "max_step_tokens": 20}
    if strategy == "dvts":
        node = dvts(model, judge, n=4, subtrees=2, **options)
    else:
        node = beam_search(model, judge, n=4, keep=2, **options)
    result = await node.ainvoke("Q")
    continued = [r for r in server.requests if r.prefix is not None]
    assert {r.prefix.count("\n\n") for r in continued} == {1, 2}
    assert all(r.messages[-1]["role"] == "assistant" for r in continued)
    texts = [c.text for c in result.candidates]
    assert all(text.startswith("Step 1: ") and "\n\nStep 3: " in text for text in texts)


@pytest.mark.parametrize("maker", ["openai", "langchain"])
async def test_tool_calls_reach_the_nodes_reply(loopback, maker):
    server = loopback(handler)
    if maker == "openai":
        base = OpenAIChat("m", base_url=server.base_url, api_key="k")
        model = base.bind_tools([ADD])
    else:
        base = chat(server)
        model = LangChainChat(base.chat_model.bind_tools([ADD]))
    judge = RubricJudge("helpfulness", base, mode="structured")
    node = best_of_n(model, judge, n=2)
    state = await node.graph.ainvoke({"messages": [HumanMessage("What is 2 + 1?")]})
    reply = state["messages"][-1]
    result = search_result(reply)
    calls = sorted([(t.name, t.args["b"]) for t in c.tool_calls] for c in result.candidates)
    assert calls == [[("add", 0)], [("add", 1)]]  # each candidate keeps its own
    [call] = reply.tool_calls
    assert call["name"] == "add" and call["args"] == result.best.tool_calls[0].args
    assert call["id"] == result.best.tool_calls[0].id
    generation = [r for r in server.requests if fenced(r.last_user) is None]
    assert all(r.body["tools"] == [ADD] for r in generation)
    judged = [r for r in server.requests if fenced(r.last_user) is not None]
    assert judged and all("tools" not in r.body for r in judged)
    # the conversation goes on: the tool's result comes back and the model answers
    messages = [*state["messages"], ToolMessage("3", tool_call_id=call["id"])]
    after = await node.graph.ainvoke({"messages": messages})
    assert after["messages"][-1].content == "The sum is 3."
    assert isinstance(after["messages"][-1], AIMessage) and not after["messages"][-1].tool_calls
    if maker == "openai":
        await base.aclose()


async def test_langchain_adapter_samples_n_and_reports_usage():
    replies = iter(["first", "second", "third"])
    model = LangChainChat(GenericFakeChatModel(messages=replies), max_concurrency=2)
    seen = []
    completions = await model.sample(PROMPT, 3, on_completion=lambda c: seen.append(c.text))
    assert sorted(c.text for c in completions) == ["first", "second", "third"]
    assert sorted(seen) == ["first", "second", "third"]
    assert all(c.usage.calls == 1 for c in completions)
