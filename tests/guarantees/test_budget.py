"""Budgets are hard ceilings: what the server billed never exceeds them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from langchain_openai import ChatOpenAI
from pooling_server import TAG, PoolingStub

from ttc_agent import (
    VLLMPRM,
    Budget,
    BudgetExhausted,
    ChatModel,
    ConfigurationError,
    LangChainChat,
    LLMStepJudge,
    OpenAIChat,
    Policy,
    Preset,
    RetryPolicy,
    RubricJudge,
    TTCError,
    ab_mcts,
    adaptive,
    beam_search,
    best_of_n,
    dvts,
    majority_vote,
    particle_filter,
    refine,
    think_harder,
)
from ttc_agent.budget import Meter, Price
from ttc_agent.strategies.adaptive import Choice
from ttc_agent.testing import FAULT_KINDS, FaultPlan, LoopbackServer, Reply, fenced, judge_reply
from ttc_agent.types import Usage

CRITERIA = ["correctness", "completeness", "specificity", "clarity"]
ADD = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}
TOOL_CONVERSATION = [
    {"role": "user", "content": "Add 2 and 3, then answer."},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a":2}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "5"},
    {"role": "user", "content": [{"type": "text", "text": "Answer briefly."}]},
]


def handler(request):
    candidate = fenced(request.last_user)
    most = request.body.get("max_tokens") or request.body.get("max_completion_tokens")
    if candidate is not None and most == 2:  # the step judge
        return Reply("1", alternatives={0: {"1": -0.3, "0": -1.4}})
    if candidate is not None:
        return judge_reply(dict.fromkeys(CRITERIA, 1 + len(candidate) % 5))
    depth = (request.prefix or "").count("\n\n")
    return f"Step {depth + 1}: the answer might be {request.index % 3} here.\n\nmore text"


def build(strategy: str, model: ChatModel, judge_model: ChatModel, n: int, prm: Any = None):
    judge = RubricJudge("helpfulness", judge_model, mode="structured", max_tokens=120)
    steps = prm or LLMStepJudge(judge_model)
    if strategy == "best_of_n":
        return best_of_n(model, judge, n=n, max_tokens=40)
    if strategy == "majority_vote":
        return majority_vote(model, n=n, answer="exact", verifier=judge, max_tokens=40)
    if strategy == "refine":
        return refine(model, judge, rounds=2, width=n, keep=2, max_tokens=40)
    if strategy == "adaptive":  # hard questions (the answers scatter) go to beam search
        table = [Choice(difficulty=d, strategy="beam_search", n=2 * n, keep=2) for d in DIFFICULTY]
        policy = Policy(table=table)
        return adaptive(model, judge, policy=policy, step_verifier=steps, probe=2, max_tokens=30)
    if strategy == "think_harder":
        presets = {"high": Preset(strategy="refine", n=n, keep=2, budget=Budget(calls=9))}
        return think_harder(model, judge, effort="high", presets=presets, max_tokens=40)
    if strategy == "dvts":
        return dvts(model, steps, n=2 * n, subtrees=2, max_steps=3, max_step_tokens=20)
    if strategy == "particle_filter":
        return particle_filter(model, steps, n=2 * n, max_steps=3, max_step_tokens=20)
    if strategy == "ab_mcts":
        return ab_mcts(model, judge, n=2 * n, batch=2, max_tokens=40)
    return beam_search(model, steps, n=2 * n, keep=2, max_steps=3, max_step_tokens=20)


DIFFICULTY = ("easy", "medium", "hard")
STRATEGIES = [
    "best_of_n",
    "majority_vote",
    "refine",
    "beam_search",
    "dvts",
    "particle_filter",
    "ab_mcts",
    "adaptive",
]


def billed(server: LoopbackServer) -> Usage:
    """What the loopback server counted (its requests and the tokens it billed)."""
    counts = [r.usage for r in server.requests]
    return Usage(
        prompt_tokens=sum(c.get("prompt_tokens", 0) for c in counts),
        completion_tokens=sum(c.get("completion_tokens", 0) for c in counts),
        calls=len(counts),
    )


def pooled(server: PoolingStub) -> Usage:
    """What the PRM's pooling server billed (and its tokenize calls)."""
    prompt = sum(len(server.tokens(body)) for path, body in server.requests if path == "/pooling")
    return Usage(prompt_tokens=prompt, calls=len(server.requests))


limits = st.one_of(st.none(), st.integers(min_value=0, max_value=8000))


fault_plans = st.builds(
    FaultPlan,
    rate=st.sampled_from([0.0, 0.1, 0.3]),
    seed=st.integers(min_value=0, max_value=10_000),
    kinds=st.just(tuple(kind for kind in FAULT_KINDS if kind != "timeout")),  # no slow hangs
)


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    strategy=st.sampled_from([*STRATEGIES, "think_harder", "beam_search+prm"]),
    client=st.sampled_from(["openai", "langchain"]),
    conversation=st.sampled_from(["plain", "tools"]),
    calls=st.one_of(st.none(), st.integers(min_value=0, max_value=14)),
    output_tokens=limits,
    total_tokens=limits,
    n=st.integers(min_value=1, max_value=4),
    honour_n=st.booleans(),
    concurrency=st.integers(min_value=1, max_value=4),
    faults=fault_plans,
    server=st.fixed_dictionaries(
        {
            "flavour": st.sampled_from(["vllm", "llamacpp"]),
            "usage": st.booleans(),
            "counting": st.sampled_from(["words", "bytes"]),
        }
    ),
)
def test_spend_never_exceeds_the_budget(
    strategy,
    client,
    conversation,
    calls,
    output_tokens,
    total_tokens,
    n,
    honour_n,
    concurrency,
    faults,
    server,
):
    """1,000 random budgets, sizes, fault patterns and concurrency limits, on OpenAIChat and
    LangChainChat, conversations with tool calls, servers that do not report usage or count
    more tokens than a client could estimate, and a PRM's pooling calls: the servers' own counts
    never exceed a ceiling."""
    budget = Budget(calls=calls, output_tokens=output_tokens, total_tokens=total_tokens)
    if client == "langchain":  # LangChain's own retries are requests the meter cannot see
        faults, server = FaultPlan(rate=0.0), server | {"flavour": "llamacpp"}
    prm = PoolingStub().start() if strategy.endswith("+prm") else None
    with LoopbackServer(handler, honour_n=honour_n, faults=faults, **server) as loopback:

        async def run():
            retry = RetryPolicy(attempts=3, initial_wait=0.001, max_wait=0.01)
            where = prm.url if prm else "http://127.0.0.1:9"
            async with (
                OpenAIChat(
                    "m",
                    base_url=loopback.base_url,
                    api_key="k",
                    retry=retry,
                    max_concurrency=concurrency,
                ) as model,
                VLLMPRM("prm", base_url=where, step_tag=TAG, retry=retry) as pooling,
            ):
                generator: ChatModel = model
                if client == "langchain":
                    chat = ChatOpenAI(
                        model="m", base_url=loopback.base_url, api_key="k", max_retries=0
                    )
                    tools = chat.bind_tools([ADD]) if conversation == "tools" else chat
                    generator = LangChainChat(tools, continuation="prefill")
                elif conversation == "tools":
                    generator = model.bind_tools([ADD])
                node = build(strategy.removesuffix("+prm"), generator, model, n, prm and pooling)
                prompt = TOOL_CONVERSATION if conversation == "tools" else "Answer briefly."
                try:
                    return await node.ainvoke(prompt, budget=budget.model_dump())
                except TTCError as exc:  # nothing fitted, or faults outlasted the retries
                    event(f"{strategy}: {type(exc).__name__}")
                    return None

        try:
            result = asyncio.run(run())
        finally:
            if prm is not None:
                prm.stop()
        spent = billed(loopback) + (pooled(prm) if prm else Usage())
        lookups = len(loopback.lookups)
    event("nothing fitted" if result is None else f"budget_limited={result.budget_limited}")
    if calls is not None:
        assert spent.calls + lookups <= calls
    if output_tokens is not None:
        assert spent.completion_tokens <= output_tokens
    if total_tokens is not None:
        assert spent.total_tokens <= total_tokens
    if strategy == "think_harder":  # the preset's own budget holds too
        assert spent.calls + lookups <= 9
    if result is not None and not budget.limited and strategy != "think_harder":
        assert not result.budget_limited
    if result is not None and server["usage"] and faults.rate == 0:
        assert result.usage.total.total_tokens <= spent.total_tokens  # never more than billed


async def test_exhausted_budget_returns_the_best_so_far(loopback):
    server = loopback(handler, honour_n=False)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        judge = RubricJudge("helpfulness", model, mode="structured")
        node = best_of_n(model, judge, n=4, max_tokens=40, budget=Budget(calls=6))
        result = await node.ainvoke("Q")
    assert result.budget_limited
    assert len(server.requests) == 6
    assert len(result.candidates) == 4
    assert sum(c.score is not None for c in result.candidates) == 2
    assert result.best.score is not None  # chosen among the judged ones


async def test_budget_per_invocation_and_unlimited_by_default(loopback):
    server = loopback(handler)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        node = majority_vote(model, n=4, answer="exact", max_tokens=30)
        free = await node.ainvoke("Q")
        assert not free.budget_limited and len(free.candidates) == 4
        with pytest.raises(BudgetExhausted, match="calls"):
            await node.ainvoke("Q", budget={"calls": 0})
        with pytest.raises(ConfigurationError, match="budget"):
            await node.ainvoke("Q", budget={"calls": -1})


async def test_max_tokens_is_capped_to_what_is_left(loopback):
    server = loopback(handler)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        node = majority_vote(model, n=1, answer="exact", budget=Budget(output_tokens=5))
        result = await node.ainvoke("Q")
    assert server.requests[0].body["max_tokens"] == 5
    assert result.usage.generation.completion_tokens <= 5


async def test_deadline_stops_new_calls(loopback):
    server = loopback(handler, latency=0.2, honour_n=False)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", max_concurrency=1) as model:
        budget = Budget(deadline=2.0)
        node = majority_vote(model, n=16, answer="exact", max_tokens=20, budget=budget)
        result = await node.ainvoke("Q")
    assert result.budget_limited
    assert 1 <= len(result.candidates) < 16
    # one call at a time, each at least 0.2 s: no more than 10 can start before the deadline
    assert len(server.requests) <= 10


def test_cost_budget_needs_prices_and_counts_money():
    with pytest.raises(ValueError, match="needs prices"):
        Budget(cost=1.0)
    meter = Meter(Budget(cost=0.01, prices={"m": Price(input=1000, output=2000)}))
    ticket = meter.reserve("m", prompt_tokens=4, output_tokens=2)  # 0.004 + 0.004
    with pytest.raises(BudgetExhausted, match="cost"):
        meter.reserve("m", prompt_tokens=4, output_tokens=2)
    meter.settle(ticket, "m", Usage(prompt_tokens=1, completion_tokens=1, calls=1))
    assert meter.spent.cost == pytest.approx(0.003)
    with pytest.raises(BudgetExhausted, match="no price for model 'other'"):
        meter.reserve("other", prompt_tokens=1, output_tokens=1)


async def test_max_tokens_shrinks_to_fit_and_marks_the_result(loopback):
    server = loopback(handler, honour_n=True)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        node = majority_vote(
            model, n=4, answer="exact", max_tokens=10, budget=Budget(output_tokens=25)
        )
        result = await node.ainvoke("Q")
    assert result.budget_limited
    assert [(r.body.get("n"), r.body["max_tokens"]) for r in server.requests] == [(4, 6)]


async def test_when_n_at_once_does_not_fit_single_requests_take_what_does(loopback):
    server = loopback(handler, honour_n=True)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        node = majority_vote(
            model, n=4, answer="exact", max_tokens=10, budget=Budget(output_tokens=3)
        )
        result = await node.ainvoke("Q")
    assert result.budget_limited
    assert len(result.candidates) == 1  # 4 choices cannot share 3 tokens; one request of 3 can
    assert [(r.body.get("n", 1), r.body["max_tokens"]) for r in server.requests] == [(1, 3)]
