"""How every search ends: choosing among its scored candidates by a selection rule, and the
``SearchResult`` that records the choice (``finish``).

A rule is a name: ``best`` (the highest score), ``weighted`` (the answer whose candidates'
normalised scores add up highest), ``majority`` (the answer most candidates give) or ``usc``
(the highest share of universal self-consistency's choice, ``verifiers/usc.py``, whose scores
the candidates carry). A rule added here is open to every strategy. ``tournament`` and
``hybrid`` (the pointwise best few, then a tournament) are decided by a pairwise judge before
the search ends (``_tournament``), so they come with their ``Bracket``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ttc_agent.strategies._progress import emit
from ttc_agent.types import Candidate, Match, SearchResult, SearchUsage, Usage

Selection = Literal["best", "weighted", "majority", "usc", "tournament", "hybrid"]
JUDGED: frozenset[Selection] = frozenset({"tournament", "hybrid"})
"""The selections a pairwise judge decides (``finish`` takes their bracket)."""


@dataclass(frozen=True)
class Bracket:
    """A tournament's matches and its champion (positions in the candidates)."""

    champion: int
    matches: list[Match]

    @property
    def usage(self) -> Usage:
        """What judging the matches cost."""
        return Usage.sum([match.usage for match in self.matches])


def finish(
    strategy: str,
    candidates: Sequence[Candidate],
    selection: Selection,
    settings: Mapping[str, Any],
    usage: SearchUsage | None = None,
    bracket: Bracket | None = None,
) -> SearchResult:
    """Choose among the candidates by ``selection``, announce the choice (a ``selected`` event)
    and record the search.

    Args:
        strategy: the search's name, as the result records it.
        candidates: every candidate, scored or not (the budget may leave some unscored).
        selection: the rule that chooses.
        settings: what the result records as its settings.
        usage: what the search spent; by default what its candidates and their scores carry
            (and the bracket's matches).
        bracket: the tournament that decided a ``tournament`` or ``hybrid`` selection.

    Example:
        >>> from ttc_agent.types import Score
        >>> cs = [Candidate(index=i, text=t, key=t, score=Score(value=v, normalized=v))
        ...       for i, (t, v) in enumerate([("4", 0.2), ("5", 0.9), ("4", 0.8)])]
        >>> finish("mine", cs, "weighted", {}).answer, finish("mine", cs, "best", {}).answer
        ('4', '5')
    """
    groups: dict[str, float]
    if selection in JUDGED:
        if bracket is None:
            raise ValueError(f"a {selection} selection needs its bracket")
        chosen, groups = bracket.champion, {}
    else:
        chosen, groups = choose(candidates, selection)
    best = candidates[chosen]
    votes = {"votes": int(groups.get(best.key or "", 0))} if selection == "majority" else {}
    score = best.score.value if best.score is not None else None
    emit("selected", strategy, index=chosen, score=score, **votes)
    if usage is None:
        usage = SearchUsage(
            generation=Usage.sum([c.usage for c in candidates]),
            verification=Usage.sum([c.score.usage for c in candidates if c.score])
            + (bracket.usage if bracket is not None else Usage()),
        )
    return SearchResult(
        strategy=strategy,
        settings=dict(settings),
        candidates=list(candidates),
        chosen=chosen,
        selection=selection,
        group_scores=groups,
        usage=usage,
        bracket=bracket.matches if bracket is not None else [],
    )


def choose(candidates: Sequence[Candidate], selection: Selection) -> tuple[int, dict[str, float]]:
    """The chosen index, and the score (``weighted``) or votes (``majority``) of each answer.

    Example:
        >>> choose([Candidate(index=0, text="a", key="a")], "majority")
        (0, {'a': 1.0})
    """
    if selection == "majority":
        chosen, votes = select_majority(candidates)
        return chosen, {key: float(count) for key, count in votes.items()}
    if selection == "weighted":
        return select_weighted(candidates)
    if selection in JUDGED:
        raise ValueError(f"a {selection} selection is decided by a pairwise judge: see finish")
    return select_best(candidates), {}  # best, and usc: the highest share


def select_best(candidates: Sequence[Candidate]) -> int:
    """Index of the highest-scoring candidate (the earliest on ties).

    Example:
        >>> from ttc_agent.types import Score
        >>> cs = [Candidate(index=i, text=t, score=Score(value=v, normalized=v))
        ...       for i, (t, v) in enumerate([("a", 0.2), ("b", 0.9), ("c", 0.9)])]
        >>> select_best(cs)
        1
    """
    if not candidates:
        raise ValueError("no candidates to select from")
    return max(range(len(candidates)), key=lambda i: (_value(candidates[i]), -i))


def select_weighted(candidates: Sequence[Candidate]) -> tuple[int, dict[str, float]]:
    """Weighted best-of-N: sum normalised scores per answer key; the best group wins.

    Candidates without a key form groups of their own. Within the winning group the
    highest-scoring candidate is returned (the earliest on ties); ties between groups go to
    the group whose first candidate came first.

    Returns:
        The chosen index and the summed score of each key.

    Example:
        >>> from ttc_agent.types import Score
        >>> rows = [("x", "1", 0.9), ("y", "2", 0.6), ("z", "2", 0.5)]
        >>> cs = [Candidate(index=i, text=t, key=k, score=Score(value=v, normalized=v))
        ...       for i, (t, k, v) in enumerate(rows)]
        >>> select_weighted(cs)
        (1, {'1': 0.9, '2': 1.1})
    """
    if not candidates:
        raise ValueError("no candidates to select from")
    groups: dict[str, list[int]] = {}
    for i, candidate in enumerate(candidates):
        groups.setdefault(candidate.key if candidate.key is not None else f"\0{i}", []).append(i)
    totals = {
        key: sum(_normalized(candidates[i]) for i in members) for key, members in groups.items()
    }
    winner = max(groups, key=lambda key: (totals[key], -groups[key][0]))
    chosen = max(groups[winner], key=lambda i: (_value(candidates[i]), -i))
    return chosen, {
        key: round(total, 12) for key, total in totals.items() if not key.startswith("\0")
    }


def _value(candidate: Candidate) -> float:
    return candidate.score.value if candidate.score is not None else float("-inf")


def _normalized(candidate: Candidate) -> float:
    return candidate.score.normalized if candidate.score is not None else 0.0


def count_votes(labels: list[str | None]) -> dict[str, int]:
    """Votes per answer label (None abstains).

    Example:
        >>> count_votes(["4", None, "4", "5"])
        {'4': 2, '5': 1}
    """
    votes: dict[str, int] = {}
    for label in labels:
        if label is not None:
            votes[label] = votes.get(label, 0) + 1
    return votes


def select_majority(candidates: Sequence[Candidate]) -> tuple[int, dict[str, int]]:
    """Majority vote over the candidates' keys: a candidate of the largest group.

    Ties between groups go to the higher mean score, then to the group seen first; within the
    group, the best-scored candidate (the earliest on ties). With no keys at all, the
    best-scored candidate.

    Returns:
        The chosen index and the votes per key.
    """
    votes = count_votes([c.key for c in candidates])
    if not votes:  # nobody answered: the best-scored candidate, else the first
        return max(range(len(candidates)), key=lambda i: (_value(candidates[i]), -i)), votes
    members: dict[str, list[int]] = {}
    for i, candidate in enumerate(candidates):
        if candidate.key is not None:
            members.setdefault(candidate.key, []).append(i)

    def mean_score(label: str) -> float:
        return sum(_value(candidates[i]) for i in members[label]) / len(members[label])

    winner = max(members, key=lambda label: (votes[label], mean_score(label), -members[label][0]))
    return max(members[winner], key=lambda i: (_value(candidates[i]), -i)), votes
