"""Particle filtering over partial solutions (Puri et al., "Rollout Roulette", arXiv
2502.01618): probabilistic step search instead of beam search's deterministic pruning.

``n`` particles (partial solutions) each grow by one step per round. A particle's log-weight is
the logit of its score: its step verifier scores aggregated (a PRM, ``LLMStepJudge``, a
``RubricJudge`` on partial drafts), or, with no verifier, the generator's own confidence in its
steps (their mean logprob, or their entropy). Then ``n`` particles are drawn by weight
(multinomially or systematically) to grow in the next round: likely ones are copied, unlikely
ones dropped, a particle scored 0 never drawn. When one particle holds nearly all the weight
(the effective sample size below ``ess_threshold`` of ``n``) the weights are tempered first, so
that one early verdict does not decide the search. Finished particles keep their place and
weight, and may be drawn again; the search ends when all have finished or at ``max_steps``.
The answer is the heaviest finished particle, or, with an ``answer_key``, the answer the
particles' weights add up highest for (a weighted vote). Weighing and drawing particles is in
``_particles``, sampling and scoring steps in ``_steps``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any, TypeAlias, Unpack

from pydantic import Field

from ttc_agent.bills import recording
from ttc_agent.budget import within_budget
from ttc_agent.errors import BudgetExhausted, ConfigurationError
from ttc_agent.protocols import (
    AnswerKey,
    ChatModel,
    Parts,
    StepVerifier,
    Verifier,
    preferred_aggregate,
)
from ttc_agent.strategies import _tasks as tasks
from ttc_agent.strategies._beams import Beam, has_final_answer
from ttc_agent.strategies._node import NodeOptions, StrategyNode, make_settings
from ttc_agent.strategies._particles import (
    Confidence,
    Particle,
    Resampling,
    effective_sample_size,
    grown,
    log_weight,
    resample,
    tempered,
    weights,
)
from ttc_agent.strategies._progress import counted_together, emit
from ttc_agent.strategies._selection import Selection, finish
from ttc_agent.strategies._steps import StepSettings, expand, extend, step_parts
from ttc_agent.types import (
    Aggregate,
    Message,
    Score,
    SearchResult,
    SearchUsage,
    Usage,
)

NAME = "particle_filter"
TOP_LOGPROBS = 5
"""Alternatives asked for at each token when weighing steps by their entropy."""


class ParticleFilterSettings(StepSettings):
    """Settings of ``particle_filter``: the step settings (``StepSettings``; ``n`` is the
    number of particles) and how particles are weighed, drawn and chosen.

    Attributes:
        resampling: ``multinomial`` (independent draws) or ``systematic`` (one draw spread
            over evenly spaced positions: each particle gets within one of its share).
        ess_threshold: temper the weights when the effective sample size falls below this
            share of ``n`` (0: never).
        confidence: without a step verifier, a step's weight is the generator's confidence in
            it: ``logprob`` (the geometric mean of its tokens' probabilities) or ``entropy``
            (one minus the mean entropy of each token's top alternatives).
        vote: with an answer key, choose the answer the weights add up highest for (False:
            the heaviest particle's).
        seed: seeds the draws, so that a run (and a resumed one) draws the same particles.
    """

    resampling: Resampling = "multinomial"
    ess_threshold: float = Field(default=0.5, ge=0, le=1)
    confidence: Confidence = "logprob"
    vote: bool = True
    seed: int = 0


def particle_defaults(parts: Parts) -> dict[str, Any]:
    """The settings that depend on the parts: the step verifier's preferred aggregate, or,
    weighing by logprobs, the mean confidence of the steps."""
    verifier = parts.step_verifier
    return {"aggregate": preferred_aggregate(verifier) if verifier is not None else "mean"}


async def search(
    prompt: list[Message], settings: ParticleFilterSettings, parts: Parts
) -> SearchResult:
    """Grow ``n`` particles a step at a time, drawing the next ones by weight; choose among
    the last ones."""
    verifier = parts.step_verifier
    if verifier is None and settings.lookahead:
        raise ConfigurationError(
            f"{NAME}: lookahead rolls steps out for a step verifier to score; weighing "
            "particles by the model's logprobs, there is none: give a step verifier or set "
            "lookahead to 0"
        )
    await parts.model.check_continuation()
    is_final = parts.is_final or has_final_answer
    rng, n = random.Random(settings.seed), settings.n
    population = [Particle(Beam())] * n  # one empty solution: step 1 samples n from it
    generation = verification = Usage()
    history: dict[str, list[Any]] = {"ess": [], "temperature": [], "drawn": []}
    step = 0
    for step in range(1, settings.max_steps + 1):
        live = [p for p in population if not p.beam.finished]
        if not live:
            step -= 1
            break
        try:
            with recording() as cut:
                children, spent = await _grow(prompt, _parents(live), settings, parts, is_final)
        except BudgetExhausted:  # the last full round's particles are the result
            generation, verification = generation + cut.generation, verification + cut.verification
            break
        generation, verification = generation + spent.generation, verification + spent.verification
        population = [p for p in population if p.beam.finished] + children
        logs = [log_weight(p.beam.rank) for p in population]
        chances = weights(logs)
        history["ess"].append(round(effective_sample_size(chances), 3))
        going = any(not p.beam.finished for p in population) and step < settings.max_steps
        if going:  # draw the particles of the next round
            progress = step / settings.max_steps
            drawn, temperature = tempered(logs, progress, settings.ess_threshold)
            picks = resample(drawn, n, settings.resampling, rng)
            population = [population[i] for i in picks]
            history["temperature"].append(round(temperature, 3))
            history["drawn"].append(len(set(picks)))
        live_now = sum(not p.beam.finished for p in population)
        where: dict[str, Any] = {"live": live_now, "finished": len(population) - live_now}
        where |= {"ess": history["ess"][-1], "best": max(p.beam.rank for p in population)}
        emit("step", NAME, step=step, total=settings.max_steps if going else step, **where)
        if not going:
            break
    usage = SearchUsage(generation=generation, verification=verification)
    return _solution(population, settings, parts, usage, history | {"steps": step})


def _parents(live: list[Particle]) -> list[tuple[Particle, int]]:
    """The distinct particles to grow and how many children each (its copies), in order."""
    counts: dict[int, list[Any]] = {}
    for particle in live:
        counts.setdefault(id(particle), [particle, 0])[1] += 1
    return [(particle, count) for particle, count in counts.values()]


async def _grow(
    prompt: list[Message],
    parents: list[tuple[Particle, int]],
    settings: ParticleFilterSettings,
    parts: Parts,
    is_final: Callable[[str], bool],
) -> tuple[list[Particle], SearchUsage]:
    """One more step for every live particle, scored by the step verifier or by logprobs."""
    if parts.step_verifier is not None:
        beams = [(particle.beam, count) for particle, count in parents]
        beams_grown, spent = await expand(
            parts.model, parts.step_verifier, prompt, beams, settings, NAME, is_final
        )
        return [Particle(beam) for beam in beams_grown], spent
    top = TOP_LOGPROBS if settings.confidence == "entropy" else 0
    model, total = parts.model, sum(count for _, count in parents)
    with counted_together("sampled", NAME, total, tree=0):
        extended = await asyncio.gather(
            *(
                extend(model, prompt, particle.beam, count, settings, NAME, top_logprobs=top)
                for particle, count in parents
            ),
            return_exceptions=True,
        )
    batches = within_budget(tasks.lost_as_empty(extended, [count for _, count in parents]))
    children = []
    for (parent, _), completions in zip(parents, batches, strict=True):
        for completion in completions:
            children.append(grown(parent, completion, settings, is_final, f"{NAME}: {model.name}"))
    generation = Usage.sum([c.usage for batch in batches for c in batch])
    return children, SearchUsage(generation=generation)


def _solution(
    population: list[Particle],
    settings: ParticleFilterSettings,
    parts: Parts,
    usage: SearchUsage,
    history: dict[str, Any],
) -> SearchResult:
    """Choose among the last particles (the finished ones whenever any finished)."""
    beams = [p.beam for p in population if p.beam.finished] or [
        p.beam.model_copy(update={"finish_reason": "max_steps"}) for p in population
    ]
    if not beams or not beams[0].steps:
        raise BudgetExhausted("the budget ran out before a first step was scored")
    chances = weights([log_weight(beam.rank) for beam in beams])
    delimiter, aggregate = settings.step_delimiter, settings.aggregate
    candidates = []
    for i, (beam, chance) in enumerate(zip(beams, chances, strict=True)):
        candidate = beam.candidate(i, delimiter, aggregate, parts.answer_key)
        score = Score(value=beam.rank, normalized=chance, mode=f"particle:{aggregate}")
        candidates.append(candidate.model_copy(update={"score": score}))
    selection: Selection = "weighted" if parts.answer_key and settings.vote else "best"
    verifier = parts.step_verifier
    weighed_by = verifier.name if verifier is not None else f"logprobs:{settings.confidence}"
    record = settings.model_dump() | {"verifier": weighed_by, "model": parts.model.name}
    return finish(NAME, candidates, selection, record | history, usage)


ParticleFilter: TypeAlias = StrategyNode[ParticleFilterSettings]
"""The type of a particle-filter node (build one with ``particle_filter``)."""


def particle_filter(
    model: ChatModel,
    step_verifier: StepVerifier | Verifier | None = None,
    n: int = 16,
    max_steps: int = 40,
    step_delimiter: str = "\n\n",
    aggregate: Aggregate | None = None,
    *,
    resampling: Resampling = "multinomial",
    ess_threshold: float = 0.5,
    confidence: Confidence = "logprob",
    vote: bool = True,
    seed: int = 0,
    lookahead: int = 0,
    temperature: float = 0.8,
    max_step_tokens: int | None = 256,
    answer_key: AnswerKey | None = None,
    is_final: Callable[[str], bool] = has_final_answer,
    **options: Unpack[NodeOptions],
) -> ParticleFilter:
    """A particle-filtering node: ``n`` particles grown a step at a time, drawn by weight.

    Args:
        model: samples steps (continuing the assistant's text; see ``OpenAIChat(continuation=)``).
        step_verifier: weighs steps: ``TransformersPRM``, ``VLLMPRM``, ``LLMStepJudge``, a
            ``RubricJudge`` (on partial drafts, through ``DraftStepVerifier``), or None to weigh
            them by the model's own logprobs (build it with ``logprobs=True``).
        resampling, ess_threshold, confidence, vote, seed: see ``ParticleFilterSettings``.
        n, max_steps, lookahead, step_delimiter, aggregate, temperature, max_step_tokens: the
            step settings, documented once in ``StepSettings``; ``n`` is the number of
            particles. ``aggregate`` defaults to the verifier's preference (``mean`` when
            weighing by logprobs).
        answer_key: choose by a weighted vote over answers (see ``vote``).
        is_final: says whether a step ends the solution, where the server does not say.
        **options: ``budget``, ``messages_key``, ``result_key`` (see ``NodeOptions``).

    Example:
        >>> from ttc_agent import OpenAIChat
        >>> from ttc_agent.verifiers.step_judge import LLMStepJudge
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> node = particle_filter(model, LLMStepJudge(model), n=8, resampling="systematic")
        >>> node.settings.n, node.settings.aggregate, particle_filter(model).settings.aggregate
        (8, 'min', 'mean')
    """
    if step_verifier is None:
        parts = Parts(model, answer_key=answer_key, is_final=is_final)
    else:
        parts = step_parts(model, step_verifier, step_delimiter, answer_key, is_final)
    values: dict[str, Any] = {"n": n, "max_steps": max_steps, "lookahead": lookahead}
    values |= {"step_delimiter": step_delimiter, "temperature": temperature}
    values |= {"max_step_tokens": max_step_tokens, "resampling": resampling}
    values |= {"ess_threshold": ess_threshold, "confidence": confidence, "vote": vote}
    given = values | {"seed": seed} | ({} if aggregate is None else {"aggregate": aggregate})
    settings = make_settings(NAME, ParticleFilterSettings, particle_defaults(parts) | given)
    return StrategyNode(NAME, search, settings, parts, **options)
