"""One shape for every strategy: a settings model and a search function, run by one node and
listed once in the registry, which the command line, the proxy, the evaluation and the
strategies that choose others read. Adding a strategy is one file and one registry row."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ConfigDict, Field
from test_serve import Proxy, client
from test_serve import handler as upstream_answers
from test_step_search import NumberVerifier, Stepper

from ttc_agent import (
    ConfigurationError,
    OpenAIChat,
    Policy,
    Preset,
    RubricJudge,
    adaptive,
    beam_search,
    dvts,
    think_harder,
)
from ttc_agent.protocols import Parts
from ttc_agent.serve import ProxyConfig
from ttc_agent.strategies import preset_strategies, registry
from ttc_agent.strategies.adaptive import Choice
from ttc_agent.testing import fenced, judge_reply
from ttc_agent.types import Candidate, Message, SearchResult, SearchUsage, Usage

CRITERIA = ["correctness", "completeness", "specificity", "clarity"]


def answers(request):
    """The judge gives every answer 3; the model's answers differ in length by choice."""
    if fenced(request.last_user) is not None:
        return judge_reply(dict.fromkeys(CRITERIA, 3))
    return ["A rather long reply.", "Short.", "A medium reply."][request.choice % 3]


async def test_a_knob_a_strategy_does_not_have_is_an_unknown_override(model_for):
    """Beam search and DVTS shared one settings model: beam search accepted ``subtrees`` and
    DVTS ``keep``, and both ignored them."""
    _, model = model_for(Stepper(), honour_n=True)
    beams = beam_search(model, NumberVerifier(), n=4, keep=2, max_steps=1)
    with pytest.raises(ConfigurationError, match=r"unknown override\(s\) \['subtrees'\]"):
        await beams.ainvoke("Q", subtrees=2)
    trees = dvts(model, NumberVerifier(), n=4, subtrees=2, max_steps=1)
    with pytest.raises(ConfigurationError, match=r"unknown override\(s\) \['keep'\]"):
        await trees.ainvoke("Q", keep=2)
    assert "subtrees" not in (await beams.ainvoke("Q")).settings
    assert "keep" not in (await trees.ainvoke("Q")).settings


class ShortestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(default=3, ge=1)
    temperature: float = 0.8


async def shortest(prompt: list[Message], settings: ShortestSettings, parts: Parts) -> SearchResult:
    """A strategy of one's own: sample n, keep the shortest answer."""
    completions = await parts.model.sample(prompt, settings.n, temperature=settings.temperature)
    candidates = [Candidate(index=i, text=c.text, usage=c.usage) for i, c in enumerate(completions)]
    chosen = min(range(len(candidates)), key=lambda i: len(candidates[i].text))
    usage = SearchUsage(generation=Usage.sum([c.usage for c in candidates]))
    record = settings.model_dump() | {"model": parts.model.name}
    return SearchResult(
        strategy="shortest", settings=record, candidates=candidates, chosen=chosen, usage=usage
    )


@pytest.fixture
def registered(monkeypatch):
    """The strategy above, added to the registry with one row for the test's length."""
    row = registry.Strategy("shortest", ShortestSettings, shortest, "keep the shortest answer")
    monkeypatch.setitem(registry._STRATEGIES, row.name, row)
    return row


def test_the_command_line_runs_a_registered_strategy(registered, loopback, capsys):
    from ttc_agent.cli import main

    server = loopback(answers, honour_n=True)
    argv = ["run", "Q", "--strategy", "shortest", "-n", "2", "--json", "--base-url"]
    assert main([*argv, server.base_url, "--model", "m"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["strategy"] == "shortest" and len(record["candidates"]) == 2
    assert record["answer"] == "Short." and record["chosen"] == 1


async def test_adding_a_strategy_is_one_file_and_one_registry_row(registered, loopback):
    server = loopback(answers, honour_n=True)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        node = registered.node(Parts(model))  # its node, with per-invocation overrides
        result = await node.ainvoke("Q", n=4)
        assert result.strategy == "shortest" and len(result.candidates) == 4
        assert result.answer == "Short." and result.usage.generation.calls == 1
        with pytest.raises(ConfigurationError, match="unknown override"):
            await node.ainvoke("Q", keep=2)
        judge = RubricJudge("helpfulness", model, mode="structured")
        assert "shortest" in preset_strategies()
        presets = {"high": Preset(strategy="shortest", n=2)}
        result = await think_harder(model, judge, "high", presets).ainvoke("Q")
        assert result.strategy == "shortest" and len(result.candidates) == 2
        table = [Choice(difficulty=d, strategy="shortest", n=5) for d in DIFFICULTY]
        result = await adaptive(model, judge, policy=Policy(table=table)).ainvoke("Q")
        assert result.settings["inner"] == "shortest" and len(result.candidates) == 5


DIFFICULTY = ("easy", "medium", "hard")


def test_the_proxy_runs_a_registered_strategy(registered, loopback):
    upstream = loopback(upstream_answers, honour_n=True)
    with Proxy(ProxyConfig(upstream=upstream.base_url, api_key="client-key")) as proxy:
        reply = client(proxy).chat.completions.create(
            model="m:high",
            messages=[{"role": "user", "content": "Hi"}],
            extra_body={"ttc": {"strategy": "shortest", "n": 2}},
        )
    assert reply.model_extra["ttc"]["strategy"] == "shortest"
    assert reply.model_extra["ttc"]["candidates"] == 2
    assert reply.choices[0].message.content == "an answer 0.0"  # shorter than "the best answer"


def test_the_command_line_lists_the_registry(registered, capsys):
    from ttc_agent.cli import main

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert all(row.name in shown for row in registry.strategies())
    assert "shortest" in shown
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    choices = "{beam_search,dvts,particle_filter,deepconf,deepconf_online}"  # the step searches,
    assert choices in capsys.readouterr().out  # from the rows, and deepconf in its two modes


def test_a_row_checks_the_parts_its_strategy_needs():
    model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
    with pytest.raises(ConfigurationError, match="best_of_n needs verifier, not given"):
        registry.strategy("best_of_n").node(Parts(model))
    with pytest.raises(ConfigurationError, match="beam_search needs step_verifier"):
        registry.strategy("beam_search").node(Parts(model), {"n": 4})
    with pytest.raises(ConfigurationError, match="unknown strategy 'magic'; available: best_of"):
        registry.strategy("magic")


def test_presets_and_policies_name_strategies_they_can_run():
    model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
    judge = RubricJudge("helpfulness", model)
    with pytest.raises(ConfigurationError, match="a preset cannot run 'beam_search'"):
        think_harder(model, judge, presets={"high": Preset(strategy="beam_search")})
    for name, problem in [("think_harder", "adaptive cannot choose"), ("magic", "unknown")]:
        policy = Policy(table=[Choice(difficulty="easy", strategy=name, n=2)])
        with pytest.raises(ConfigurationError, match=f"{problem} .*'{name}'"):
            adaptive(model, judge, policy=policy)


async def test_think_harder_presets_are_settings_an_invocation_may_override(loopback):
    server = loopback(answers, honour_n=True)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
        node = think_harder(model, RubricJudge("helpfulness", model, mode="structured"), "low")
        high = {"strategy": "best_of_n", "n": 2}
        result = await node.ainvoke("Q", effort="high", presets={"high": high})
        assert result.strategy == "best_of_n" and len(result.candidates) == 2
        assert (await node.ainvoke("Q")).settings["preset"]["n"] == 4  # low, as built
