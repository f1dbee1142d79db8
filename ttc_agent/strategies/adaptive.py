"""Compute-optimal selection: estimate a question's difficulty, then pick the strategy and n.

A cheap probe samples ``probe`` answers and scores them. A ``Policy`` (plain data: the default,
one you change, or one ``ttc eval --fit-policy`` fitted and ``Policy.load`` reads) reads the
difficulty from the probe (the answers' agreement and the scores' spread, or the fitted bins of
the mean score; with ``Policy.hard_confidence`` set, also the model's own confidence as it
wrote them, ``ttc_agent.confidence``: the probe asks for logprobs, no call more) and maps it
and what is left of the budget to a strategy and n; the default follows Snell et al. (beam
search at low budgets on medium and hard questions, best-of-N at high budgets and on easy
ones). The chosen strategy then spends the rest of the budget; for
majority voting and (weighted) best-of-N the probe answers count among its n, so the probe
costs nothing extra. Do no harm: when the policy records that its verifier is no better than
chance (an AUROC interval containing 0.5) and the answers can be compared, the choice becomes
majority voting (self-consistency) at the same n. The decision and its reasons are recorded in
``settings["decision"]`` of the result.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any, TypeAlias, Unpack

from pydantic import BaseModel, ConfigDict, Field

from ttc_agent.answers import last_number
from ttc_agent.budget import Budget, BudgetExhausted, current_meter
from ttc_agent.errors import ConfigurationError
from ttc_agent.protocols import (
    AnswerKey,
    ChatModel,
    Parts,
    StepVerifier,
    Verifier,
    can_continue,
    required,
)
from ttc_agent.strategies import _tasks as tasks
from ttc_agent.strategies._node import StateKeys, StrategyNode, make_settings
from ttc_agent.strategies._policy import Choice, Policy
from ttc_agent.strategies._progress import emit
from ttc_agent.strategies._selection import Selection, count_votes, finish
from ttc_agent.types import Completion, Message, Score, SearchResult, SearchUsage, Usage

if TYPE_CHECKING:
    from ttc_agent.strategies.registry import Strategy

NAME = "adaptive"

REUSE: dict[str, Selection] = {
    "majority_vote": "majority",
    "best_of_n": "best",
    "weighted_best_of_n": "weighted",
}
"""The choices the probe answers count toward, with the selection each chooses by: the probe
answers are the first of their n samples. Any other choice runs a registered strategy afresh."""


class AdaptiveSettings(BaseModel):
    """Settings of ``adaptive``; each can be overridden per invocation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    probe: int = Field(default=4, ge=2)
    temperature: float = Field(default=0.8, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)
    policy: Policy = Field(default_factory=Policy)


async def search(prompt: list[Message], settings: AdaptiveSettings, parts: Parts) -> SearchResult:
    """Probe, decide (recorded in ``settings["decision"]``), then spend the rest on the choice."""
    check_policy(settings.policy)
    model, verifier = parts.model, required(parts.verifier, "verifier")
    logprobs = {} if settings.policy.hard_confidence is None else {"top_logprobs": 20}
    probes = await tasks.sample_some(model, prompt, settings.probe, settings, NAME, **logprobs)
    scores = await tasks.score_some(verifier, prompt, [c.text for c in probes], NAME)
    choice, decision = await _decide(probes, scores, settings, parts)
    emit("decided", NAME, decision=decision)
    if choice.strategy in REUSE:  # the probes are the first of the n samples
        return await _complete(prompt, settings, choice, probes, scores, decision, parts)
    row = _registered(choice.strategy)
    result = await row.run(prompt, parts, _values(choice, settings, row.size))
    probe_usage = SearchUsage(
        generation=Usage.sum([c.usage for c in probes]),
        verification=Usage.sum([s.usage for s in scores if s is not None]),
    )
    return result.model_copy(
        update={
            "strategy": NAME,
            "settings": {"decision": decision, "inner": result.strategy} | result.settings,
            "usage": SearchUsage(
                generation=probe_usage.generation + result.usage.generation,
                verification=probe_usage.verification + result.usage.verification,
            ),
        }
    )


async def _decide(
    probes: list[Completion],
    scores: list[Score | None],
    settings: AdaptiveSettings,
    parts: Parts,
) -> tuple[Choice, dict[str, Any]]:
    """The policy's choice for the probed difficulty and the calls left, and why."""
    answer_key, policy = required(parts.answer_key, "answer_key"), settings.policy
    keys = [answer_key(c.text) for c in probes]
    votes = count_votes(keys)
    agreement = max(votes.values(), default=0) / len(probes)
    values = [s.normalized for s in scores if s is not None]
    spread = statistics.pstdev(values) if len(values) > 1 else 0.0
    mean_score = statistics.fmean(values) if values else None
    read = [c.confidence.lowest_group for c in probes if c.confidence is not None]
    confidence = statistics.fmean(read) if read else None
    difficulty = policy.difficulty(agreement, spread, mean_score, confidence)
    meter = current_meter()
    calls_left = None
    if meter is not None and meter.budget.calls is not None:
        calls_left = meter.budget.calls - meter.spent.calls - meter.reserved.calls
    choice = policy.choose(difficulty, calls_left)
    if not await _runnable(choice.strategy, parts):  # the probes go to best-of-N instead
        choice = choice.model_copy(update={"strategy": "weighted_best_of_n"})
    chosen, caveat = _do_no_harm(choice, policy, keys)
    calls = "unlimited calls" if calls_left is None else f"{calls_left} calls left"
    probed = f"largest group {agreement:.0%}, score spread {spread:.2f}"
    if policy.score_bins is not None and mean_score is not None:
        probed = f"mean score {mean_score:.2f}"
    if confidence is not None:
        probed += f", confidence {confidence:.2f}"
    reason = f"{len(probes)} probe answers: {probed} -> {difficulty}; {calls} -> {caveat}"
    decision: dict[str, Any] = {"difficulty": difficulty, "agreement": agreement, "spread": spread}
    decision |= {"mean_score": mean_score, "confidence": confidence, "calls_left": calls_left}
    decision |= {"strategy": chosen.strategy, "n": chosen.n}
    if chosen is not choice:
        decision["fallback"] = "self-consistency"
    return chosen, decision | {"reason": reason}


def _do_no_harm(choice: Choice, policy: Policy, keys: list[str | None]) -> tuple[Choice, str]:
    """The choice, or majority voting at its n where the policy's verifier is no better than
    chance and most probe answers have an answer to compare (a new ``Choice``); and the choice
    in words."""
    chosen = f"{choice.strategy} n={choice.n}"
    if policy.verifier is None or not policy.verifier.at_chance:
        return choice, chosen
    if choice.strategy == "majority_vote":
        return choice, chosen
    if sum(key is not None for key in keys) * 2 <= len(keys):
        why = f"the {policy.verifier.why()}, but the answers cannot be compared"
        return choice, f"{chosen} ({why}: the verifier still chooses)"
    vote = choice.model_copy(update={"strategy": "majority_vote"})
    why = f"the {policy.verifier.why()}: self-consistency"
    return vote, f"majority_vote n={choice.n} instead of {choice.strategy} ({why})"


async def _runnable(name: str, parts: Parts) -> bool:
    """Whether the parts can run this choice: a step search needs a step verifier and a model
    that continues partial replies."""
    if name in REUSE:
        return True
    needs = _registered(name).needs
    if parts.missing(needs):
        return False
    return "step_verifier" not in needs or await can_continue(parts.model)


async def _complete(
    prompt: list[Message],
    settings: AdaptiveSettings,
    choice: Choice,
    probes: list[Completion],
    probe_scores: list[Score | None],
    decision: dict[str, Any],
    parts: Parts,
) -> SearchResult:
    """Sample and score the rest of the chosen n, then select with the chosen rule: the
    probe answers are samples like any other, so none is paid for twice."""
    model, verifier = parts.model, required(parts.verifier, "verifier")
    more: list[Completion] = []
    if choice.n > len(probes):
        count, progress = choice.n - len(probes), {"done": len(probes), "total": choice.n}
        try:
            more = await tasks.sample_some(model, prompt, count, settings, NAME, **progress)
        except BudgetExhausted:
            more = []  # nothing more fits: choose among the probes
    texts = [c.text for c in more]
    more_scores = await tasks.score_some(verifier, prompt, texts, NAME) if more else []
    candidates = tasks.with_scores(
        tasks.candidates_from([*probes, *more], parts.answer_key), [*probe_scores, *more_scores]
    )
    record = {"decision": decision, "inner": choice.strategy, "n": choice.n}
    record |= {"verifier": verifier.name, "model": model.name}
    return finish(NAME, candidates, REUSE[choice.strategy], record)


def _values(choice: Choice, settings: AdaptiveSettings, size: str | None) -> dict[str, Any]:
    """The chosen strategy's settings: the choice's n (its size) and keep, the sampling ones."""
    values: dict[str, Any] = {"keep": choice.keep, "temperature": settings.temperature}
    values["max_tokens"] = settings.max_tokens
    return values if size is None else values | {size: choice.n}


def check_policy(policy: Policy) -> None:
    """Raise ``ConfigurationError`` for a choice that names no strategy adaptive can run."""
    for row in policy.table:
        if row.strategy not in REUSE and _registered(row.strategy).chooses:
            raise ConfigurationError(f"adaptive cannot choose {row.strategy!r}: it chooses too")


def _registered(name: str) -> Strategy[Any]:
    """The registry's row for ``name`` (read when needed: the registry lists adaptive too)."""
    from ttc_agent.strategies.registry import strategy

    return strategy(name)


Adaptive: TypeAlias = StrategyNode[AdaptiveSettings]
"""The type of a compute-optimal node (build one with ``adaptive``); kept for one release."""


def adaptive(
    model: ChatModel,
    verifier: Verifier,
    budget: Budget | None = None,
    policy: Policy | None = None,
    *,
    answer_key: AnswerKey = last_number,
    step_verifier: StepVerifier | None = None,
    probe: int = 4,
    temperature: float = 0.8,
    max_tokens: int | None = None,
    **options: Unpack[StateKeys],
) -> Adaptive:
    """A compute-optimal node: probe, estimate difficulty, let the policy pick, spend the rest.

    Args:
        model: samples everything.
        verifier: scores the probe and best-of-N candidates.
        budget: the ceiling for probe and search together (the third argument here, as it is
            what the policy decides by; see ``NodeOptions``).
        policy: how difficulty is read and the strategy table (``Policy()`` by default, after
            Snell et al.; ``Policy.load("policy.json")`` for one ``ttc eval --fit-policy``
            fitted).
        answer_key: extracts the answer used to measure agreement (default: the last number).
        step_verifier: lets the policy choose beam search for the hardest questions.
        **options: ``messages_key``, ``result_key`` (see ``StateKeys``).

    Example:
        >>> from ttc_agent import OpenAIChat, RubricJudge
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> node = adaptive(model, RubricJudge("helpfulness", model), Budget(calls=64))
        >>> node.settings.policy.choose("hard", calls_left=40).strategy
        'beam_search'
    """
    values = {"probe": probe, "temperature": temperature, "max_tokens": max_tokens}
    settings = make_settings(NAME, AdaptiveSettings, values | {"policy": policy or Policy()})
    check_policy(settings.policy)
    parts = Parts(model, verifier=verifier, step_verifier=step_verifier, answer_key=answer_key)
    return StrategyNode(NAME, search, settings, parts, budget=budget, **options)
