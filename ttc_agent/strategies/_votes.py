"""Votes weighted by confidence (DeepConf's): which candidates vote, with what weight, and what
stopping traces early saved.

A candidate votes when it gave an answer, was not cancelled, and its confidence is at least the
threshold; its weight is its confidence. Its ``Score`` says so: the confidence as ``value``, the
weight scaled by the largest as ``normalized`` (0 for a candidate that does not vote), so that
the ``weighted`` selection of ``_selection`` sums the votes.
"""

from __future__ import annotations

from collections.abc import Sequence

from ttc_agent.confidence import Signal
from ttc_agent.types import Candidate, Score


def confidence_of(candidate: Candidate, signal: Signal) -> float | None:
    """The candidate's confidence by ``signal`` (None without logprobs).

    Example:
        >>> confidence_of(Candidate(index=0, text="a"), "mean") is None
        True
    """
    if candidate.confidence is None:
        return None
    return float(getattr(candidate.confidence, signal))


def votes(candidate: Candidate, signal: Signal, threshold: float | None) -> bool:
    """Whether the candidate votes: it answered, was not cancelled, and is confident enough."""
    value = confidence_of(candidate, signal)
    if candidate.key is None or candidate.finish_reason == "cancelled" or value is None:
        return False
    return threshold is None or value >= threshold


def confidence_scores(
    candidates: Sequence[Candidate], signal: Signal, threshold: float | None
) -> list[Candidate]:
    """The candidates scored by their confidence: those that vote weigh their confidence
    (scaled by the largest), the others nothing.

    Example:
        >>> from ttc_agent.types import Confidence
        >>> sure = Confidence(mean=2, lowest_group=2, tail=2, self_certainty=1, tokens=9, window=9)
        >>> unsure = sure.model_copy(update={"lowest_group": 0.5})
        >>> cs = [Candidate(index=i, text=t, key=t, confidence=c)
        ...       for i, (t, c) in enumerate([("4", sure), ("5", unsure)])]
        >>> [c.score.normalized for c in confidence_scores(cs, "lowest_group", 1.0)]
        [1.0, 0.0]
    """
    voting = [votes(c, signal, threshold) for c in candidates]
    weights = [confidence_of(c, signal) or 0.0 for c in candidates]
    top = max((w for w, v in zip(weights, voting, strict=True) if v), default=0.0)
    scored = []
    for candidate, weight, voted in zip(candidates, weights, voting, strict=True):
        normalized = (weight / top if top > 0 else 1.0) if voted else 0.0
        score = Score(
            value=weight,
            normalized=round(normalized, 12),
            mode="confidence",
            rationale=_why(candidate, signal, weight, threshold, voted),
        )
        scored.append(candidate.model_copy(update={"score": score}))
    return scored


def _why(
    candidate: Candidate, signal: Signal, weight: float, threshold: float | None, voted: bool
) -> str:
    above = "" if threshold is None else f" (threshold {threshold:.4g})"
    if candidate.finish_reason == "cancelled":
        return f"cancelled: its group confidence fell below the threshold{above}"
    if candidate.key is None:
        return "gave no answer: no vote"
    verdict = "votes with this weight" if voted else "below the threshold: no vote"
    return f"{signal} confidence {weight:.4g}{above}: {verdict}"


def confidence_votes(
    candidates: Sequence[Candidate], signal: Signal, threshold: float | None
) -> dict[str, float]:
    """The weight of each answer's votes, the weights scaled to a mean of one vote (so that a
    posterior over vote counts reads them as counts).

    Example:
        >>> from ttc_agent.types import Confidence
        >>> c = Confidence(mean=2, lowest_group=2, tail=2, self_certainty=1, tokens=9, window=9)
        >>> cs = [Candidate(index=i, text=t, key=t, confidence=c) for i, t in enumerate("447")]
        >>> confidence_votes(cs, "lowest_group", None)
        {'4': 2.0, '7': 1.0}
    """
    voters = [c for c in candidates if votes(c, signal, threshold)]
    weights = [confidence_of(c, signal) or 0.0 for c in voters]
    mean = sum(weights) / len(weights) if weights else 0.0
    totals: dict[str, float] = {}
    for candidate, weight in zip(voters, weights, strict=True):
        share = weight / mean if mean > 0 else 1.0
        totals[candidate.key or ""] = totals.get(candidate.key or "", 0.0) + share
    return totals


def tokens_saved(candidates: Sequence[Candidate], unsampled: int) -> dict[str, float | int]:
    """What stopping traces early saved, estimated from the mean completion tokens of the
    traces that finished: each cancelled trace's shortfall, and each of the ``unsampled``
    traces never asked for.

    Example:
        >>> from ttc_agent.types import Usage
        >>> done = Candidate(index=0, text="a", usage=Usage(completion_tokens=100))
        >>> cut = Candidate(index=1, text="b", finish_reason="cancelled",
        ...                 usage=Usage(completion_tokens=30))
        >>> tokens_saved([done, cut], unsampled=1)
        {'tokens_saved': 170, 'saved_by_cancelling': 70, 'saved_by_stopping': 100}
    """
    finished = [c.usage.completion_tokens for c in candidates if c.finish_reason != "cancelled"]
    length = sum(finished) / len(finished) if finished else 0.0
    cancelling = sum(
        max(0.0, length - c.usage.completion_tokens)
        for c in candidates
        if c.finish_reason == "cancelled"
    )
    stopping = max(0, unsampled) * length
    return {
        "tokens_saved": round(cancelling + stopping),
        "saved_by_cancelling": round(cancelling),
        "saved_by_stopping": round(stopping),
    }
