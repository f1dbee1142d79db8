"""Budgets are ceilings on every path: replies without usage, everything a prompt sends, the
PRM's pooling calls, a step the budget interrupts, think_harder's presets, refine's drafts."""

from __future__ import annotations

import contextlib
import json

import pytest
from pooling_server import TAG, PoolingStub

from ttc_agent import (
    VLLMPRM,
    Budget,
    BudgetExhausted,
    LLMStepJudge,
    OpenAIChat,
    Preset,
    RubricJudge,
    beam_search,
    majority_vote,
    refine,
    think_harder,
)
from ttc_agent.budget import metered
from ttc_agent.testing import LoopbackServer, Reply, fenced, judge_reply
from ttc_agent.types import Usage

CRITERIA = ["correctness", "completeness", "specificity", "clarity"]


def handler(request):
    candidate = fenced(request.last_user)
    if candidate is not None and request.body.get("max_tokens") == 2:  # the step judge
        return Reply("1", alternatives={0: {"1": -0.3, "0": -1.4}})
    if candidate is not None:
        return judge_reply(dict.fromkeys(CRITERIA, 1 + len(candidate) % 5))
    depth = (request.prefix or "").count("\n\n")
    return f"Step {depth + 1}: the answer might be {request.index % 3} here.\n\nmore text"


def billed(server: LoopbackServer) -> Usage:
    return Usage.sum(
        [
            Usage(
                prompt_tokens=r.usage.get("prompt_tokens", 0),
                completion_tokens=r.usage.get("completion_tokens", 0),
                calls=1,
            )
            for r in server.requests
        ]
    )


async def test_a_reply_without_usage_is_charged_its_reservation(loopback):
    """Charged nothing, such replies let 32 tokens through a 10-token budget."""
    server = loopback(handler, honour_n=False, usage=False)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        node = majority_vote(model, n=4, answer="exact", budget=Budget(output_tokens=10))
        result = await node.ainvoke("Q")
    assert result.budget_limited
    assert billed(server).completion_tokens <= 10
    assert server.requests and all("usage" not in r.body for r in server.requests)


TOOL_CONVERSATION = [
    {"role": "user", "content": "Add the numbers."},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "add", "arguments": json.dumps({"a": list(range(300))})},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": " ".join(["44850"] * 100)},
    {"role": "user", "content": [{"type": "text", "text": "And say it. " * 50}]},
]


@pytest.mark.parametrize("counting", ["words", "bytes"])
async def test_the_prompt_bound_counts_tool_calls_results_and_parts(loopback, counting):
    """The old bound saw 16 bytes of content here; the server counts the whole conversation."""
    server = loopback(handler, counting=counting)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        node = majority_vote(model, n=1, answer="exact", max_tokens=5)
        for ceiling in (400, 1500, 4000, 8000):
            with contextlib.suppress(BudgetExhausted):  # nothing fitted: nothing was sent
                await node.ainvoke(TOOL_CONVERSATION, budget={"total_tokens": ceiling})
            spent = billed(server)
            assert spent.total_tokens <= ceiling, (ceiling, spent)
            server.reset()


async def test_the_prms_pooling_calls_are_metered():
    server = PoolingStub().start()
    try:
        async with VLLMPRM("prm", base_url=f"{server.url}/v1", step_tag=TAG) as prm:
            prompt = [{"role": "user", "content": "What is 2 + 2?"}]
            with metered(Budget(calls=1)), pytest.raises(BudgetExhausted, match="calls"):
                await prm.score_steps(prompt, [["2 + 2 = 4"], ["so 4"]])
            assert server.paths() == ["/pooling"]
            with metered(Budget(total_tokens=10)) as meter, pytest.raises(BudgetExhausted):
                await prm.score_steps(prompt, [["2 + 2 = 4. " * 20]])
            assert meter.spent.calls == 0 and server.paths() == ["/pooling"]
            with metered(Budget(calls=5)) as meter:
                [scores] = await prm.score_steps(prompt, [["2 + 2 = 4"]])
            assert meter.spent.calls == 1
            assert meter.spent.prompt_tokens == scores.usage.prompt_tokens > 0
    finally:
        server.stop()


@pytest.mark.parametrize("calls", [9, 12, 15, 20])
async def test_an_interrupted_steps_spend_is_in_the_result(loopback, calls):
    """The result's calls and tokens are what the server counted, the cut step's included."""
    server = loopback(handler, flavour="vllm", honour_n=False)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", continuation="vllm") as m:
        node = beam_search(m, LLMStepJudge(m), n=4, keep=2, max_steps=5, max_step_tokens=20)
        result = await node.ainvoke("Q", budget={"calls": calls})
    assert result.budget_limited
    assert len(server.requests) == calls
    assert result.usage.total == billed(server)


async def test_think_harder_reports_a_preset_budget_that_ran_out(loopback):
    server = loopback(handler, honour_n=True)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        judge = RubricJudge("helpfulness", model, mode="structured")
        presets = {"high": Preset(strategy="best_of_n", n=4, budget=Budget(calls=3))}
        node = think_harder(model, judge, effort="high", presets=presets)
        result = await node.ainvoke("Q")
        assert result.budget_limited
        assert len(server.requests) == 3
        server.reset()
        tighter = await node.ainvoke("Q", budget={"calls": 2})  # tightens the preset's
        assert tighter.budget_limited and len(server.requests) == 2
        server.reset()
        looser = await node.ainvoke("Q", budget={"calls": 50})  # does not loosen it
        assert looser.budget_limited and len(server.requests) == 3


async def test_refine_keeping_several_drafts_returns_its_best_when_the_budget_runs_out(loopback):
    server = loopback(handler, honour_n=True)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        judge = RubricJudge("helpfulness", model, mode="structured")
        node = refine(model, judge, rounds=2, width=2, keep=2, max_tokens=20)
        result = await node.ainvoke("Q", budget={"calls": 2})  # 4 drafts, 1 of them judged
    assert result.budget_limited
    assert len(result.candidates) == 4
    assert result.best.score is not None
    assert len(server.requests) == 2
