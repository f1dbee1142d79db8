"""Choosing a candidate from scored candidates: the best one, or the best answer group."""

from __future__ import annotations

from collections.abc import Sequence

from ttc_agent.types import Candidate


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
