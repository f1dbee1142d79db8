"""Step-level search shared by beam_search and dvts: grow one tree of partial solutions.

Each round samples one more step for every live partial solution (continuing the assistant's
text up to the step delimiter), scores the steps with a step verifier, sets finished solutions
aside, keeps the ``keep`` best live ones and expands them to ``width`` children again (fewer
survivors are expanded more often, as in search-and-learn). A step cut at ``max_step_tokens``
is not a step boundary: the next round continues it. A DVTS tree instead follows its best
child, finished or not, and stops when that child is finished.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ttc_agent.bills import recording
from ttc_agent.budget import Budget, BudgetExhausted, within_budget
from ttc_agent.protocols import ChatModel, StepVerifier
from ttc_agent.strategies import _tasks as tasks
from ttc_agent.strategies._beams import Beam, has_final_answer, spread
from ttc_agent.strategies._node import StrategyNode
from ttc_agent.strategies._progress import counted_together, emit
from ttc_agent.strategies._selection import select_best, select_weighted
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
    follow_best_child: bool = False,
) -> Tree:
    """Grow one tree with ``width`` live solutions per step, keeping ``keep`` each step.

    With ``follow_best_child`` (DVTS) the tree moves to the best of all its children, finished
    ones included, and stops when that child is finished.
    """
    parents: list[tuple[Beam, int]] = [(Beam(tree=tree), width)]
    finished: list[Beam] = []
    live: list[Beam] = []
    generation = verification = Usage()
    step = 0
    emit("step", strategy, step=0, total=settings.max_steps, tree=tree)
    for step in range(1, settings.max_steps + 1):
        try:
            with recording() as cut:
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
        if follow_best_child:  # DVTS: the tree's course ends with its best child
            done = not live or max(children, key=lambda c: c.rank).finished
        else:
            done = not live or len(finished) >= width
        where = {"tree": tree, "live": len(live), "finished": len(finished), "best": best}
        emit("step", strategy, step=step, total=step if done else settings.max_steps, **where)
        if done:
            break
        order = sorted(range(len(live)), key=lambda i: (-live[i].rank, i))[:keep]
        counts = spread(width, len(order))  # fewer than keep alive: each gets more children
        parents = [(live[i], count) for i, count in zip(order, counts, strict=True)]
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
    tree = parents[0][0].tree
    with counted_together("sampled", strategy, sum(c for _, c in parents), tree=tree):
        extended = await asyncio.gather(
            *(_extend(model, prompt, p, count, settings, strategy) for p, count in parents),
            return_exceptions=True,
        )
    batches = within_budget(tasks.lost_as_empty(extended, [count for _, count in parents]))
    children = [
        parent.extended(completion, delimiter, is_final)
        for (parent, _), completions in zip(parents, batches, strict=True)
        for completion in completions
    ]
    rollouts = within_budget(
        await asyncio.gather(
            *(_rollout(model, prompt, child, settings, strategy, is_final) for child in children),
            return_exceptions=True,
        )
    )
    to_score = [steps for steps, _ in rollouts]
    with counted_together("scored", strategy, len(to_score), tree=tree) as judged:
        scored = await tasks.score_steps(verifier, prompt, to_score)
        judged.tick(len(scored))
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
        options["prefix"] = parent.prefix(settings.step_delimiter)
    return await tasks.sample(model, prompt, count, settings, strategy, **options)


async def _rollout(
    model: ChatModel,
    prompt: list[Message],
    child: Beam,
    settings: StepSearchSettings,
    strategy: str,
    is_final: Callable[[str], bool],
) -> tuple[list[str], Usage]:
    """The steps to score ``child`` by: its own, then greedy lookahead steps (not kept)."""
    usage = Usage()
    current = child
    for _ in range(settings.lookahead if not child.finished else 0):
        [completion] = await _extend(model, prompt, current, 1, settings, strategy, temperature=0.0)
        usage = usage + completion.usage
        current = current.extended(completion, settings.step_delimiter, is_final)
        if current.finished:
            break
    return current.steps, usage


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
        beams = [beam for beam in beams if beam.finished] or beams  # partial ones only if all are
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
