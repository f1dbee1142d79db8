"""Diverse verifier tree search (DVTS): independent subtrees, each a greedy beam search.

The ``n`` live solutions are split into ``subtrees`` trees of ``n // subtrees``. Each tree moves
to the best of its children, finished ones included, expands it ``n // subtrees`` times and stops
when that best child is finished (as in search-and-learn's ``diverse_verifier_tree_search.py``),
with no competition between trees, which run concurrently as separate graph tasks. The final
choice is made across all trees, among finished solutions whenever any tree finished one. The
step machinery (growing a tree, choosing its solution) is in ``_steps``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeAlias, Unpack

from pydantic import Field, model_validator

from ttc_agent.protocols import AnswerKey, ChatModel, Parts, StepVerifier, Verifier
from ttc_agent.strategies import _replay as replay
from ttc_agent.strategies._beams import has_final_answer
from ttc_agent.strategies._node import NodeOptions, StrategyNode
from ttc_agent.strategies._steps import (
    StepSettings,
    Tree,
    grow,
    solution,
    step_parts,
    step_settings,
    steps_ready,
)
from ttc_agent.strategies._tasks import named_task
from ttc_agent.types import Aggregate, Message, SearchResult

NAME = "dvts"


class DVTSSettings(StepSettings):
    """Settings of ``dvts``: the step settings (``StepSettings``) and ``subtrees``, the number of
    independent trees (``n`` must be a multiple of it)."""

    subtrees: int = Field(default=4, ge=1)

    @model_validator(mode="after")
    def _divisible(self) -> DVTSSettings:
        if self.n % self.subtrees:
            raise ValueError(f"n ({self.n}) must be a multiple of subtrees ({self.subtrees})")
        return self


async def search(prompt: list[Message], settings: DVTSSettings, parts: Parts) -> SearchResult:
    """Grow ``subtrees`` trees at once, each following its best child; choose across them."""
    verifier = await steps_ready(parts)
    is_final = parts.is_final or has_final_answer
    grown = await asyncio.gather(
        *(
            subtree_task(parts.model, verifier, prompt, settings, tree, is_final)
            for tree in range(settings.subtrees)
        )
    )
    for tree in grown:
        replay.replayed(tree["record"])
    trees = [Tree.model_validate(tree) for tree in grown]
    return solution(NAME, trees, settings, parts, verifier)


@named_task("ttc_subtree")
async def subtree_task(
    model: ChatModel,
    verifier: StepVerifier,
    prompt: list[Message],
    settings: DVTSSettings,
    tree: int,
    is_final: Callable[[str], bool],
) -> dict[str, Any]:
    """Grow one subtree (a LangGraph task of its own, so a resumed run keeps finished trees)."""
    growing = grow(
        model,
        verifier,
        prompt,
        settings,
        width=settings.n // settings.subtrees,
        keep=1,
        strategy=NAME,
        is_final=is_final,
        tree=tree,
        follow_best_child=True,
    )
    grown, record = await replay.recorded(growing)
    return grown.model_dump(mode="json") | {"record": record}


DVTS: TypeAlias = StrategyNode[DVTSSettings]
"""The type of a DVTS node (build one with ``dvts``); kept for one release."""


def dvts(
    model: ChatModel,
    step_verifier: StepVerifier | Verifier,
    n: int = 16,
    subtrees: int = 4,
    max_steps: int = 40,
    lookahead: int = 0,
    step_delimiter: str = "\n\n",
    aggregate: Aggregate | None = None,
    *,
    temperature: float = 0.8,
    max_step_tokens: int | None = 256,
    answer_key: AnswerKey | None = None,
    is_final: Callable[[str], bool] = has_final_answer,
    **options: Unpack[NodeOptions],
) -> DVTS:
    """A DVTS node: ``subtrees`` independent greedy step searches of ``n // subtrees`` each.

    Args:
        subtrees: independent trees (``n % subtrees == 0``).
        model, step_verifier, answer_key, is_final, **options: as for ``beam_search``.
        n, max_steps, lookahead, step_delimiter, aggregate, temperature, max_step_tokens: the
            step settings, documented once in ``StepSettings`` (``aggregate`` defaults to the
            verifier's preference).

    Example:
        >>> from ttc_agent import OpenAIChat
        >>> from ttc_agent.verifiers.step_judge import LLMStepJudge
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> dvts(model, LLMStepJudge(model), n=16, subtrees=4).settings.subtrees
        4
    """
    parts = step_parts(model, step_verifier, step_delimiter, answer_key, is_final)
    settings = step_settings(
        NAME,
        DVTSSettings,
        parts,
        n=n,
        subtrees=subtrees,
        max_steps=max_steps,
        lookahead=lookahead,
        step_delimiter=step_delimiter,
        aggregate=aggregate,
        temperature=temperature,
        max_step_tokens=max_step_tokens,
    )
    return StrategyNode(NAME, search, settings, parts, **options)
