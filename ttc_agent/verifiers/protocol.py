"""The outcome-verifier interface strategies use to score candidates."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from ttc_agent.types import Message, Score

OnScore = Callable[[int, Score], object]
"""Called with (candidate index, score) as each candidate's score is ready."""


@runtime_checkable
class Verifier(Protocol):
    """Scores the candidates answering one prompt, in one batch, one ``Score`` each, in order."""

    @property
    def name(self) -> str:
        """The verifier's name, as results record it."""
        ...

    async def score(
        self,
        prompt: Sequence[Message],
        candidates: Sequence[str],
        *,
        on_score: OnScore | None = None,
    ) -> list[Score]: ...
