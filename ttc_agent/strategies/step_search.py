"""Step-level search shared by beam_search and dvts: grow one tree of partial solutions.

Each round samples one more step for every live partial solution (continuing the assistant's
text up to the step delimiter), scores the steps with a step verifier, sets finished solutions
aside, keeps the ``keep`` best live ones and expands each ``width // keep`` times.
"""

from __future__ import annotations

import asyncio
import re
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ttc_agent.budget import Budget, BudgetExhausted, within_budget
from ttc_agent.models.protocol import ChatModel
from ttc_agent.strategies import tasks
from ttc_agent.strategies.node import StrategyNode
from ttc_agent.strategies.progress import emit
from ttc_agent.strategies.selection import select_best, select_weighted
from ttc_agent.tally import tallied
from ttc_agent.types import (
    Aggregate,
    Candidate,
    Completion,
    Message,
    Score,
    SearchResult,
    SearchUsage,
    Usage,
    aggregate_scores,
)
from ttc_agent.verifiers.step_protocol import StepVerifier

_FINAL = re.compile(r"\\boxed\{|answer is|final answer|^####", re.IGNORECASE | re.MULTILINE)


def has_final_answer(step: str) -> bool:
    """The default end-of-solution test for servers that do not say why a reply stopped.

    Example:
        >>> has_final_answer(r"So the answer is \\boxed{4}."), has_final_answer("Next, add 2.")
        (True, False)
    """
    return bool(_FINAL.search(step))


class StepSearchSettings(BaseModel):
    """Settings shared by the step-level strategies; each can be overridden per invocation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(default=16, ge=1)
    keep: int = Field(default=4, ge=1)
    subtrees: int = Field(default=1, ge=1)
    max_steps: int = Field(default=40, ge=1)
    lookahead: int = Field(default=0, ge=0)
    step_delimiter: str = Field(default="\n\n", min_length=1)
    aggregate: Aggregate = "last"
    temperature: float = Field(default=0.8, ge=0)
    max_step_tokens: int | None = Field(default=256, ge=1)

    @model_validator(mode="after")
    def _divisible(self) -> StepSearchSettings:
        if self.n % self.subtrees:
            raise ValueError(f"n ({self.n}) must be a multiple of subtrees ({self.subtrees})")
        width = self.n // self.subtrees
        if width % self.keep:
            raise ValueError(f"n per tree ({width}) must be a multiple of keep ({self.keep})")
        return self


class Beam(BaseModel):
    """One partial (or finished) solution: its steps and their scores."""

    model_config = ConfigDict(frozen=True)

    steps: list[str] = Field(default_factory=list)
    scores: list[float] = Field(default_factory=list)
    finished: bool = False
    finish_reason: str | None = None
    usage: Usage = Usage()  # generation along this solution's own path
    tree: int = 0
    rank: float = 0.0  # what selection compares: the aggregate, lookahead steps included

    def text(self, delimiter: str) -> str:
        return delimiter.join(self.steps)

    def score(self, aggregate: Aggregate) -> float:
        """The aggregated score of this solution's own steps."""
        return aggregate_scores(self.scores, aggregate)


class Tree(BaseModel):
    """What growing one tree produced."""

    beams: list[Beam]
    generation: Usage = Usage()  # every step sampled, pruned and lookahead ones included
    verification: Usage = Usage()
    steps: int = 0


async def grow(
    model: ChatModel,
    verifier: StepVerifier,
    prompt: list[Message],
    settings: StepSearchSettings,
    *,
    width: int,
    keep: int,
    strategy: str,
    is_final: Callable[[str], bool] = has_final_answer,
    tree: int = 0,
) -> Tree:
    """Grow one tree with ``width`` live solutions per step, keeping ``keep`` each step."""
    parents: list[tuple[Beam, int]] = [(Beam(tree=tree), width)]
    finished: list[Beam] = []
    live: list[Beam] = []
    generation = verification = Usage()
    step = 0
    for step in range(1, settings.max_steps + 1):
        try:
            with tallied() as cut:
                children, spent = await _step(
                    model, verifier, prompt, parents, settings, strategy, is_final
                )
        except BudgetExhausted:  # the last full step's beams are the result; the cut step's
            generation, verification = generation + cut.generation, verification + cut.verification
            break  # spend (as the servers billed it) still counts
        generation, verification = generation + spent.generation, verification + spent.verification
        finished += [child for child in children if child.finished]
        live = [child for child in children if not child.finished]
        best = max((c.rank for c in children), default=0.0)
        emit(
            "step",
            strategy,
            step=step,
            tree=tree,
            live=len(live),
            finished=len(finished),
            best=best,
        )
        if not live or len(finished) >= width:
            break
        order = sorted(range(len(live)), key=lambda i: (-live[i].rank, i))
        parents = [(live[i], width // keep) for i in order[:keep]]
    unfinished = (
        [] if finished else [b.model_copy(update={"finish_reason": "max_steps"}) for b in live]
    )
    return Tree(
        beams=finished + unfinished, generation=generation, verification=verification, steps=step
    )


async def _step(
    model: ChatModel,
    verifier: StepVerifier,
    prompt: list[Message],
    parents: list[tuple[Beam, int]],
    settings: StepSearchSettings,
    strategy: str,
    is_final: Callable[[str], bool],
) -> tuple[list[Beam], SearchUsage]:
    """One step: extend every parent ``count`` times, roll out lookahead, score the steps."""
    delimiter = settings.step_delimiter
    extended = await asyncio.gather(
        *(_extend(model, prompt, parent, count, settings, strategy) for parent, count in parents),
        return_exceptions=True,
    )
    batches = within_budget(tasks.lost_as_empty(extended, [count for _, count in parents]))
    children = [
        _child(parent, completion, delimiter, is_final)
        for (parent, _), completions in zip(parents, batches, strict=True)
        for completion in completions
    ]
    rollouts = within_budget(
        await asyncio.gather(
            *(_rollout(model, prompt, child, settings, strategy, is_final) for child in children),
            return_exceptions=True,
        )
    )
    to_score = [child.steps + extra for child, (extra, _) in zip(children, rollouts, strict=True)]
    scored = await tasks.score_steps(verifier, prompt, to_score)
    children = [
        child.model_copy(
            update={
                "scores": s.steps[: len(child.steps)],
                "rank": aggregate_scores(s.steps, settings.aggregate),
            }
        )
        for child, s in zip(children, scored, strict=True)
    ]
    generation = Usage.sum([c.usage for batch in batches for c in batch])
    generation = generation + Usage.sum([usage for _, usage in rollouts])
    return children, SearchUsage(
        generation=generation, verification=Usage.sum([s.usage for s in scored])
    )


async def _extend(
    model: ChatModel,
    prompt: list[Message],
    parent: Beam,
    count: int,
    settings: StepSearchSettings,
    strategy: str,
    temperature: float | None = None,
) -> list[Completion]:
    options: dict[str, Any] = {"stop": [settings.step_delimiter]}
    options["max_tokens"] = settings.max_step_tokens
    if temperature is not None:
        options["temperature"] = temperature
    if parent.steps:
        options["prefix"] = parent.text(settings.step_delimiter) + settings.step_delimiter
    return await tasks.sample(model, prompt, count, settings, strategy, **options)


def _child(
    parent: Beam, completion: Completion, delimiter: str, is_final: Callable[[str], bool]
) -> Beam:
    step = completion.text.strip("\n") if not delimiter.strip() else completion.text
    says_ended = completion.ended is None and completion.finish_reason == "stop"
    ended = completion.ended is True or (says_ended and (not step.strip() or is_final(step)))
    steps = [*parent.steps, step] if step.strip() or not parent.steps else parent.steps
    return Beam(
        steps=steps,
        scores=parent.scores,
        finished=ended,
        finish_reason=completion.finish_reason if ended else None,
        usage=parent.usage + completion.usage,
        tree=parent.tree,
    )


async def _rollout(
    model: ChatModel,
    prompt: list[Message],
    child: Beam,
    settings: StepSearchSettings,
    strategy: str,
    is_final: Callable[[str], bool],
) -> tuple[list[str], Usage]:
    """Greedy lookahead steps used to score ``child`` (not kept in the solution)."""
    extra: list[str] = []
    usage = Usage()
    current = child
    for _ in range(settings.lookahead if not child.finished else 0):
        [completion] = await _extend(model, prompt, current, 1, settings, strategy, temperature=0.0)
        usage = usage + completion.usage
        current = _child(current, completion, settings.step_delimiter, is_final)
        if len(current.steps) > len(child.steps) + len(extra):
            extra.append(current.steps[-1])
        if current.finished:
            break
    return extra, usage


class StepSearchNode(StrategyNode):
    """What beam_search and dvts share: grow trees, then choose among their final solutions."""

    settings_type = StepSearchSettings

    def __init__(
        self,
        model: ChatModel,
        verifier: StepVerifier,
        settings: StepSearchSettings,
        *,
        answer_key: Callable[[str], str | None] | None = None,
        is_final: Callable[[str], bool] = has_final_answer,
        budget: Budget | None = None,
        messages_key: str = "messages",
        result_key: str | None = None,
    ) -> None:
        super().__init__(settings, budget=budget, messages_key=messages_key, result_key=result_key)
        self.model, self.verifier = model, verifier
        self.answer_key, self.is_final = answer_key, is_final

    @abstractmethod
    async def trees(self, prompt: list[Message], settings: StepSearchSettings) -> list[Tree]:
        """Grow this strategy's trees."""

    async def search(self, prompt: list[Message], settings: StepSearchSettings) -> SearchResult:
        await self.model.check_continuation()  # before any request: steps continue the text
        trees = await self.trees(prompt, settings)
        beams = [beam for tree in trees for beam in tree.beams]
        if not beams:
            raise BudgetExhausted("the budget ran out before a first step was scored")
        candidates = candidates_from_beams(beams, settings, self.answer_key)
        weighted = self.answer_key is not None
        chosen, groups = select_weighted(candidates) if weighted else (select_best(candidates), {})
        best = candidates[chosen].score
        emit("selected", self.strategy, index=chosen, score=best.value if best else None)
        return SearchResult(
            strategy=self.strategy,
            settings=settings.model_dump()
            | {"verifier": self.verifier.name, "model": self.model.name}
            | {"steps": [tree.steps for tree in trees]},
            candidates=candidates,
            chosen=chosen,
            selection="weighted" if weighted else "best",
            group_scores=groups,
            usage=SearchUsage(
                generation=Usage.sum([tree.generation for tree in trees]),
                verification=Usage.sum([tree.verification for tree in trees]),
            ),
        )


def candidates_from_beams(
    beams: Sequence[Beam],
    settings: StepSearchSettings,
    answer_key: Callable[[str], str | None] | None,
) -> list[Candidate]:
    """Final beams as scored candidates (the score is the aggregated step score)."""
    candidates = []
    for i, beam in enumerate(beams):
        text = beam.text(settings.step_delimiter)
        value = beam.score(settings.aggregate)
        candidates.append(
            Candidate(
                index=i,
                text=text,
                finish_reason=beam.finish_reason,
                usage=beam.usage,
                score=Score(value=value, normalized=value, mode=f"steps:{settings.aggregate}"),
                step_scores=beam.scores,
                key=answer_key(text) if answer_key else None,
                tree=beam.tree,
            )
        )
    return candidates
