"""Concurrency follows the work: by default a strategy's round (n samples, n judge calls) goes
out at once, however large n is, up to a generous bound; a limit that is set still holds."""

from __future__ import annotations

import threading
import time

import pytest
from langchain_openai import ChatOpenAI

from ttc_agent import (
    VLLMPRM,
    Budget,
    ConfigurationError,
    LangChainChat,
    OpenAIChat,
    RubricJudge,
    best_of_n,
)
from ttc_agent.budget import metered
from ttc_agent.models.endpoint import ROUND_BOUND
from ttc_agent.testing import fenced, judge_reply

PROMPT = [{"role": "user", "content": "Name a colour."}]


class InFlight:
    """A handler whose chosen requests take ``seconds`` each; it records the most at once."""

    def __init__(self, seconds: float, reply=lambda request: "ok", slow=lambda request: True):
        self.seconds, self.reply, self.slow = seconds, reply, slow
        self.active = self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, request):
        if not self.slow(request):
            return self.reply(request)
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.seconds)
        with self._lock:
            self.active -= 1
        return self.reply(request)


def judged(request):
    candidate = fenced(request.last_user)
    if candidate is None:
        return f"draft {request.choice}"
    return judge_reply(dict.fromkeys(["clarity", "style", "engagement", "relevance"], 3))


async def test_best_of_n_judges_32_candidates_in_one_round_by_default(loopback):
    judge_calls = InFlight(0.3, judged, slow=lambda request: fenced(request.last_user) is not None)
    server = loopback(judge_calls)  # honours n: one sampling request, then 32 judge calls
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        node = best_of_n(model, RubricJudge("writing_quality", model), n=32)
        await node.ainvoke("Write a line about the sea.")
    assert len(server.requests) == 33
    assert judge_calls.peak == 32  # all 32 judge calls at once: one round, not two


async def test_the_default_bound_holds_beyond_a_round(loopback):
    calls = InFlight(0.5)
    server = loopback(calls, honour_n=False)
    n = ROUND_BOUND + 8
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", n_mode="parallel") as model:
        completions = await model.sample(PROMPT, n)
    assert len(completions) == n
    assert calls.peak == ROUND_BOUND


async def test_a_limit_that_is_set_still_holds(loopback):
    calls = InFlight(0.05)
    server = loopback(calls, honour_n=False)
    async with OpenAIChat(
        "m", base_url=server.base_url, api_key="k", max_concurrency=3, n_mode="parallel"
    ) as model:
        completions = await model.sample(PROMPT, 12)
    assert len(completions) == 12
    assert calls.peak == 3


async def test_langchain_models_send_a_round_of_32_at_once_by_default(loopback):
    calls = InFlight(0.3)
    server = loopback(calls)
    chat = ChatOpenAI(model="m", base_url=server.base_url, api_key="k", max_retries=0)
    completions = await LangChainChat(chat).sample(PROMPT, 32)
    assert len(completions) == 32
    assert calls.peak == 32


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_refused_by_every_model(limit):
    url = "http://127.0.0.1:9/v1"
    makers = [
        lambda: OpenAIChat("m", base_url=url, api_key="k", max_concurrency=limit),
        lambda: LangChainChat(ChatOpenAI(model="m", api_key="k"), max_concurrency=limit),
        lambda: VLLMPRM("prm", base_url=url, max_concurrency=limit),
    ]
    for make in makers:
        with pytest.raises(ConfigurationError, match="max_concurrency must be at least 1"):
            make()


async def test_a_round_sent_at_once_buys_what_it_bought_a_few_at_a_time(loopback):
    """Each judge call reserves its worst case (512 tokens): 32 at once do not fit in 12,000,
    but they bill about 100 each, so the calls that do not fit yet wait for the others to
    settle rather than go unasked."""
    server = loopback(InFlight(0.1, judged, slow=lambda request: False))
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        judge = RubricJudge("writing_quality", model)
        node = best_of_n(model, judge, n=32, max_tokens=64, budget=Budget(output_tokens=12000))
        result = await node.ainvoke("Write a line about the sea.")
    assert all(candidate.score is not None for candidate in result.candidates)
    assert not result.budget_limited
    assert result.usage.total.completion_tokens <= 12000


async def test_langchain_calls_that_do_not_fit_yet_wait_for_those_in_flight(loopback):
    server = loopback(InFlight(0.05))
    chat = ChatOpenAI(model="m", base_url=server.base_url, api_key="k", max_retries=0)
    with metered(Budget(output_tokens=1000)) as meter:  # 10 worst cases of 100 at once
        completions = await LangChainChat(chat).sample(PROMPT, 32, max_tokens=100)
    assert len(completions) == 32  # each billed one token: all fit, a few at a time
    assert meter.spent.output_tokens <= 1000 and not meter.exhausted
