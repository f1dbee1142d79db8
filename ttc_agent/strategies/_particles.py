"""Particles and their weights (Puri et al., "Rollout Roulette", arXiv 2502.01618).

A particle's log-weight is the logit of its score (a step verifier's, aggregated over its
steps, or the generator's own confidence in them); the weights are the log-weights'
softmax. Resampling draws the next population by weight, multinomially or systematically (one
uniform draw spread over evenly spaced positions, so each particle gets within one of its
share). When the effective sample size collapses (one particle holds nearly all the weight),
the log-weights are tempered: divided by a temperature that grows as the sample size shrinks
and fades as the search goes on, so that one early verdict does not decide everything.

A score of 0 is a log-weight of minus infinity, a weight of exactly 0: such a particle is never
resampled. Particles with a score of 1 share all the weight; if every particle scores 0, the
weights are uniform (the verifier told nothing apart).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Literal, Protocol

from ttc_agent.errors import ConfigurationError
from ttc_agent.strategies._beams import Beam
from ttc_agent.types import Aggregate, Completion, TokenLogprob, aggregate_scores

Resampling = Literal["multinomial", "systematic"]
Confidence = Literal["logprob", "entropy"]


@dataclass(frozen=True)
class Particle:
    """A partial solution, and the tokens of its last step so far (to weigh a step cut at the
    token limit as a whole once it is continued, when weights come from logprobs)."""

    beam: Beam
    tokens: int = 0


class WeighingSettings(Protocol):
    """What ``grown`` reads of a particle filter's settings."""

    @property
    def confidence(self) -> Confidence: ...
    @property
    def aggregate(self) -> Aggregate: ...
    @property
    def step_delimiter(self) -> str: ...


def log_weight(score: float) -> float:
    """The logit of a score in [0, 1] (minus and plus infinity at its ends).

    Example:
        >>> log_weight(0.5), round(log_weight(0.9), 4), log_weight(0.0)
        (0.0, 2.1972, -inf)
    """
    if score <= 0.0:
        return -math.inf
    if score >= 1.0:
        return math.inf
    return math.log(score / (1.0 - score))


def weights(log_weights: Sequence[float], temperature: float = 1.0) -> list[float]:
    """The normalised weights: the softmax of the log-weights divided by ``temperature``.

    Example:
        >>> [round(w, 3) for w in weights([0.0, math.log(3)])]
        [0.25, 0.75]
    """
    if not log_weights:
        return []
    certain = [1.0 if w == math.inf else 0.0 for w in log_weights]
    if any(certain):
        return [c / sum(certain) for c in certain]
    finite = [w for w in log_weights if w != -math.inf]
    if not finite:
        return [1.0 / len(log_weights)] * len(log_weights)
    top = max(finite)
    raised = [0.0 if w == -math.inf else math.exp((w - top) / temperature) for w in log_weights]
    total = sum(raised)
    return [r / total for r in raised]


def effective_sample_size(chances: Sequence[float]) -> float:
    """How many equally weighted particles the weights are worth: 1 / sum of squares.

    Example:
        >>> effective_sample_size([0.5, 0.5, 0.0])
        2.0
    """
    return 1.0 / sum(p * p for p in chances)


def tempered(
    log_weights: Sequence[float], progress: float, threshold: float
) -> tuple[list[float], float]:
    """The weights to resample by, and the temperature that made them.

    When the effective sample size falls below ``threshold`` times the population, the
    log-weights are divided by ``max(1, (1 - progress) / ratio)``, ``ratio`` being that share
    and ``progress`` how far the search is (step over most steps); otherwise by 1.

    Example:
        >>> chances, temperature = tempered([log_weight(0.999), 0.0, 0.0], 0.0, 0.5)
        >>> round(temperature, 2), [round(p, 2) for p in chances]
        (2.99, [0.83, 0.08, 0.08])
    """
    plain = weights(log_weights)
    ratio = effective_sample_size(plain) / len(plain)
    if ratio >= threshold:
        return plain, 1.0
    temperature = max(1.0, (1.0 - progress) / ratio)
    return weights(log_weights, temperature), temperature


def resample(
    chances: Sequence[float], count: int, method: Resampling, rng: random.Random
) -> list[int]:
    """Draw ``count`` particle indices by their normalised weights; a weight of 0 is never
    drawn.

    Example:
        >>> resample([0.0, 0.25, 0.75], 4, "systematic", random.Random(0))
        [1, 2, 2, 2]
    """
    if method not in ("multinomial", "systematic"):
        raise ValueError(f"resampling must be multinomial or systematic, not {method!r}")
    bounds = list(accumulate(chances))
    last = max(i for i, p in enumerate(chances) if p > 0)  # where rounding may fall past the end
    if method == "multinomial":
        points = [rng.random() * bounds[-1] for _ in range(count)]
    else:
        start = rng.random()
        points = [(k + start) / count * bounds[-1] for k in range(count)]
    return [min(bisect_right(bounds, point), last) for point in points]


def confidence(tokens: Sequence[TokenLogprob], kind: Confidence) -> float:
    """The generator's confidence in a step, in [0, 1], from its tokens' logprobs.

    ``logprob``: the geometric mean of the tokens' probabilities (the exponential of their
    mean logprob). ``entropy``: one minus the mean entropy of each token's top alternatives
    (renormalised), as a share of the most those alternatives could have; a token reported
    without alternatives counts as certain.

    Example:
        >>> steady = [TokenLogprob(token="4", logprob=-0.1, top={"4": -0.1, "5": -2.4})]
        >>> round(confidence(steady, "logprob"), 3), round(confidence(steady, "entropy"), 3)
        (0.905, 0.56)
    """
    if kind == "logprob":
        return math.exp(sum(t.logprob for t in tokens) / len(tokens))
    return 1.0 - sum(_entropy(t.top) for t in tokens) / len(tokens)


def merged(
    kind: Confidence, first: float, first_tokens: int, rest: float, rest_tokens: int
) -> float:
    """The confidence of a step written in two requests (cut at the token limit, continued),
    from each part's confidence and tokens: as if it had been measured whole.

    Example:
        >>> merged("entropy", 1.0, 3, 0.0, 1)
        0.75
    """
    total = first_tokens + rest_tokens
    if kind == "logprob":
        mean = (first_tokens * math.log(first) + rest_tokens * math.log(rest)) / total
        return math.exp(mean)
    return (first_tokens * first + rest_tokens * rest) / total


def _entropy(top: Mapping[str, float]) -> float:
    """The entropy of the renormalised alternatives over the most they could have (0..1)."""
    if len(top) < 2:
        return 0.0
    chances = [math.exp(lp) for lp in top.values()]
    total = sum(chances)
    entropy = -sum(p / total * math.log(p / total) for p in chances if p > 0)
    return min(1.0, entropy / math.log(len(top)))


def grown(
    parent: Particle,
    completion: Completion,
    settings: WeighingSettings,
    is_final: Callable[[str], bool],
    who: str,
) -> Particle:
    """``parent`` grown by a sampled step, its steps weighed by the model's confidence in them.

    Raises:
        ConfigurationError: the completion came without logprobs (``who`` names the model).
    """
    tokens = completion.logprobs
    if tokens is None or (completion.text and not tokens):
        raise ConfigurationError(
            f"{who} returned no token logprobs to weigh particles by, without a step verifier: "
            "build the model with logprobs=True on a server that returns them, or give a step "
            "verifier"
        )
    beam = parent.beam.extended(completion, settings.step_delimiter, is_final)
    scores, count = list(parent.beam.scores), len(tokens)
    if count:
        value = confidence(tokens, settings.confidence)
        if parent.beam.open and scores:  # the rest of a cut step: weighed with its start
            value = merged(settings.confidence, scores[-1], parent.tokens, value, count)
            scores[-1], count = value, parent.tokens + count
        else:
            scores.append(value)
    rank = aggregate_scores(scores, settings.aggregate)
    return Particle(beam.model_copy(update={"scores": scores, "rank": rank}), count)
