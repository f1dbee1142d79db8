"""DeepConf: votes weighted by the model's own confidence, no verifier needed ("Deep Think with
Confidence", Fu et al. 2025, arXiv 2508.15260).

Each trace's confidence is read from its token logprobs (``ttc_agent.confidence``). Only the
most confident share of the traces vote (``keep_share``: 0.1 is the paper's DeepConf-low, 0.9
its DeepConf-high), each with its confidence as its weight; the answer whose votes weigh most
wins, and within it the most confident trace.

- ``offline``: sample ``n`` traces, keep those whose confidence (``signal``, the lowest group
  confidence by default) is at least the ``1 - keep_share`` quantile of the traces that gave an
  answer, and vote.
- ``online``: ``warmup`` traces set the threshold, the ``1 - keep_share`` quantile of their
  lowest group confidences; the others stream (``round_size`` at a time) with their logprobs,
  and each is cancelled, its stream closed, as soon as the mean confidence of its last
  ``window`` tokens falls below the threshold. Cancelled traces do not vote. Sampling stops
  once the weighted vote is settled (``stopping="adaptive"``: Adaptive-Consistency's rule, the
  one ``majority_vote`` stops by, on the weights scaled to a mean of one vote). The record
  says how many traces were cancelled and estimates the tokens saved, from the mean length of
  the traces that finished: what each cancelled trace did not generate, and the traces never
  sampled.

Needs a model that returns logprobs (and, online, streams them: ``OpenAIChat`` on vLLM, SGLang,
llama.cpp's servers or OpenAI); without them it stops with one clear error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeAlias, Unpack

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ttc_agent.answers import Equivalence, equivalence
from ttc_agent.confidence import DEFAULT_TAIL, DEFAULT_WINDOW, Signal, percentile
from ttc_agent.errors import BudgetExhausted, ConfigurationError, SearchError
from ttc_agent.protocols import ChatModel, Parts, StreamingChatModel, required
from ttc_agent.strategies import _tasks as tasks
from ttc_agent.strategies._node import NodeOptions, StrategyNode, make_settings
from ttc_agent.strategies._progress import Counter
from ttc_agent.strategies._selection import finish
from ttc_agent.strategies._stopping import settled
from ttc_agent.strategies._streams import stream_some
from ttc_agent.strategies._votes import (
    confidence_of,
    confidence_scores,
    confidence_votes,
    tokens_saved,
)
from ttc_agent.types import Candidate, Message, SearchResult, SearchUsage, Usage

NAME = "deepconf"
Mode = Literal["offline", "online"]


class DeepConfSettings(BaseModel):
    """Settings of ``deepconf``; each can be overridden per invocation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(default=16, ge=1)
    mode: Mode = "offline"
    keep_share: float = Field(default=0.9, gt=0, le=1)
    signal: Signal = "lowest_group"
    window: int = Field(default=DEFAULT_WINDOW, ge=1)
    tail: int = Field(default=DEFAULT_TAIL, ge=1)
    top_logprobs: int = Field(default=20, ge=1, le=20)
    warmup: int = Field(default=4, ge=1)
    round_size: int = Field(default=4, ge=1)
    stopping: Literal["adaptive"] | None = "adaptive"
    posterior: float = Field(default=0.95, gt=0.5, lt=1.0)
    temperature: float = Field(default=0.8, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _online(self) -> DeepConfSettings:
        if self.mode == "online" and self.warmup >= self.n:
            raise ValueError(f"warmup ({self.warmup}) must be below n ({self.n}) online")
        if self.mode == "online" and self.signal != "lowest_group":
            raise ValueError(
                "online, traces are stopped by their lowest group confidence: "
                f"signal must be lowest_group, got {self.signal!r}"
            )
        return self


async def search(prompt: list[Message], settings: DeepConfSettings, parts: Parts) -> SearchResult:
    """Sample (online: warm up, then stream and cancel), keep the confident share, vote.

    Raises:
        ConfigurationError: the model gives no logprobs (``logprobs=False``) or, online,
            cannot stream; nothing was sampled.
        SearchError: the completions came without logprobs; ``partial`` holds them.
    """
    answer = required(parts.equivalence, "equivalence")
    model = parts.model
    if getattr(model, "logprobs", True) is False:
        raise ConfigurationError(
            f"{NAME} reads token logprobs, and model {model.name!r} was built not to ask for "
            "them (logprobs=False)"
        )
    if settings.mode == "online" and not isinstance(model, StreamingChatModel):
        raise ConfigurationError(
            f"{NAME} online streams its traces, and model {model.name!r} cannot stream "
            f"({type(model).__name__} has no stream_sample); use mode='offline'"
        )
    record = settings.model_dump() | {"answer": answer.name, "model": model.name}
    first = settings.warmup if settings.mode == "online" else settings.n
    completions = await tasks.sample_some(
        model, prompt, first, settings, NAME, total=settings.n, **_options(settings)
    )
    candidates = _keyed(tasks.candidates_from(completions), answer)
    _require_logprobs(candidates, model.name, record)
    if settings.mode == "offline":
        threshold = _threshold(candidates, settings.keep_share, settings.signal)
        return _finish(candidates, threshold, settings, record)
    assert isinstance(model, StreamingChatModel)  # checked above, before sampling
    return await _online(prompt, settings, model, answer, candidates, record)


async def _online(
    prompt: list[Message],
    settings: DeepConfSettings,
    model: StreamingChatModel,
    answer: Equivalence,
    candidates: list[Candidate],
    record: dict[str, Any],
) -> SearchResult:
    """Stream the traces after the warm-up, each cancelled below the warm-up's threshold, in
    rounds until the weighted vote is settled or ``n`` are sampled."""
    lowest = [confidence_of(c, "lowest_group") for c in candidates]
    threshold = percentile([v for v in lowest if v is not None], 1.0 - settings.keep_share)
    progress = Counter("sampled", NAME, settings.n, done=len(candidates))
    options = {"temperature": settings.temperature, "max_tokens": settings.max_tokens}
    options = {k: v for k, v in options.items() if v is not None}
    options["top_logprobs"] = settings.top_logprobs
    signals, asked = (settings.window, settings.tail), len(candidates)
    while asked < settings.n and not _settled(candidates, threshold, settings):
        size = min(settings.round_size, settings.n - asked)
        progress.start()
        try:
            traces = await stream_some(
                model, prompt, size, options, (settings.window, threshold), signals, progress
            )
        except BudgetExhausted:
            break  # nothing more fits: vote among what there is
        asked += size
        more = tasks.candidates_from(traces, start=len(candidates))
        candidates += _keyed(more, answer)
        _require_logprobs(candidates, model.name, record)
    return _finish(candidates, threshold, settings, record, unsampled=settings.n - asked)


def _finish(
    candidates: list[Candidate],
    threshold: float | None,
    settings: DeepConfSettings,
    record: dict[str, Any],
    unsampled: int = 0,
) -> SearchResult:
    """Score each candidate by its confidence (only the kept vote) and choose the answer whose
    votes weigh most; online, record what stopping early saved (``unsampled``: the traces of
    the n never asked for)."""
    scored = confidence_scores(candidates, settings.signal, threshold)
    cancelled = [c for c in candidates if c.finish_reason == "cancelled"]
    record |= {"threshold": threshold, "sampled": len(candidates)}
    record |= {"kept": sum(1 for c in scored if c.score and c.score.normalized > 0)}
    if settings.mode == "online":
        record |= {"cancelled": len(cancelled)}
        record |= tokens_saved(candidates, unsampled)
    return finish(NAME, scored, "weighted", record)


def _settled(candidates: list[Candidate], threshold: float, settings: DeepConfSettings) -> bool:
    if settings.stopping is None:
        return False
    votes = confidence_votes(candidates, "lowest_group", threshold)
    return settled(votes, "adaptive", posterior=settings.posterior)


def confidence_vote(
    candidates: Sequence[Candidate], keep_share: float, signal: Signal = "lowest_group"
) -> list[Candidate]:
    """The candidates scored as the offline vote scores them: the confident share (each keyed,
    with its confidence) weighs its confidence, the others nothing; ``select_weighted`` then
    chooses. For voting again on candidates already sampled, at another share or signal.

    Example:
        >>> from ttc_agent.strategies import select_weighted
        >>> from ttc_agent.types import Confidence
        >>> sure = Confidence(mean=2, lowest_group=2, tail=2, self_certainty=1, tokens=9, window=9)
        >>> unsure = sure.model_copy(update={"lowest_group": 0.5})
        >>> cs = [Candidate(index=i, text=t, key=t, confidence=c)
        ...       for i, (t, c) in enumerate([("4", unsure), ("4", unsure), ("5", sure)])]
        >>> select_weighted(confidence_vote(cs, keep_share=0.3))[0]
        2
    """
    threshold = _threshold(candidates, keep_share, signal)
    return confidence_scores(candidates, signal, threshold)


def _threshold(candidates: Sequence[Candidate], keep_share: float, signal: Signal) -> float | None:
    """The ``1 - keep_share`` quantile of the answering candidates' confidence (None: no
    candidate answered)."""
    values = [confidence_of(c, signal) for c in candidates if c.key is not None]
    known = [v for v in values if v is not None]
    return percentile(known, 1.0 - keep_share) if known else None


def _options(settings: DeepConfSettings) -> dict[str, Any]:
    return {"top_logprobs": settings.top_logprobs, "signals": (settings.window, settings.tail)}


def _keyed(candidates: list[Candidate], answer: Equivalence) -> list[Candidate]:
    """The candidates with their answers' group labels (a cancelled trace gives none)."""
    labels = answer.labels([c.text for c in candidates])
    return [
        c.model_copy(update={"key": None if c.finish_reason == "cancelled" else label})
        for c, label in zip(candidates, labels, strict=True)
    ]


def _require_logprobs(candidates: list[Candidate], model: str, record: dict[str, Any]) -> None:
    """Raise ``SearchError`` (with the candidates, paid for) when some came without logprobs."""
    missing = sum(1 for c in candidates if c.confidence is None)
    if not missing:
        return
    usage = SearchUsage(generation=Usage.sum([c.usage for c in candidates]))
    partial = SearchResult(
        strategy=NAME, settings=record, candidates=candidates, chosen=None, usage=usage
    )
    message = (
        f"{NAME} reads token logprobs, and {missing} of {len(candidates)} completions from "
        f"model {model!r} came without them: the server does not return logprobs"
    )
    raise SearchError(message, partial=partial) from ConfigurationError(message)


DeepConf: TypeAlias = StrategyNode[DeepConfSettings]
"""The type of a DeepConf node (build one with ``deepconf``)."""


def deepconf(
    model: ChatModel,
    n: int = 16,
    *,
    mode: Mode = "offline",
    keep_share: float = 0.9,
    answer: str | Callable[[str], Any] | Equivalence = "math",
    signal: Signal = "lowest_group",
    window: int = DEFAULT_WINDOW,
    tail: int = DEFAULT_TAIL,
    top_logprobs: int = 20,
    warmup: int = 4,
    round_size: int = 4,
    stopping: Literal["adaptive"] | None = "adaptive",
    posterior: float = 0.95,
    temperature: float = 0.8,
    max_tokens: int | None = None,
    **options: Unpack[NodeOptions],
) -> DeepConf:
    """A DeepConf node: a vote of the most confident traces, weighted by their confidence.

    Args:
        model: samples the traces, with logprobs (online: streamed).
        n: the most traces.
        mode: ``"offline"`` (sample n, then keep the confident share) or ``"online"`` (warm
            up, then stream, cancelling the traces whose confidence drops below the warm-up's
            threshold).
        keep_share: the share of traces that vote (a fraction): 0.1 (DeepConf-low: the fewest
            tokens online) or 0.9 (DeepConf-high: the safest), or anything in (0, 1].
        answer: how answers are compared: ``"math"``, ``"exact"``, a function from text to a
            key, or an ``Equivalence``.
        signal: what offline ranks and weights by: ``lowest_group`` (DeepConf's), ``mean``,
            ``tail`` or ``self_certainty`` (online stops and weights by ``lowest_group``).
        window: tokens per group (a shorter answer is one group); tail: tokens of the tail.
        top_logprobs: alternatives asked for at each token (the confidences read them).
        warmup: online, the traces that set the threshold (they are among the n).
        round_size: online, the traces streamed at once between checks of the vote.
        stopping: online, ``"adaptive"`` stops sampling once the weighted vote is settled
            (the posterior probability that the leader is the majority passes ``posterior``);
            ``None`` samples all n.
        **options: ``budget``, ``messages_key``, ``result_key`` (see ``NodeOptions``).

    Example:
        >>> from ttc_agent import OpenAIChat
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> node = deepconf(model, n=32, mode="online", keep_share=0.1, answer="exact")
        >>> node.settings.warmup, node.settings.window
        (4, 32)
    """
    values: dict[str, Any] = {"n": n, "mode": mode, "keep_share": keep_share, "signal": signal}
    values |= {"window": window, "tail": tail, "top_logprobs": top_logprobs, "warmup": warmup}
    values |= {"round_size": round_size, "stopping": stopping, "posterior": posterior}
    values |= {"temperature": temperature, "max_tokens": max_tokens}
    settings = make_settings(NAME, DeepConfSettings, values)
    parts = Parts(model, equivalence=equivalence(answer))
    return StrategyNode(NAME, search, settings, parts, **options)
