"""Step-level beam search guided by a step verifier (a PRM or a step judge).

Each step samples one more step for each of the ``n`` live partial solutions, the step
verifier scores them, the ``keep`` best survive and each is expanded ``n // keep`` times.
Finished solutions are set aside; the answer is the finished solution with the best aggregated
step score (or, with an ``answer_key``, the answer whose solutions' scores add up highest). The
step machinery (growing a tree, choosing its solution) is in ``_steps``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias, Unpack

from pydantic import Field, model_validator

from ttc_agent.protocols import AnswerKey, ChatModel, Parts, StepVerifier, Verifier
from ttc_agent.strategies._beams import has_final_answer
from ttc_agent.strategies._node import NodeOptions, StrategyNode
from ttc_agent.strategies._steps import (
    StepSettings,
    grow,
    solution,
    step_parts,
    step_settings,
    steps_ready,
)
from ttc_agent.types import Aggregate, Message, SearchResult

NAME = "beam_search"


class BeamSearchSettings(StepSettings):
    """Settings of ``beam_search``: the step settings (``StepSettings``) and ``keep``, the
    survivors per step (``n`` must be a multiple of it)."""

    keep: int = Field(default=4, ge=1)

    @model_validator(mode="after")
    def _divisible(self) -> BeamSearchSettings:
        if self.n % self.keep:
            raise ValueError(f"n per tree ({self.n}) must be a multiple of keep ({self.keep})")
        return self


async def search(prompt: list[Message], settings: BeamSearchSettings, parts: Parts) -> SearchResult:
    """Grow one tree ``n`` wide, keeping the ``keep`` best each step; choose its best solution."""
    verifier = await steps_ready(parts)
    is_final = parts.is_final or has_final_answer
    tree = await grow(
        parts.model,
        verifier,
        prompt,
        settings,
        width=settings.n,
        keep=settings.keep,
        strategy=NAME,
        is_final=is_final,
    )
    return solution(NAME, [tree], settings, parts, verifier)


BeamSearch: TypeAlias = StrategyNode[BeamSearchSettings]
"""The type of a beam-search node (build one with ``beam_search``); kept for one release."""


def beam_search(
    model: ChatModel,
    step_verifier: StepVerifier | Verifier,
    n: int = 16,
    keep: int = 4,
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
) -> BeamSearch:
    """A step-level beam-search node.

    Args:
        model: samples steps (continuing the assistant's text; see ``OpenAIChat(continuation=)``).
        step_verifier: scores steps: ``TransformersPRM``, ``VLLMPRM``, ``LLMStepJudge``, or a
            ``RubricJudge`` (wrapped in ``DraftStepVerifier``) to search writing step by step.
        keep: survivors per step (``n % keep == 0``); each is expanded ``n // keep`` times.
        n, max_steps, lookahead, step_delimiter, aggregate, temperature, max_step_tokens: the
            step settings, documented once in ``StepSettings``. ``aggregate`` defaults to the
            verifier's own preference; the resolved value is recorded in the result's settings.
        answer_key: weight the final choice by answer (sum of scores per answer).
        is_final: says whether a step ends the solution, where the server does not say.
        **options: ``budget``, ``messages_key``, ``result_key`` (see ``NodeOptions``).

    Example:
        >>> from ttc_agent import OpenAIChat
        >>> from ttc_agent.verifiers.step_judge import LLMStepJudge
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> node = beam_search(model, LLMStepJudge(model), n=8, keep=2)
        >>> node.settings.n // node.settings.keep, node.settings.aggregate
        (4, 'min')
    """
    parts = step_parts(model, step_verifier, step_delimiter, answer_key, is_final)
    settings = step_settings(
        NAME,
        BeamSearchSettings,
        parts,
        n=n,
        keep=keep,
        max_steps=max_steps,
        lookahead=lookahead,
        step_delimiter=step_delimiter,
        aggregate=aggregate,
        temperature=temperature,
        max_step_tokens=max_step_tokens,
    )
    return StrategyNode(NAME, search, settings, parts, **options)
