"""Tournament selection: candidates meet in knockout rounds under a pairwise judge.

Each round pairs the candidates still in, in order (the first with the second, the third with
the fourth...); an odd one out gets a bye to the next round. Every match asks the judge in both
orders (the debiased ``PairwiseJudge``), and the matches of a round run concurrently. A tie goes
to the higher pointwise score when both have one and they differ, else to the earlier
candidate. n candidates take n - 1 matches. A match the budget leaves unjudged is decided as a
tie. Each round emits ``compared`` progress events; the matches are the search result's
``bracket`` (pairwise knockout as in arXiv 2501.13007).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ttc_agent.bills import spending
from ttc_agent.budget import BudgetExhausted
from ttc_agent.protocols import PairwiseVerifier
from ttc_agent.strategies import _replay as replay
from ttc_agent.strategies._progress import Counter
from ttc_agent.strategies._selection import Bracket
from ttc_agent.strategies._tasks import named_task
from ttc_agent.types import Candidate, Match, Message, Usage

Verdict = dict[str, Any]
"""A match's verdict as JSON: ``outcome``, ``preference`` and ``usage``."""

Play = Callable[[int, int], Awaitable[Verdict]]
"""Compares the candidates at two positions, the first shown first: their verdict."""


@named_task("ttc_compare")
async def compare_task(
    pairwise: PairwiseVerifier, prompt: list[Message], first: str, second: str
) -> dict[str, Any]:
    """One comparison in both orders (a task: a resumed run does not ask again)."""
    comparison, record = await replay.recorded(pairwise.compare_both_orders(prompt, first, second))
    verdict = {"outcome": comparison.outcome, "preference": comparison.preference}
    return verdict | {"usage": comparison.usage.model_dump(mode="json"), "record": record}


def judged_by(pairwise: PairwiseVerifier, prompt: list[Message], texts: Sequence[str]) -> Play:
    """The matches of a search: each comparison a task, billed as verification."""

    async def play(first: int, second: int) -> Verdict:
        with spending("verification"):
            result = await compare_task(pairwise, prompt, texts[first], texts[second])
        replay.replayed(result["record"])
        return result

    return play


async def knockout(
    entrants: Sequence[int],
    scores: Sequence[float | None],
    play: Play,
    strategy: str,
) -> Bracket:
    """The knockout among ``entrants`` (positions, in bracket order), ``scores`` by position.

    Example:
        >>> async def first_wins(i, j):
        ...     return {"outcome": "first", "preference": 0.9, "usage": {}}
        >>> bracket = asyncio.run(knockout([0, 1, 2], [None] * 3, first_wins, "doc"))
        >>> bracket.champion, [(m.round, m.first, m.second) for m in bracket.matches]
        (0, [(1, 0, 1), (1, 2, None), (2, 0, 2)])
    """
    if not entrants:
        raise ValueError("a tournament needs at least one candidate")
    alive, matches, number = list(entrants), [], 1
    rounds = math.ceil(math.log2(len(alive))) if len(alive) > 1 else 0
    while len(alive) > 1:
        pairs = [(alive[i], alive[i + 1]) for i in range(0, len(alive) - 1, 2)]
        counter = Counter("compared", strategy, len(pairs), round=number, rounds=rounds)
        counter.start()
        verdicts = await asyncio.gather(*(_match(play, a, b, counter) for a, b in pairs))
        played = [
            _decided(number, a, b, verdict, scores)
            for (a, b), verdict in zip(pairs, verdicts, strict=True)
        ]
        if len(alive) % 2:
            bye = alive[-1]
            played.append(Match(round=number, first=bye, second=None, winner=bye, decided_by="bye"))
        matches += played
        alive = [match.winner for match in played]
        number += 1
    return Bracket(champion=alive[0], matches=matches)


async def _match(play: Play, first: int, second: int, counter: Counter) -> Verdict | None:
    """One match's verdict (None: the budget left it unjudged), counted as it ends."""
    try:
        verdict: Verdict | None = await play(first, second)
    except BudgetExhausted:
        verdict = None
    counter.tick()
    return verdict


def _decided(
    number: int, first: int, second: int, verdict: Verdict | None, scores: Sequence[float | None]
) -> Match:
    """A match's winner: the judge's, else the higher pointwise score, else the earlier."""
    outcome = verdict["outcome"] if verdict is not None else None
    usage = Usage.model_validate(verdict["usage"]) if verdict is not None else Usage()
    preference = verdict["preference"] if verdict is not None else None
    common = {"round": number, "first": first, "second": second, "outcome": outcome}
    common |= {"preference": preference, "usage": usage}
    if outcome in ("first", "second"):
        return Match(winner=first if outcome == "first" else second, decided_by="judge", **common)
    one, two = scores[first], scores[second]
    if one is not None and two is not None and one != two:
        return Match(winner=first if one > two else second, decided_by="score", **common)
    return Match(winner=min(first, second), decided_by="order", **common)


def finalists(candidates: Sequence[Candidate], count: int) -> list[int]:
    """The positions of the ``count`` best-scored candidates (the earliest on ties), in
    candidate order: the hybrid's tournament entrants.

    Example:
        >>> from ttc_agent.types import Score
        >>> cs = [Candidate(index=i, text="", score=Score(value=v, normalized=v))
        ...       for i, v in enumerate([0.2, 0.9, 0.5, 0.9])]
        >>> finalists(cs, 2)
        [1, 3]
    """

    def value(i: int) -> float:
        score = candidates[i].score
        return score.value if score is not None else -math.inf

    ranked = sorted(range(len(candidates)), key=lambda i: (-value(i), i))
    return sorted(ranked[:count])
