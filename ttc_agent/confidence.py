"""A model's confidence in its own answer, read from the token logprobs of that answer.

The signals follow DeepConf ("Deep Think with Confidence", Fu et al. 2025, arXiv 2508.15260):

- **token confidence** at position i: ``C_i = -(1/k) * sum_j log P_i(j)`` over the top-k
  alternatives the server reported there (with the sampled token where it is not among them,
  as vLLM reports them; the sampled token alone where the server gave no alternatives). A
  peaked distribution gives a high value, a flat one a low value;
- **mean confidence**: the mean token confidence over the answer;
- **group confidence**: the mean token confidence over a sliding window of ``window``
  consecutive tokens; the **lowest group confidence** is its minimum over the answer, the
  signal DeepConf's online mode stops traces by. The window adapts to short answers: an answer
  shorter than the window is one group (DeepConf's rule), so every answer has a value;
- **tail confidence**: the mean token confidence over the last ``tail`` tokens (the part that
  states the answer).

And **self-certainty** (Kang et al. 2025, "Scalable Best-of-N Selection for Large Language
Models via Self-Certainty", arXiv 2502.18581): the mean over tokens of the KL divergence from
the uniform distribution to the model's distribution. Servers report only the top-k, so here it
is the KL from the uniform distribution over those k alternatives to their probabilities
renormalised among themselves: 0 when they are equally likely, growing as one dominates.

DeepConf reads 2048-token windows of reasoning traces tens of thousands of tokens long; chat
answers are a few hundred tokens, so the defaults here are 32 tokens (about a sentence).

Example:
    >>> from ttc_agent.types import TokenLogprob
    >>> sure = TokenLogprob(token="4", logprob=-0.01, top={"4": -0.01, "5": -4.6})
    >>> round(token_confidence(sure), 3)
    2.305
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Literal

from ttc_agent.types import Confidence, TokenLogprob

DEFAULT_WINDOW = 32
"""Tokens in a group (DeepConf's 2048 suits reasoning traces; 32 is about a sentence)."""
DEFAULT_TAIL = 32
"""Tokens the tail confidence reads."""
Signal = Literal["lowest_group", "mean", "tail", "self_certainty"]
"""The confidence signals a strategy may rank candidates by (fields of ``Confidence``)."""


def _alternatives(token: TokenLogprob) -> list[float]:
    """The logprobs at one position: the top alternatives, and the sampled token where it is
    not among them (the sampled token alone where the server gave none)."""
    values = dict(token.top)
    values.setdefault(token.token, token.logprob)
    return list(values.values())


def token_confidence(token: TokenLogprob) -> float:
    """DeepConf's token confidence: minus the mean logprob of the top alternatives.

    Example:
        >>> token_confidence(TokenLogprob(token="a", logprob=-1.0, top={"a": -1.0, "b": -3.0}))
        2.0
    """
    values = _alternatives(token)
    return -sum(values) / len(values)


def token_self_certainty(token: TokenLogprob) -> float:
    """KL(uniform || p) over the top alternatives, their probabilities renormalised.

    Example:
        >>> token_self_certainty(TokenLogprob(token="a", logprob=-0.7, top={"a": -0.7, "b": -0.7}))
        0.0
    """
    values = _alternatives(token)
    k = len(values)
    top = max(values)
    log_total = top + math.log(sum(math.exp(v - top) for v in values))
    return max(0.0, -math.log(k) - sum(v - log_total for v in values) / k)


def group_confidences(confidences: Sequence[float], window: int) -> list[float]:
    """The mean of every ``window`` consecutive token confidences (one group, the whole
    answer, when it is shorter than the window; none for no tokens).

    Example:
        >>> group_confidences([1.0, 2.0, 3.0, 6.0], 2), group_confidences([1.0, 3.0], 8)
        ([1.5, 2.5, 4.5], [2.0])
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    if not confidences:
        return []
    size = min(window, len(confidences))
    running = sum(confidences[:size])
    groups = [running / size]
    for i in range(size, len(confidences)):
        running += confidences[i] - confidences[i - size]
        groups.append(running / size)
    return groups


def confidence_of(
    tokens: Sequence[TokenLogprob] | None,
    window: int = DEFAULT_WINDOW,
    tail: int = DEFAULT_TAIL,
) -> Confidence | None:
    """Every signal of one answer from its token logprobs (None without logprobs).

    Example:
        >>> tokens = [TokenLogprob(token=t, logprob=-0.1, top={t: -0.1, "x": -2.3}) for t in "ab"]
        >>> confidence_of(tokens).lowest_group
        1.2
    """
    if not tokens:
        return None
    confidences = [token_confidence(token) for token in tokens]
    last = confidences[-min(tail, len(confidences)) :]
    return Confidence(
        mean=_round(sum(confidences) / len(confidences)),
        lowest_group=_round(min(group_confidences(confidences, window))),
        tail=_round(sum(last) / len(last)),
        self_certainty=_round(sum(map(token_self_certainty, tokens)) / len(tokens)),
        tokens=len(tokens),
        window=min(window, len(tokens)),
    )


def _round(value: float) -> float:
    return round(value, 6)


class GroupWatch:
    """Watches a trace's group confidence while it is generated, token by token: ``add``
    says when the latest full window's mean falls below ``threshold`` (DeepConf's online stop;
    no window is judged before ``window`` tokens have arrived).

    Example:
        >>> watch = GroupWatch(window=2, threshold=1.0)
        >>> low = TokenLogprob(token="a", logprob=-0.7, top={"a": -0.7, "b": -0.7})
        >>> high = TokenLogprob(token="a", logprob=-0.1, top={"a": -0.1, "b": -2.3})
        >>> [watch.add(t) for t in (high, high, low, low)]
        [False, False, True, True]
    """

    def __init__(self, window: int, threshold: float) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.window, self.threshold = window, threshold
        self._recent: deque[float] = deque(maxlen=window)
        self.lowest: float | None = None

    def add(self, token: TokenLogprob) -> bool:
        """Take the next token; True when the trace should stop."""
        self._recent.append(token_confidence(token))
        if len(self._recent) < self.window:
            return False
        group = sum(self._recent) / self.window
        self.lowest = group if self.lowest is None else min(self.lowest, group)
        return group < self.threshold


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` quantile of ``values``, interpolated linearly between order statistics
    (numpy's default, which DeepConf's threshold uses).

    Example:
        >>> percentile([1.0, 2.0, 3.0, 4.0], 0.9)
        3.7
    """
    if not values:
        raise ValueError("no values to take a percentile of")
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be between 0 and 1, got {share}")
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return round(ordered[below] + (ordered[above] - ordered[below]) * (position - below), 12)
