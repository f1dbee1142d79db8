"""Tournament selection over stored candidates, for experiments that read every budget off one
run (``ttc writing``, ``benchmarks/small_beats_large.py``).

The bracket of the first k candidates, paired in order, holds the bracket of the first k / 2 as
its first half, so the verdicts are kept by the pair they compared (``OUT/matches.jsonl``, one
row per match): each budget's tournament replays the matches a smaller one played, n candidates
cost n - 1 matches in all, and a rerun asks nothing again. A match's verdict is the pairwise
judge's in both orders (see ``ttc_agent.strategies._tournament``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ttc_agent.protocols import PairwiseVerifier
from ttc_agent.strategies._selection import Bracket
from ttc_agent.strategies._tournament import knockout
from ttc_agent.types import Message


class Matches:
    """The verdicts of every match played, on disk, by (scope, first, second).

    Args:
        path: the JSONL file (created when the first match is played).
        judge: the pairwise judge that plays new matches.

    Example:
        >>> # bracket = await Matches(out / "matches.jsonl", judge).tournament(
        >>> #     "prompt-7", messages, texts[:4], scores[:4])
    """

    def __init__(self, path: str | Path, judge: PairwiseVerifier) -> None:
        self.path, self.judge = Path(path), judge
        self.played: dict[tuple[str, int, int], dict[str, Any]] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # cut by a crash: played again
                    continue
                self.played[(row["scope"], row["first"], row["second"])] = row
        self._lock = asyncio.Lock()

    async def tournament(
        self,
        scope: str,
        prompt: Sequence[Message],
        texts: Sequence[str],
        scores: Sequence[float | None],
    ) -> Bracket:
        """The knockout among ``texts`` (ties to the higher of ``scores``, else the earlier),
        playing only the matches not played before in ``scope``."""

        async def play(first: int, second: int) -> dict[str, Any]:
            key = (scope, first, second)
            if key not in self.played:
                both = await self.judge.compare_both_orders(prompt, texts[first], texts[second])
                row = {"scope": scope, "first": first, "second": second}
                row |= {"outcome": both.outcome, "preference": both.preference}
                row |= {"usage": both.usage.model_dump(mode="json"), "judge": self.judge.name}
                async with self._lock:
                    self.played[key] = row
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    with self.path.open("a", encoding="utf-8") as file:
                        file.write(json.dumps(row) + "\n")
            return self.played[key]

        return await knockout(list(range(len(texts))), scores, play, "tournament")
