"""Every strategy survives faults: at 20 % injected faults it picks what it picks without them.

The loopback world is deterministic in content: a reply depends only on the request's text and
the choice's position, never on timing or on how many requests came before, so a retried
request gets the same reply and any difference in the choice would be the library's fault.
"""

from __future__ import annotations

import hashlib

import pytest

from ttc_agent import (
    LLMStepJudge,
    ModelError,
    OpenAIChat,
    Policy,
    RetryPolicy,
    RubricJudge,
    ab_mcts,
    adaptive,
    beam_search,
    best_of_n,
    dvts,
    load_card,
    majority_vote,
    particle_filter,
    refine,
    think_harder,
)
from ttc_agent.answers import last_number
from ttc_agent.strategies.adaptive import Choice
from ttc_agent.testing import FAULT_KINDS, Fault, FaultPlan, fenced, judge_reply

CARD = load_card("helpfulness")
RETRY = RetryPolicy(attempts=8, initial_wait=0.005, max_wait=0.05)


def digest(*parts: object) -> int:
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:8], 16)


def world(request):
    """Judges score by a digest of the candidate; generators answer by a digest of the prompt."""
    candidate = fenced(request.last_user)
    if candidate is not None:
        if "one digit" in request.last_user:  # the logprob step judge
            return str(digest(candidate) % 2)
        scores = {c.name: digest(candidate, c.name) % 5 + 1 for c in CARD.criteria}
        return judge_reply(scores)
    seed = digest(request.last_user, request.prefix, request.choice)
    depth = (request.prefix or "").count("\n\n") + 1
    if request.prefix is not None or request.body.get("stop"):  # a step of a step search
        if depth >= 3 or seed % 4 == 0:
            return f"step {depth}: so the answer is \\boxed{{{seed % 5}}}"
        return f"step {depth}: think {seed % 97}\n\nmore"
    return f"Working ({seed % 89}) ... The answer is {seed % 4}."


# adaptive under faults: a table whose every choice samples and judges 8 (the default table's
# low-budget choices are cheap, or a step search this test does not give a step verifier)
EIGHT = Policy(
    table=[
        Choice(difficulty=d, strategy="weighted_best_of_n", n=8) for d in ("easy", "medium", "hard")
    ]
)


def strategies(model: OpenAIChat) -> dict[str, object]:
    judge = RubricJudge("helpfulness", model)
    steps = LLMStepJudge(model)
    return {
        "best_of_n": best_of_n(model, judge, n=6),
        "weighted": best_of_n(model, judge, n=6, answer_key=last_number),
        "majority_vote": majority_vote(model, n=6, answer=last_number, verifier=judge),
        "beam_search": beam_search(model, steps, n=4, keep=2, max_steps=3),
        "dvts": dvts(model, steps, n=4, subtrees=2, max_steps=3),
        "particle_filter": particle_filter(model, steps, n=4, max_steps=3),
        "refine": refine(model, judge, rounds=2, width=2, keep=1),
        "ab_mcts": ab_mcts(model, judge, n=6, batch=2),
        "adaptive": adaptive(model, judge, policy=EIGHT, probe=3, budget={"calls": 30}),
        "think_harder": think_harder(model, judge, effort="medium"),
    }


@pytest.fixture
def models(loopback):
    """(clean, faulty): the same world behind a clean server and one with 20 % faults. The
    client's timeout leaves a busy machine room (a request that merely waits for a core must not
    time out, or it costs a retry no fault caused); a hang outlasts it."""
    clean = loopback(world, flavour="vllm")
    faulty = loopback(world, faults=FaultPlan(rate=0.2, seed=11, hang=3.0), flavour="vllm")
    made = [
        OpenAIChat("m", base_url=server.base_url, api_key="k", timeout=2.0, retry=RETRY)
        for server in (clean, faulty)
    ]
    return clean, faulty, made  # each test closes the two models


@pytest.mark.parametrize(
    "name",
    [
        "best_of_n",
        "weighted",
        "majority_vote",
        "beam_search",
        "dvts",
        "particle_filter",
        "refine",
        "ab_mcts",
        "adaptive",
        "think_harder",
    ],
)
async def test_same_choice_at_twenty_percent_faults(models, name):
    clean_server, faulty_server, (clean, faulty) = models
    try:
        expected = await strategies(clean)[name].ainvoke("What is the answer?")
        got = await strategies(faulty)[name].ainvoke("What is the answer?")
    finally:
        await clean.aclose()
        await faulty.aclose()
    assert got.answer == expected.answer
    assert got.chosen == expected.chosen
    assert got.failed == 0
    injected = sum(faulty_server.injected.values())
    assert injected > 0
    # bounded retries: every injected fault costs at most one extra request
    assert len(faulty_server.requests) <= len(clean_server.requests) + injected
    assert len(faulty_server.requests) > len(clean_server.requests)


async def test_every_kind_of_fault_is_injected_and_survived(models):
    _, faulty_server, (clean, faulty) = models
    plan = FaultPlan(rate=0.5, seed=3, hang=3.0)
    faulty_server.fault_plan = plan
    try:
        for name in ("best_of_n", "beam_search", "refine"):
            await strategies(faulty)[name].ainvoke("What is the answer?")
    finally:
        await clean.aclose()
        await faulty.aclose()
    assert set(faulty_server.injected) == set(FAULT_KINDS)


async def test_search_goes_on_when_some_samples_fail_for_good(model_for):
    server, model = model_for(world, honour_n=False)
    model = OpenAIChat(
        "m", base_url=server.base_url, api_key="k", n_mode="parallel", retry=RetryPolicy(1)
    )
    server.inject(Fault.server_error(503), times=2)  # the first two samples fail, unretried
    try:
        result = await majority_vote(model, n=6, answer=last_number).ainvoke("Q?")
    finally:
        await model.aclose()
    assert result.failed == 2
    assert len(result.candidates) == 4
    assert result.answer


async def test_step_search_goes_on_when_a_beam_fails_for_good(model_for):
    server, _ = model_for(world)
    model = OpenAIChat(
        "m", base_url=server.base_url, api_key="k", retry=RetryPolicy(1), continuation="prefill"
    )
    steps = LLMStepJudge(model)
    failing = {"left": 1}

    def world_with_one_lost_expansion(request):
        if request.prefix is not None and failing["left"]:
            failing["left"] -= 1
            return Fault.server_error(500)
        return world(request)

    server.handler = world_with_one_lost_expansion
    try:
        result = await beam_search(model, steps, n=4, keep=2, max_steps=3).ainvoke("Q?")
    finally:
        await model.aclose()
    assert result.failed == 2  # one survivor's n // keep = 2 expansions were lost
    assert result.answer


async def test_when_every_sample_fails_one_clear_error(model_for):
    server, _ = model_for(world, honour_n=False)
    model = OpenAIChat(
        "m", base_url=server.base_url, api_key="k", n_mode="parallel", retry=RetryPolicy(2)
    )
    server.inject(Fault.server_error(503), times=100)
    try:
        with pytest.raises(ModelError, match="503") as caught:
            await best_of_n(model, RubricJudge("helpfulness", model), n=4).ainvoke("Q?")
    finally:
        await model.aclose()
    assert "k" not in str(caught.value).split()
