"""Steps continue the assistant's text on the servers people run (vLLM, llama.cpp, OpenAI)."""

from __future__ import annotations

import json

import pytest

from ttc_agent import (
    Budget,
    BudgetExhausted,
    ConfigurationError,
    OpenAIChat,
    adaptive,
    best_of_n,
)
from ttc_agent.strategies.beam_search import beam_search
from ttc_agent.strategies.dvts import dvts
from ttc_agent.testing import Reply, fenced
from ttc_agent.types import Score, StepScores, Usage

PROMPT = [{"role": "user", "content": "Q"}]


def steps(request):
    """A step generator: says how deep the text it continues already is."""
    depth = (request.prefix or "").count("\n\n")
    return f"step {depth + 1}\n\nrest"


class Depth:
    """A step verifier that likes every step; step search needs one."""

    name = "depth"

    async def score_steps(self, prompt, solutions):
        return [StepScores(steps=[0.5] * len(s), usage=Usage()) for s in solutions]


class Length:
    name = "length"

    async def score(self, prompt, candidates, *, on_score=None):
        return [Score(value=len(c), normalized=0.5) for c in candidates]


def search(model, strategy="beam_search"):
    if strategy == "dvts":
        return dvts(model, Depth(), n=4, subtrees=2, max_steps=3, max_step_tokens=10)
    return beam_search(model, Depth(), n=4, keep=2, max_steps=3, max_step_tokens=10)


async def test_vllm_flags_reach_every_request_when_n_is_split(loopback):
    """n over several requests (the server ignores n): every one must ask to continue."""
    server = loopback(steps, honour_n=False)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", continuation="vllm") as model:
        completions = await model.sample(PROMPT, 3, prefix="a\n\n")
        again = await model.sample(PROMPT, 2, prefix="a\n\n")
    flags = [r.body.get("continue_final_message") for r in server.requests]
    assert flags == [True] * 5
    assert [r.body.get("add_generation_prompt") for r in server.requests] == [False] * 5
    assert [c.text for c in completions + again] == ["step 2\n\nrest"] * 5


@pytest.mark.parametrize("strategy", ["beam_search", "dvts"])
async def test_steps_continue_on_vllm_by_default(loopback, strategy):
    """The default (auto) asks /v1/models once, sees vLLM and sends its flags."""
    server = loopback(steps, flavour="vllm")
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        result = await search(model, strategy).ainvoke("Q")
    later = [r for r in server.requests if r.messages[-1]["role"] == "assistant"]
    assert later and all(r.body["continue_final_message"] for r in later)
    assert {r.prefix.count("\n\n") for r in later} == {1, 2}  # steps 2 and 3 continue 1 and 2
    assert all(c.text == "step 1\n\nstep 2\n\nstep 3" for c in result.candidates)
    assert server.lookups == ["/v1/models"]


async def test_steps_continue_on_llamacpp_through_its_own_template(loopback):
    server = loopback(steps, flavour="llamacpp")
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        result = await search(model).ainvoke("Q")
    later = [r for r in server.requests if r.prompt is not None]
    rendered = "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
    assert later and all(r.prompt.startswith(rendered) for r in later)
    assert {r.prefix.count("\n\n") for r in later} == {1, 2}
    assert all(c.text == "step 1\n\nstep 2\n\nstep 3" for c in result.candidates)
    assert server.lookups == ["/v1/models", "/apply-template"]  # one conversation, one render


async def test_openai_refuses_step_search_before_any_request(loopback):
    server = loopback(steps, flavour="openai")
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        with pytest.raises(ConfigurationError) as refused:
            await search(model).ainvoke("Q")
    message = str(refused.value)
    assert server.base_url in message and "fresh" in message
    assert all(choice in message for choice in ("vllm", "llamacpp", "chatml", "prefill"))
    assert "\n" not in message
    assert server.requests == []


async def test_an_unknown_server_or_none_listed_is_refused_by_name(loopback):
    for server in (loopback(steps), loopback(steps, list_models=False)):
        async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
            with pytest.raises(ConfigurationError, match="continuation="):
                await search(model).ainvoke("Q")
        assert server.requests == []


async def test_strategies_without_steps_never_ask(loopback):
    """A server without /v1/models serves best_of_n: the 404 is never asked for."""
    server = loopback(steps, list_models=False)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        result = await best_of_n(model, Length(), n=2).ainvoke("Q")
    assert len(result.candidates) == 2
    assert server.lookups == []


async def test_adaptive_sends_a_hard_question_to_best_of_n_where_steps_cannot_continue(loopback):
    """The probes are paid for: a server that cannot continue gets best-of-N, not an error."""
    answers = iter(f"It is {k}." for k in range(100))
    server = loopback(lambda request: next(answers), flavour="openai")
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        node = adaptive(model, Length(), Budget(calls=400), step_verifier=Depth())
        result = await node.ainvoke("Hard question")
    assert result.settings["decision"]["difficulty"] == "hard"
    assert result.settings["decision"]["strategy"] == "weighted_best_of_n"
    assert server.lookups == ["/v1/models"]
    assert all(r.messages[-1]["role"] == "user" for r in server.requests)


async def test_prefill_on_vllm_would_not_continue(loopback):
    """What the old default did on vLLM: a final assistant message gets a fresh reply."""
    server = loopback(steps, flavour="vllm")
    async with OpenAIChat(
        "m", base_url=server.base_url, api_key="k", continuation="prefill"
    ) as model:
        [completion] = await model.sample(PROMPT, prefix="step 1\n\n")
    assert completion.text == "step 1\n\nrest"  # a new first step, not step 2
    assert server.lookups == []  # an explicit choice is not second-guessed


async def test_the_setting_comes_from_the_environment(loopback, monkeypatch):
    server = loopback(steps, flavour="openai")
    monkeypatch.setenv("TTC_CONTINUATION", "prefill")
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        assert model.continuation == "prefill"
    monkeypatch.setenv("TTC_CONTINUATION", "sideways")
    with pytest.raises(ConfigurationError, match="continuation must be one of auto, prefill"):
        OpenAIChat("m", base_url=server.base_url, api_key="k")


async def test_the_embedded_model_uses_chatml_without_asking():
    model = OpenAIChat(embedded="0.5b")
    assert await model.continuation_mode() == "chatml"
    assert model.base_url is None  # nothing was started to find out


async def test_the_lookup_is_metered(loopback):
    server = loopback(steps, flavour="vllm")
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        node = search(model)
        with pytest.raises(BudgetExhausted, match="calls"):
            await node.ainvoke("Q", budget={"calls": 0})
        assert server.lookups == [] and server.requests == []
        result = await node.ainvoke("Q", budget={"calls": 2})
    assert result.budget_limited
    assert len(server.lookups) + len(server.requests) == 2  # the lookup and one step


def test_budget_default_is_unlimited():
    assert not Budget().limited


def test_the_command_line_continues_on_vllm_and_stops_on_openai(loopback):
    from test_cli import ttc

    def solver(request):
        if fenced(request.last_user) is not None:  # the math_step judge: one digit
            return Reply("1", alternatives={0: {"1": -0.2, "0": -1.7}})
        return steps(request)

    vllm, openai = loopback(solver, flavour="vllm"), loopback(solver, flavour="openai")
    args = ("run", "Q", "--strategy", "beam_search", "-n", "2", "--keep", "1", "--max-steps", "2")
    done = ttc(*args, "--json", server=vllm)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["candidates"][0]["text"] == "step 1\n\nstep 2"
    refused = ttc(*args, server=openai)
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("ttc: error: step search needs to continue partial replies")
    assert openai.base_url in line and "--continuation" in line
    assert openai.requests == []
    chosen = ttc(*args, "--continuation", "prefill", "--json", server=loopback(solver))
    assert chosen.returncode == 0, chosen.stderr
    assert json.loads(chosen.stdout)["candidates"][0]["text"] == "step 1\n\nstep 2"
