"""Diverse verifier tree search (DVTS): independent subtrees, each a greedy beam search.

The ``n`` live solutions are split into ``subtrees`` trees of ``n // subtrees``. Each tree moves
to the best of its children, finished ones included, expands it ``n // subtrees`` times and stops
when that best child is finished (as in search-and-learn's ``diverse_verifier_tree_search.py``),
with no competition between trees, which run concurrently as separate graph tasks. The final
choice is made across all trees, among finished solutions whenever any tree finished one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ttc_agent.budget import Budget
from ttc_agent.protocols import ChatModel, StepVerifier, Verifier, preferred_aggregate
from ttc_agent.strategies import _replay as replay
from ttc_agent.strategies._steps import (
    Aggregate,
    StepSearchNode,
    StepSearchSettings,
    Tree,
    grow,
    has_final_answer,
)
from ttc_agent.strategies._tasks import named_task
from ttc_agent.types import Message
from ttc_agent.verifiers.draft_steps import as_step_verifier


@named_task("ttc_subtree")
async def subtree_task(
    model: ChatModel,
    verifier: StepVerifier,
    prompt: list[Message],
    settings: StepSearchSettings,
    tree: int,
    is_final: Callable[[str], bool],
    strategy: str,
) -> dict:
    """Grow one subtree (a LangGraph task of its own)."""
    width = settings.n // settings.subtrees
    growing = grow(
        model,
        verifier,
        prompt,
        settings,
        width=width,
        keep=1,
        strategy=strategy,
        is_final=is_final,
        tree=tree,
        follow_best_child=True,
    )
    grown, record = await replay.recorded(growing)
    return grown.model_dump(mode="json") | {"record": record}


class DVTS(StepSearchNode):
    """The DVTS node; build it with ``dvts``."""

    strategy = "dvts"

    async def trees(self, prompt: list[Message], settings: StepSearchSettings) -> list[Tree]:
        grown = await asyncio.gather(
            *(
                subtree_task(
                    self.model, self.verifier, prompt, settings, tree, self.is_final, self.strategy
                )
                for tree in range(settings.subtrees)
            )
        )
        for tree in grown:
            replay.replayed(tree["record"])
        return [Tree.model_validate(tree) for tree in grown]


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
    answer_key: Callable[[str], str | None] | None = None,
    is_final: Callable[[str], bool] = has_final_answer,
    budget: Budget | None = None,
    messages_key: str = "messages",
    result_key: str | None = None,
) -> DVTS:
    """A DVTS node: ``subtrees`` independent greedy step searches of ``n // subtrees`` each.

    The arguments are beam search's (``aggregate`` defaults to the verifier's preference).

    Example:
        >>> from ttc_agent import OpenAIChat
        >>> from ttc_agent.verifiers.step_judge import LLMStepJudge
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> dvts(model, LLMStepJudge(model), n=16, subtrees=4).settings.subtrees
        4
    """
    verifier = as_step_verifier(step_verifier, step_delimiter)
    settings = DVTS.make_settings(
        n=n, keep=1, subtrees=subtrees, max_steps=max_steps, lookahead=lookahead,
        step_delimiter=step_delimiter, aggregate=aggregate or preferred_aggregate(verifier),
        temperature=temperature, max_step_tokens=max_step_tokens,
    )  # fmt: skip
    return DVTS(
        model, verifier, settings,
        answer_key=answer_key, is_final=is_final, budget=budget,
        messages_key=messages_key, result_key=result_key,
    )  # fmt: skip
