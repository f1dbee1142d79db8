"""The "think harder" toggle: effort levels ``none | low | medium | high`` (after OpenAI's
``reasoning_effort``), each a preset strategy that you can override.

``none`` is one plain call. The defaults: ``low`` is best-of-4, ``medium`` best-of-8, ``high``
an expand-the-best revision search (4 drafts, the 2 best revised twice each, two rounds). The
effort can change from one turn to the next without rebuilding the graph: per invocation
(``{"configurable": {"ttc": {"effort": "high"}}}`` or a runtime context ``{"ttc": {...}}``), or
through the state (an ``effort`` key, when your state has one; declare it with the
``valid_effort`` reducer so that a wrong level is refused before the thread saves it).

Do no harm: given a policy whose verifier record says the judge is no better than chance (its
AUROC interval contains 0.5, as ``ttc eval --fit-policy`` measures it) and an ``answer_key``
to compare answers by, a preset that would let the judge choose runs majority voting
(self-consistency) over the same n instead, and says so in ``settings["decision"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, Unpack

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ttc_agent.answers import ExactEquivalence, KeyEquivalence
from ttc_agent.budget import Budget, Meter, current_meter, metered
from ttc_agent.errors import ConfigurationError
from ttc_agent.protocols import AnswerKey, ChatModel, Parts, Verifier, required
from ttc_agent.strategies import _tasks as tasks
from ttc_agent.strategies._node import NodeOptions, StrategyNode, make_settings
from ttc_agent.strategies._policy import Policy, VerifierRecord
from ttc_agent.strategies._progress import emit
from ttc_agent.types import Message, SearchResult, SearchUsage, Usage

if TYPE_CHECKING:
    from ttc_agent.strategies.registry import Strategy

NAME = "think_harder"
Effort = Literal["none", "low", "medium", "high"]
EFFORTS: tuple[Effort, ...] = ("none", "low", "medium", "high")


def valid_effort(current: str | None, update: str | None) -> str | None:
    """A state reducer for a graph's ``effort`` key: an unknown level is refused as the input
    arrives, before it is saved to the thread, so a typo cannot break the thread's later turns.

    Declare the key as ``effort: Annotated[str, valid_effort]``.

    Example:
        >>> valid_effort("low", "high")
        'high'
    """
    if update is not None and update not in EFFORTS:
        raise ConfigurationError(f"effort must be one of {', '.join(EFFORTS)}, got {update!r}")
    return update


class Preset(BaseModel):
    """What one effort level runs: ``plain`` (one call) or a strategy that needs no more than
    the judge (``best_of_n``, ``majority_vote`` on exact answers, ``refine``: see
    ``preset_strategies``), with ``n`` its size (refine's ``width``), ``rounds`` and ``keep``
    where it has them, and a budget of its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: str
    n: int = Field(default=1, ge=1)
    rounds: int = Field(default=2, ge=0)
    keep: int = Field(default=1, ge=1)
    budget: Budget | None = None


DEFAULT_PRESETS: dict[str, Preset] = {
    "none": Preset(strategy="plain"),
    "low": Preset(strategy="best_of_n", n=4),
    "medium": Preset(strategy="best_of_n", n=8),
    "high": Preset(strategy="refine", n=2, keep=2, rounds=2),
}


class ThinkHarderSettings(BaseModel):
    """The effort of a turn, the sampling settings the presets share, and the presets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    effort: Effort = "medium"
    temperature: float = Field(default=0.8, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)
    presets: dict[str, Preset] = Field(default_factory=lambda: dict(DEFAULT_PRESETS))
    """What each level runs: the levels a table names, the defaults for the others. An
    invocation's table replaces the node's whole (``{"ttc": {"presets": {"high": {...}}}}``)."""
    judge_record: VerifierRecord | None = None
    """What an evaluation measured of the judge (a policy's ``verifier``); at chance, the
    presets that let the judge choose fall back to self-consistency."""

    @field_validator("presets", mode="after")
    @classmethod
    def _every_level(cls, presets: dict[str, Preset]) -> dict[str, Preset]:
        return {**DEFAULT_PRESETS, **presets}


async def search(
    prompt: list[Message], settings: ThinkHarderSettings, parts: Parts
) -> SearchResult:
    """Run this turn's preset, under its own budget (which can only tighten the invocation's)."""
    preset = settings.presets[settings.effort]
    emit("effort", NAME, effort=settings.effort, preset=preset.strategy, n=preset.n)
    outer = current_meter()  # this invocation's budget: the preset's can only tighten it
    budget = outer if preset.budget is None else Meter(preset.budget, parent=outer)
    decision = _do_no_harm(preset, settings.judge_record, parts)
    with metered(budget) as meter:
        if preset.strategy == "plain":
            result = await _plain(prompt, settings, parts)
        elif decision.get("fallback"):
            result = await _vote(prompt, preset, settings, parts)
        else:
            result = await _preset(prompt, preset, settings, parts)
    record: dict[str, Any] = {"effort": settings.effort, "preset": preset.model_dump(mode="json")}
    record |= {"decision": decision} if decision else {}
    limited = result.budget_limited or (meter is not None and meter.exhausted)
    return result.model_copy(
        update={
            "settings": record | result.settings,
            "strategy": result.strategy,
            "budget_limited": limited,
        }
    )


async def _plain(
    prompt: list[Message], settings: ThinkHarderSettings, parts: Parts
) -> SearchResult:
    [completion] = await tasks.sample(parts.model, prompt, 1, settings, NAME)
    [candidate] = tasks.candidates_from([completion])
    return SearchResult(
        strategy="none",
        settings={"model": parts.model.name},
        candidates=[candidate],
        chosen=0,
        usage=SearchUsage(generation=completion.usage, verification=Usage()),
    )


async def _preset(
    prompt: list[Message], preset: Preset, settings: ThinkHarderSettings, parts: Parts
) -> SearchResult:
    """The preset's registered strategy, with the judge (and exact answers, for a vote)."""
    row = _presettable(preset.strategy)
    values: dict[str, Any] = {"rounds": preset.rounds, "keep": preset.keep}
    values |= {"temperature": settings.temperature, "max_tokens": settings.max_tokens}
    if row.size is not None:
        values[row.size] = preset.n
    judge = required(parts.verifier, "verifier")
    given = Parts(parts.model, verifier=judge, equivalence=ExactEquivalence())
    return await row.run(prompt, given, values)


def _do_no_harm(preset: Preset, judge: VerifierRecord | None, parts: Parts) -> dict[str, Any]:
    """Whether this preset falls back to self-consistency, and why (empty: the judge is not
    known to be at chance, or the preset does not let it choose)."""
    if judge is None or not judge.at_chance or preset.strategy == "plain":
        return {}
    if "verifier" not in _presettable(preset.strategy).needs:
        return {}
    if parts.answer_key is None:
        why = f"the {judge.why()}, but the answers cannot be compared (no answer_key)"
        return {"reason": f"{why}: {preset.strategy} n={preset.n} and its judge"}
    reason = f"the {judge.why()}: majority_vote n={preset.n} instead of {preset.strategy}"
    return {"fallback": "self-consistency", "reason": reason}


async def _vote(
    prompt: list[Message], preset: Preset, settings: ThinkHarderSettings, parts: Parts
) -> SearchResult:
    """Self-consistency over the preset's n, answers compared by the answer key."""
    row = _presettable("majority_vote")
    values = {"n": preset.n, "temperature": settings.temperature}
    key = required(parts.answer_key, "answer_key")
    given = Parts(parts.model, equivalence=KeyEquivalence(key))
    return await row.run(prompt, given, values | {"max_tokens": settings.max_tokens})


def preset_strategies() -> tuple[str, ...]:
    """What a preset may run: ``plain``, and every registered strategy that needs no more than a
    verifier and an answer equivalence and chooses no other.

    Example:
        >>> preset_strategies()
        ('plain', 'best_of_n', 'majority_vote', 'particle_filter', 'refine', 'deepconf', 'ab_mcts')
    """
    from ttc_agent.strategies.registry import strategies  # it lists think_harder too

    offered = {"verifier", "equivalence"}
    names = [row.name for row in strategies() if row.needs <= offered and not row.chooses]
    return ("plain", *names)


def _presettable(name: str) -> Strategy[Any]:
    from ttc_agent.strategies.registry import strategy  # it lists think_harder too

    if name not in preset_strategies():
        raise ConfigurationError(
            f"a preset cannot run {name!r}; use one of {', '.join(preset_strategies())}"
        )
    return strategy(name)


def check_presets(presets: Mapping[str, Preset]) -> None:
    """Raise ``ConfigurationError`` for a preset whose strategy is not one a preset may run."""
    for preset in presets.values():
        if preset.strategy != "plain":
            _presettable(preset.strategy)


ThinkHarder: TypeAlias = StrategyNode[ThinkHarderSettings]
"""The type of a think-harder node (build one with ``think_harder``); kept for one release."""


def think_harder(
    model: ChatModel,
    judge: Verifier | None = None,
    effort: Effort = "medium",
    presets: Mapping[str, Preset] | None = None,
    *,
    temperature: float = 0.8,
    max_tokens: int | None = None,
    effort_key: str = "effort",
    policy: Policy | None = None,
    answer_key: AnswerKey | None = None,
    **options: Unpack[NodeOptions],
) -> ThinkHarder:
    """A node whose effort (``none | low | medium | high``) can change every turn.

    Args:
        model: answers (and, by default, judges).
        judge: the verifier of the searching presets (default: the ``helpfulness`` card).
        effort: the level when a turn names none.
        presets: override some or all levels, e.g. ``{"high": Preset(strategy="best_of_n",
            n=16, budget=Budget(total_tokens=40_000))}``.
        effort_key: the state key read for a per-turn effort.
        policy: only its ``verifier`` record is read (``Policy.load("policy.json")``): when it
            says the judge is no better than chance, presets that let the judge choose run
            self-consistency instead, where ``answer_key`` can compare the answers.
        answer_key: extracts an answer to compare (``last_number``), for that fallback.
        **options: ``budget``, ``messages_key``, ``result_key`` (see ``NodeOptions``).

    Example:
        >>> from ttc_agent import OpenAIChat
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> node = think_harder(model, effort="low")
        >>> node.settings.presets["low"].n
        4
    """
    if judge is None:
        from ttc_agent.verifiers.rubric_judge import RubricJudge

        judge = RubricJudge("helpfulness", model)
    values: dict[str, Any] = {"effort": effort, "temperature": temperature}
    values |= {"max_tokens": max_tokens, "judge_record": policy.verifier if policy else None}
    settings = make_settings(NAME, ThinkHarderSettings, values | {"presets": dict(presets or {})})
    check_presets(settings.presets)
    state = {effort_key: "effort"}
    parts = Parts(model, verifier=judge, answer_key=answer_key)
    return StrategyNode(NAME, search, settings, parts, state_settings=state, **options)
