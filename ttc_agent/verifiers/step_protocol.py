"""The process-verifier interface: scores for every step of partial solutions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ttc_agent.types import Aggregate, Message, StepScores


@runtime_checkable
class StepVerifier(Protocol):
    """Scores the steps of several (partial) solutions to one prompt, in one batch.

    ``solutions[i]`` is the list of steps of solution i (the text between step delimiters, in
    order, without the delimiters). The result has one ``StepScores`` per solution, in order,
    with one score in [0, 1] per step: the verifier's estimate that the solution is still on a
    correct path after that step.

    A verifier may say how its step scores are best combined into a solution's score with a
    ``preferred_aggregate`` attribute (see ``preferred_aggregate``): ``last`` for a PRM trained
    to value the whole prefix, ``min`` for a judge of the latest step alone.
    """

    @property
    def name(self) -> str:
        """The verifier's name, as results record it."""
        ...

    async def score_steps(
        self, prompt: Sequence[Message], solutions: Sequence[Sequence[str]]
    ) -> list[StepScores]: ...


def preferred_aggregate(verifier: object) -> Aggregate:
    """How ``verifier``'s step scores are best aggregated: its ``preferred_aggregate``, or
    ``last`` (the score of the whole prefix) when it does not say.

    Example:
        >>> preferred_aggregate(object())
        'last'
    """
    return getattr(verifier, "preferred_aggregate", "last")
