"""particle_filter against the loopback server: particles grow a step at a time (continuing the
assistant's text), are weighed by a step verifier or by the model's own logprobs, and are drawn
again by weight."""

from __future__ import annotations

import re

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph

from ttc_agent import ConfigurationError, OpenAIChat, particle_filter
from ttc_agent.answers import last_number
from ttc_agent.strategies import search_result
from ttc_agent.testing import Reply
from ttc_agent.types import StepScores, Usage


def steps(request):
    """Step 1 of choice c is "a<c>"; step 2, continuing "a<c>", is "b<c><choice>", which ends
    with an answer. A particle's text names its whole path."""
    prefix = request.prefix or ""
    if not prefix:
        return f"a{request.choice}\n\nnot this step"
    parent = prefix.strip().split("\n\n")[-1][1:]
    return f"b{parent}{request.choice} so the answer is \\boxed{{{parent}}}"


class TableVerifier:
    """Scores a step by a table (steps it does not list score 0.5); counts its calls."""

    name = "table"

    def __init__(self, table: dict[str, float], fail_on_call: int | None = None) -> None:
        self.table, self.calls, self.fail_on_call = table, 0, fail_on_call

    async def score_steps(self, prompt, solutions):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("the verifier fell over")
        return [
            StepScores(
                steps=[self.table.get(step.split()[0], 0.5) for step in solution],
                usage=Usage(prompt_tokens=1, calls=1),
            )
            for solution in solutions
        ]


def continued(server) -> list[str]:
    """The last step each continuing request grows, once per choice it asks for."""
    return [
        r.prefix.strip().split("\n\n")[-1]
        for r in server.requests
        for _ in range(r.body.get("n", 1))
        if r.prefix
    ]


@pytest.mark.parametrize("resampling", ["multinomial", "systematic"])
async def test_a_zero_weight_particle_is_never_resampled(model_for, resampling):
    server, model = model_for(steps)
    verifier = TableVerifier({"a0": 0.0, "a1": 0.4, "a2": 0.6, "a3": 0.5})
    drawn: set[str] = set()
    for seed in range(12):
        server.reset()
        node = particle_filter(model, verifier, n=4, max_steps=2, resampling=resampling, seed=seed)
        result = await node.ainvoke("Q")
        grown = continued(server)
        assert len(grown) == 4 and "a0" not in grown  # drawn by weight, never the zero
        assert not any(c.text.startswith("a0") for c in result.candidates)
        drawn |= set(grown)
    assert drawn == {"a1", "a2", "a3"}  # the others are drawn, by chance


async def test_copies_grow_together_and_finished_particles_keep_their_place(model_for):
    server, model = model_for(steps)

    def first_ends(request):
        if not request.prefix and request.choice == 3:
            return "a3 so the answer is \\boxed{3}"
        return steps(request)

    server.handler = first_ends
    verifier = TableVerifier({"a0": 0.0, "a1": 0.0, "a2": 0.9, "a3": 0.9})
    node = particle_filter(model, verifier, n=4, max_steps=3, resampling="systematic")
    result = await node.ainvoke("Q")
    first, *later = server.requests
    assert first.prefix is None and first.body["n"] == 4  # one request for the first step
    [grown] = later  # a2's two copies grow in one request; the finished a3's are kept as they are
    assert grown.prefix == "a2\n\n" and grown.body["n"] == 2
    assert sorted(c.text.split(" so")[0] for c in result.candidates) == [
        "a2\n\nb20",
        "a2\n\nb21",
        "a3",
        "a3",
    ]
    assert result.answer.startswith("a3")  # 0.9 against the new steps' 0.5
    assert result.settings["steps"] == 2 and len(result.settings["ess"]) == 2
    assert result.settings["drawn"] == [2] and result.settings["temperature"] == [1.0]


async def test_weighted_vote_over_answers_or_the_heaviest_particle(model_for):
    def answers(request):
        return f"a{request.choice} so the answer is \\boxed{{{5 if request.choice == 2 else 4}}}"

    _, model = model_for(answers)
    verifier = TableVerifier({"a0": 0.7, "a1": 0.7, "a2": 0.8, "a3": 0.7})
    node = particle_filter(model, verifier, n=4, max_steps=2, answer_key=last_number)
    voted = await node.ainvoke("Q")
    assert voted.selection == "weighted" and last_number(voted.answer) == "4"
    assert sum(c.score.normalized for c in voted.candidates) == pytest.approx(1.0)
    assert voted.group_scores["4"] == pytest.approx(3 * (7 / 3) / (3 * (7 / 3) + 4))
    heaviest = await node.ainvoke("Q", vote=False)
    assert heaviest.selection == "best" and last_number(heaviest.answer) == "5"


def confident(request):
    """Choices 0 and 1 are sure of their first step, 2 and 3 unsure; later steps are sure."""
    if request.prefix:
        return steps(request)
    text = f"a{request.choice}"
    if request.choice < 2:
        return Reply(text + "\n\nmore")
    return Reply(text + "\n\nmore", alternatives={0: {text: -3.0, "other": -0.1}})


@pytest.mark.parametrize("confidence", ["logprob", "entropy"])
async def test_without_a_verifier_particles_are_weighed_by_the_models_logprobs(
    model_for, confidence
):
    server, model = model_for(confident)
    node = particle_filter(model, n=4, max_steps=2, confidence=confidence, seed=3)
    result = await node.ainvoke("Q")
    assert set(continued(server)) <= {"a0", "a1"}  # the sure ones are drawn
    assert all(r.body.get("logprobs") for r in server.requests)
    assert result.settings["verifier"] == f"logprobs:{confidence}"
    assert result.settings["aggregate"] == "mean"
    assert all(c.step_scores == [1.0, 1.0] for c in result.candidates)


async def test_a_cut_steps_logprob_weight_counts_the_whole_step(model_for):
    def cut_then_unsure(request):
        if not request.prefix:  # 5 sure tokens, cut at the limit
            return Reply("a sure start of it\n\n")
        return Reply("x", alternatives={0: {"x": -1.0, "y": -0.5}})  # 1 unsure token, ends

    server, model = model_for(cut_then_unsure)
    node = particle_filter(model, n=2, max_steps=3, max_step_tokens=5, is_final=lambda s: True)
    result = await node.ainvoke("Q")
    assert server.requests[1].prefix == "a sure start"  # continued, no delimiter added
    [value] = result.candidates[0].step_scores  # one step, weighed as a whole: (5 * 0 - 1) / 6
    assert value == pytest.approx(2.718281828 ** (-1 / 6))


async def test_weighing_by_logprobs_needs_a_model_that_returns_them(model_for):
    server, _ = model_for(steps)
    async with OpenAIChat(
        "m", base_url=server.base_url, api_key="k", continuation="prefill", logprobs=False
    ) as model:
        with pytest.raises(
            ConfigurationError, match=r"m returned no token logprobs .* logprobs=True"
        ):
            await particle_filter(model, n=2, max_steps=2).ainvoke("Q")
        with pytest.raises(ConfigurationError, match=r"lookahead .* set lookahead to 0"):
            await particle_filter(model, n=2, lookahead=1).ainvoke("Q")


async def test_the_search_record_progress_and_overrides(model_for):
    _, model = model_for(steps)
    node = particle_filter(model, TableVerifier({}), n=4, max_steps=2)
    events = [
        event
        async for event in node.graph.astream({"messages": [("user", "Q")]}, stream_mode="custom")
    ]
    rounds = [e for e in events if e["ttc"] == "step"]
    assert [e["step"] for e in rounds] == [1, 2] and rounds[-1]["total"] == 2
    assert rounds[0]["ess"] == 4.0  # equal weights: worth all four
    assert events[-1]["ttc"] == "selected"
    assert {e["ttc"] for e in events} >= {"sampled", "scored"}
    result = await node.ainvoke("Q", resampling="systematic", ess_threshold=0.0)
    assert result.settings["resampling"] == "systematic"
    assert result.settings["temperature"] == [1.0]
    with pytest.raises(ConfigurationError, match=r"unknown override\(s\) \['keep'\]"):
        await node.ainvoke("Q", keep=2)
    with pytest.raises(ConfigurationError, match="resampling: Input should be 'multinomial'"):
        await node.ainvoke("Q", resampling="stratified")


async def test_out_of_budget_the_last_full_round_is_the_result(model_for):
    server, model = model_for(steps, honour_n=False)
    node = particle_filter(model, TableVerifier({}), n=4, max_steps=3)
    result = await node.ainvoke("Q", budget={"calls": 6})
    assert result.budget_limited and len(server.requests) == 6
    assert len(result.candidates) == 4
    assert all(c.finish_reason == "max_steps" for c in result.candidates)
    assert result.usage.generation.calls == 6


async def test_a_resumed_search_draws_the_same_particles_without_paying_twice(model_for):
    server, model = model_for(steps)
    graph = StateGraph(MessagesState)
    failing = TableVerifier({"a1": 0.9, "a2": 0.2}, fail_on_call=2)
    graph.add_node("answer", particle_filter(model, failing, n=4, max_steps=2, seed=5))
    graph.add_edge(START, "answer")
    app = graph.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    with pytest.raises(RuntimeError, match="fell over"):
        await app.ainvoke({"messages": [("user", "Q")]}, config)
    before = len(server.requests)
    assert before == 1 + len(set(continued(server)))  # step 1, and step 2's samples
    resumed = search_result(await app.ainvoke(None, config))
    assert len(server.requests) == before  # nothing sampled again
    clean = particle_filter(model, TableVerifier({"a1": 0.9, "a2": 0.2}), n=4, max_steps=2, seed=5)
    uninterrupted = await clean.ainvoke("Q")
    assert [c.text for c in resumed.candidates] == [c.text for c in uninterrupted.candidates]
    assert re.fullmatch(r"a\d\n\nb\d\d so the answer is \\boxed\{\d\}", resumed.answer)


async def test_a_preset_or_a_policy_may_run_it_weighed_by_logprobs(model_for):
    from ttc_agent import Preset, RubricJudge, think_harder

    server, model = model_for(steps)
    presets = {"high": Preset(strategy="particle_filter", n=4)}
    judge = RubricJudge("helpfulness", model)
    result = await think_harder(model, judge, "high", presets).ainvoke("Q")
    assert result.strategy == "particle_filter" and len(result.candidates) == 4
    assert result.settings["verifier"] == "logprobs:logprob"  # a preset gives it no step judge
    assert all(r.body.get("logprobs") for r in server.requests)
