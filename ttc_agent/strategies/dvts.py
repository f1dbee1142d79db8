"""Diverse verifier tree search (DVTS): independent subtrees, each a greedy beam search.

The ``n`` live solutions are split into ``subtrees`` trees of ``n // subtrees``. Each tree keeps
only its own best solution per step and expands it, with no competition between trees, which
run concurrently as separate graph tasks. The final choice is made across all trees.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from langgraph.func import task

from ttc_agent.models.protocol import ChatModel
from ttc_agent.strategies.node import StrategyNode
from ttc_agent.strategies.progress import emit
from ttc_agent.strategies.step_search import (
    Aggregate,
    StepSearchSettings,
    Tree,
    candidates_from_beams,
    choose,
    grow,
    has_final_answer,
)
from ttc_agent.types import Message, SearchResult, SearchUsage, Usage
from ttc_agent.verifiers.draft_steps import as_step_verifier
from ttc_agent.verifiers.protocol import Verifier
from ttc_agent.verifiers.step_protocol import StepVerifier


@task(name="ttc_subtree")
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
    grown = await grow(
        model, verifier, prompt, settings, width=settings.n // settings.subtrees, keep=1,
        strategy=strategy, is_final=is_final, tree=tree,
    )  # fmt: skip
    return grown.model_dump(mode="json")


class DVTS(StrategyNode):
    """The DVTS node; build it with ``dvts``."""

    strategy = "dvts"
    settings_type = StepSearchSettings

    def __init__(
        self,
        model: ChatModel,
        verifier: StepVerifier,
        settings: StepSearchSettings,
        *,
        answer_key: Callable[[str], str | None] | None = None,
        is_final: Callable[[str], bool] = has_final_answer,
        messages_key: str = "messages",
        result_key: str | None = None,
    ) -> None:
        super().__init__(settings, messages_key=messages_key, result_key=result_key)
        self.model, self.verifier = model, verifier
        self.answer_key, self.is_final = answer_key, is_final

    async def search(self, prompt: list[Message], settings: StepSearchSettings) -> SearchResult:
        trees = [
            Tree.model_validate(grown)
            for grown in await asyncio.gather(
                *(
                    subtree_task(
                        self.model,
                        self.verifier,
                        prompt,
                        settings,
                        tree,
                        self.is_final,
                        self.strategy,
                    )
                    for tree in range(settings.subtrees)
                )
            )
        ]
        beams = [beam for tree in trees for beam in tree.beams]
        candidates = candidates_from_beams(beams, settings, self.answer_key)
        chosen, groups = choose(candidates, weighted=self.answer_key is not None)
        emit("selected", self.strategy, index=chosen, score=candidates[chosen].score.value)
        return SearchResult(
            strategy=self.strategy,
            settings=settings.model_dump(exclude={"keep"})
            | {"verifier": self.verifier.name, "model": self.model.name}
            | {"steps": [tree.steps for tree in trees]},
            candidates=candidates,
            chosen=chosen,
            selection="weighted" if self.answer_key else "best",
            group_scores=groups,
            usage=SearchUsage(
                generation=Usage.sum([tree.generation for tree in trees]),
                verification=Usage.sum([tree.verification for tree in trees]),
            ),
        )


def dvts(
    model: ChatModel,
    step_verifier: StepVerifier | Verifier,
    n: int = 16,
    subtrees: int = 4,
    max_steps: int = 40,
    lookahead: int = 0,
    step_delimiter: str = "\n\n",
    aggregate: Aggregate = "last",
    *,
    temperature: float = 0.8,
    max_step_tokens: int | None = 256,
    answer_key: Callable[[str], str | None] | None = None,
    is_final: Callable[[str], bool] = has_final_answer,
    messages_key: str = "messages",
    result_key: str | None = None,
) -> DVTS:
    """A DVTS node: ``subtrees`` independent greedy step searches of ``n // subtrees`` each.

    Example:
        >>> from ttc_agent import OpenAIChat
        >>> from ttc_agent.verifiers.step_judge import LLMStepJudge
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> dvts(model, LLMStepJudge(model), n=16, subtrees=4).settings.subtrees
        4
    """
    settings = DVTS.make_settings(
        n=n, keep=1, subtrees=subtrees, max_steps=max_steps, lookahead=lookahead,
        step_delimiter=step_delimiter, aggregate=aggregate, temperature=temperature,
        max_step_tokens=max_step_tokens,
    )  # fmt: skip
    return DVTS(
        model, as_step_verifier(step_verifier, step_delimiter), settings,
        answer_key=answer_key, is_final=is_final, messages_key=messages_key, result_key=result_key,
    )  # fmt: skip
