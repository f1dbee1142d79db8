"""Step-level search, the machinery beam_search and dvts share: grow a tree of partial
solutions, then choose among its final solutions.

Each round samples one more step for every live partial solution (continuing the assistant's
text up to the step delimiter), scores the steps with a step verifier, sets finished solutions
aside, keeps the ``keep`` best live ones and expands them to ``width`` children again (fewer
survivors are expanded more often, as in search-and-learn). A step cut at ``max_step_tokens``
is not a step boundary: the next round continues it. A DVTS tree instead follows its best
child, finished or not, and stops when that child is finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ttc_agent.bills import recording
from ttc_agent.budget import within_budget
from ttc_agent.errors import BudgetExhausted
from ttc_agent.protocols import (
    AnswerKey,
    ChatModel,
    Parts,
    StepVerifier,
    Verifier,
    preferred_aggregate,
    required,
)
from ttc_agent.strategies import _tasks as tasks
from ttc_agent.strategies._beams import Beam, has_final_answer, spread
from ttc_agent.strategies._node import StrategyNode, make_settings
from ttc_agent.strategies._progress import counted_together, emit
from ttc_agent.strategies._selection import Selection, finish
from ttc_agent.types import (
    Aggregate,
    Completion,
    Message,
    SearchResult,
    SearchUsage,
    Usage,
    aggregate_scores,
)
from ttc_agent.verifiers.draft_steps import as_step_verifier


class StepSettings(BaseModel):
    """The settings every step-level search shares (``beam_search`` adds ``keep``, ``dvts``
    ``subtrees``); each can be overridden per invocation.

    Attributes:
        n: live partial solutions per step, in all.
        max_steps: the most steps a solution may take.
        lookahead: greedy steps rolled out (at temperature 0, not kept) to score a step by.
        step_delimiter: what ends a step.
        aggregate: how a solution's step scores combine into its score: ``last``, ``min``,
            ``prod`` or ``mean``. The factories default to the step verifier's preference
            (``min`` for ``LLMStepJudge``, which judges the latest step alone; ``last`` for
            PRMs and drafts).
        temperature: sampling temperature of the steps.
        max_step_tokens: the longest step; a step cut there is continued by the next request.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(default=16, ge=1)
    max_steps: int = Field(default=40, ge=1)
    lookahead: int = Field(default=0, ge=0)
    step_delimiter: str = Field(default="\n\n", min_length=1)
    aggregate: Aggregate = "last"
    temperature: float = Field(default=0.8, ge=0)
    max_step_tokens: int | None = Field(default=256, ge=1)


T = TypeVar("T", bound=StepSettings)

StepSearchNode: TypeAlias = StrategyNode[StepSettings]
"""The type of a step-search node (``beam_search``, ``dvts``); kept for one release."""


def step_defaults(parts: Parts) -> dict[str, Any]:
    """The step settings that depend on the parts: the step verifier's preferred aggregate."""
    return {"aggregate": preferred_aggregate(parts.step_verifier)}


def step_parts(
    model: ChatModel,
    step_verifier: StepVerifier | Verifier,
    step_delimiter: str,
    answer_key: AnswerKey | None,
    is_final: Callable[[str], bool],
) -> Parts:
    """A step search's parts (an outcome verifier judges drafts, step by step)."""
    verifier = as_step_verifier(step_verifier, step_delimiter)
    return Parts(model, step_verifier=verifier, answer_key=answer_key, is_final=is_final)


def step_settings(
    strategy: str, settings_type: type[T], parts: Parts, aggregate: Aggregate | None, **values: Any
) -> T:
    """A step search's validated settings; ``aggregate`` by default the verifier's preference."""
    given = values if aggregate is None else values | {"aggregate": aggregate}
    return make_settings(strategy, settings_type, step_defaults(parts) | given)


async def steps_ready(parts: Parts) -> StepVerifier:
    """The step verifier, once the model has said it can continue a partial reply (before any
    request: every step after the first continues the text)."""
    verifier = required(parts.step_verifier, "step_verifier")
    await parts.model.check_continuation()
    return verifier


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
    settings: StepSettings,
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
                children, spent = await expand(
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


async def expand(
    model: ChatModel,
    verifier: StepVerifier,
    prompt: list[Message],
    parents: list[tuple[Beam, int]],
    settings: StepSettings,
    strategy: str,
    is_final: Callable[[str], bool],
) -> tuple[list[Beam], SearchUsage]:
    """One step: extend every parent ``count`` times, roll out lookahead, score the steps."""
    delimiter = settings.step_delimiter
    tree = parents[0][0].tree
    with counted_together("sampled", strategy, sum(c for _, c in parents), tree=tree):
        extended = await asyncio.gather(
            *(extend(model, prompt, p, count, settings, strategy) for p, count in parents),
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


async def extend(
    model: ChatModel,
    prompt: list[Message],
    parent: Beam,
    count: int,
    settings: StepSettings,
    strategy: str,
    temperature: float | None = None,
    top_logprobs: int | None = None,
) -> list[Completion]:
    """Sample ``count`` next steps of ``parent`` (with their logprobs, given ``top_logprobs``)."""
    options: dict[str, Any] = {"stop": [settings.step_delimiter], "top_logprobs": top_logprobs}
    options["max_tokens"] = settings.max_step_tokens
    if temperature is not None:
        options["temperature"] = temperature
    if parent.steps:
        options["prefix"] = parent.prefix(settings.step_delimiter)
    kept = top_logprobs is not None  # the caller reads them (particle weights)
    return await tasks.sample(
        model, prompt, count, settings, strategy, keep_logprobs=kept, **options
    )


async def _rollout(
    model: ChatModel,
    prompt: list[Message],
    child: Beam,
    settings: StepSettings,
    strategy: str,
    is_final: Callable[[str], bool],
) -> tuple[list[str], Usage]:
    """The steps to score ``child`` by: its own, then greedy lookahead steps (not kept)."""
    usage = Usage()
    current = child
    for _ in range(settings.lookahead if not child.finished else 0):
        [completion] = await extend(model, prompt, current, 1, settings, strategy, temperature=0.0)
        usage = usage + completion.usage
        current = current.extended(completion, settings.step_delimiter, is_final)
        if current.finished:
            break
    return current.steps, usage


def solution(
    strategy: str,
    trees: Sequence[Tree],
    settings: StepSettings,
    parts: Parts,
    verifier: StepVerifier,
) -> SearchResult:
    """Choose among the trees' final solutions (the finished ones whenever any finished), by
    their aggregated step scores, or by answer with an answer key.

    Raises:
        BudgetExhausted: the budget ran out before a first step was scored.
    """
    beams = [beam for tree in trees for beam in tree.beams]
    beams = [beam for beam in beams if beam.finished] or beams  # partial ones only if all are
    if not beams:
        raise BudgetExhausted("the budget ran out before a first step was scored")
    candidates = [
        beam.candidate(i, settings.step_delimiter, settings.aggregate, parts.answer_key)
        for i, beam in enumerate(beams)
    ]
    selection: Selection = "weighted" if parts.answer_key else "best"
    record = settings.model_dump() | {"verifier": verifier.name, "model": parts.model.name}
    usage = SearchUsage(
        generation=Usage.sum([tree.generation for tree in trees]),
        verification=Usage.sum([tree.verification for tree in trees]),
    )
    steps = {"steps": [tree.steps for tree in trees]}
    return finish(strategy, candidates, selection, record | steps, usage)
