"""Step-level beam search guided by a step verifier (a PRM or a step judge).

Each step samples one more step for each of the ``n`` live partial solutions, the step
verifier scores them, the ``keep`` best survive and each is expanded ``n // keep`` times.
Finished solutions are set aside; the answer is the finished solution with the best aggregated
step score (or, with an ``answer_key``, the answer whose solutions' scores add up highest).
"""

from __future__ import annotations

from collections.abc import Callable

from ttc_agent.budget import Budget
from ttc_agent.protocols import ChatModel, StepVerifier, Verifier, preferred_aggregate
from ttc_agent.strategies._steps import (
    Aggregate,
    StepSearchNode,
    StepSearchSettings,
    Tree,
    grow,
    has_final_answer,
)
from ttc_agent.types import Message
from ttc_agent.verifiers.draft_steps import as_step_verifier


class BeamSearch(StepSearchNode):
    """The beam-search node; build it with ``beam_search``."""

    strategy = "beam_search"

    async def trees(self, prompt: list[Message], settings: StepSearchSettings) -> list[Tree]:
        tree = await grow(
            self.model, self.verifier, prompt, settings,
            width=settings.n, keep=settings.keep, strategy=self.strategy, is_final=self.is_final,
        )  # fmt: skip
        return [tree]


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
    answer_key: Callable[[str], str | None] | None = None,
    is_final: Callable[[str], bool] = has_final_answer,
    budget: Budget | None = None,
    messages_key: str = "messages",
    result_key: str | None = None,
) -> BeamSearch:
    """A step-level beam-search node.

    Args:
        model: samples steps (continuing the assistant's text; see ``OpenAIChat(continuation=)``).
        step_verifier: scores steps: ``TransformersPRM``, ``VLLMPRM``, ``LLMStepJudge``, or a
            ``RubricJudge`` (wrapped in ``DraftStepVerifier``) to search writing step by step.
        n: live partial solutions per step; ``keep``: survivors per step (``n % keep == 0``).
        max_steps: the most steps; ``lookahead``: greedy steps rolled out to score a step.
        step_delimiter: what ends a step; ``aggregate``: last, min, prod or mean of step scores,
            by default the verifier's own preference (``min`` for ``LLMStepJudge``, which judges
            the latest step alone; ``last`` for PRMs and drafts). The resolved value is recorded
            in the result's settings.
        answer_key: weight the final choice by answer (sum of scores per answer).
        is_final: says whether a step ends the solution, where the server does not say.

    Example:
        >>> from ttc_agent import OpenAIChat
        >>> from ttc_agent.verifiers.step_judge import LLMStepJudge
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> node = beam_search(model, LLMStepJudge(model), n=8, keep=2)
        >>> node.settings.n // node.settings.keep, node.settings.aggregate
        (4, 'min')
    """
    verifier = as_step_verifier(step_verifier, step_delimiter)
    settings = BeamSearch.make_settings(
        n=n, keep=keep, max_steps=max_steps, lookahead=lookahead, step_delimiter=step_delimiter,
        aggregate=aggregate or preferred_aggregate(verifier), temperature=temperature,
        max_step_tokens=max_step_tokens,
    )  # fmt: skip
    return BeamSearch(
        model, verifier, settings,
        answer_key=answer_key, is_final=is_final, budget=budget,
        messages_key=messages_key, result_key=result_key,
    )  # fmt: skip
