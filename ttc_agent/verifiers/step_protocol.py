"""The process-verifier interface: scores for every step of partial solutions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ttc_agent.types import Message, StepScores


@runtime_checkable
class StepVerifier(Protocol):
    """Scores the steps of several (partial) solutions to one prompt, in one batch.

    ``solutions[i]`` is the list of steps of solution i (the text between step delimiters, in
    order, without the delimiters). The result has one ``StepScores`` per solution, in order,
    with one score in [0, 1] per step: the verifier's estimate that the solution is still on a
    correct path after that step.
    """

    @property
    def name(self) -> str:
        """The verifier's name, as results record it."""
        ...

    async def score_steps(
        self, prompt: Sequence[Message], solutions: Sequence[Sequence[str]]
    ) -> list[StepScores]: ...
