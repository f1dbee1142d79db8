"""The LangGraph tasks strategies are made of: sampling and scoring.

Each call of a task inside a graph run is checkpointed, so a run resumed after a failure does
not pay again for samples or scores it already has. Every call of a verifier is a task of its
own: a verifier says how many texts one call scores with ``batch_size`` (1 for the judges, a
PRM's forward pass; all of them when it does not say), so a run killed while judging asks again
only what was not answered. Task results are plain JSON, with a record of what their calls
billed (see ``_replay``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec, Protocol, TypeVar

from langgraph.func import task

from ttc_agent.bills import spending
from ttc_agent.budget import BudgetExhausted, within_budget
from ttc_agent.confidence import DEFAULT_TAIL, DEFAULT_WINDOW, confidence_of
from ttc_agent.errors import ModelError, SamplesFailed
from ttc_agent.protocols import ChatModel, StepVerifier, Verifier
from ttc_agent.strategies import _replay as replay
from ttc_agent.strategies._progress import counter_for
from ttc_agent.types import Candidate, Completion, Message, Score, StepScores

_failures: ContextVar[list[int] | None] = ContextVar("ttc_failures", default=None)

P = ParamSpec("P")
T = TypeVar("T")


def named_task(name: str) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """``langgraph.func.task(name=...)`` for async functions, typed: langgraph's overload for a
    named task leaves the function's parameters and result unsolved (``Never``)."""
    return task(name=name)  # type: ignore[return-value]  # see above: the stub, not the call


class SamplingSettings(Protocol):
    """What ``sample`` reads of a strategy's settings (``max_tokens`` too, where they have it)."""

    @property
    def temperature(self) -> float: ...


@named_task("ttc_sample")
async def sample_task(
    model: ChatModel,
    prompt: list[Message],
    n: int,
    options: dict[str, Any],
    progress: tuple[str, str, int, int],
    signals: tuple[int, int] = (DEFAULT_WINDOW, DEFAULT_TAIL),
    keep_logprobs: bool = False,
) -> dict[str, Any]:
    """Sample n completions; ``progress`` = (event, strategy, done so far, total).

    Samples that fail for good (after retries) while others arrive are counted, not raised.
    Completions that came with logprobs keep their confidence signals (read with ``signals`` =
    (window, tail)) in the stored result, and the logprobs themselves only with
    ``keep_logprobs`` (particle weights read them token by token).
    """
    event, strategy, done, total = progress
    counter = counter_for(event, strategy, total, done=done)

    async def draw() -> tuple[list[Completion], int]:
        try:
            return await model.sample(
                prompt, n, **options, on_completion=lambda _: counter.tick()
            ), 0
        except SamplesFailed as exc:  # go on with those that arrived; the node reports the rest
            return exc.partial, exc.failed

    (completions, failed), record = await replay.recorded(draw())
    dropped = None if keep_logprobs else {"logprobs"}
    rows = [
        completion.model_dump(mode="json", exclude=dropped)
        | {"confidence": _signals(completion, *signals)}
        for completion in completions
    ]
    return {"completions": rows, "failed": failed, "record": record}


def _signals(completion: Completion, window: int, tail: int) -> dict[str, Any] | None:
    confidence = completion.confidence or confidence_of(completion.logprobs, window, tail)
    return None if confidence is None else confidence.model_dump(mode="json")


@named_task("ttc_score")
async def score_task(verifier: Verifier, prompt: list[Message], texts: list[str]) -> dict[str, Any]:
    """Score texts with an outcome verifier: one call of it."""
    scores, record = await replay.recorded(verifier.score(prompt, texts))
    return {"scores": [score.model_dump(mode="json") for score in scores], "record": record}


@named_task("ttc_score_steps")
async def score_steps_task(
    verifier: StepVerifier, prompt: list[Message], solutions: list[list[str]]
) -> dict[str, Any]:
    """Score the steps of partial solutions with a step verifier: one call of it."""
    scores, record = await replay.recorded(verifier.score_steps(prompt, solutions))
    return {"scores": [score.model_dump(mode="json") for score in scores], "record": record}


async def sample(
    model: ChatModel,
    prompt: list[Message],
    n: int,
    settings: SamplingSettings,
    strategy: str,
    *,
    done: int = 0,
    total: int | None = None,
    signals: tuple[int, int] = (DEFAULT_WINDOW, DEFAULT_TAIL),
    keep_logprobs: bool = False,
    **options: Any,
) -> list[Completion]:
    """Sample n completions with the settings' temperature and max_tokens (a task); the
    confidence signals of those with logprobs are read with ``signals`` = (window, tail)."""
    defaults = {
        "temperature": settings.temperature,
        "max_tokens": getattr(settings, "max_tokens", None),
    }
    options = defaults | options
    progress = ("sampled", strategy, done, total if total is not None else n)
    result = await sample_task(model, prompt, n, options, progress, signals, keep_logprobs)
    replay.replayed(result["record"])
    if result["failed"] and (failures := _failures.get()) is not None:
        failures.append(result["failed"])
    return [Completion.model_validate(row) for row in result["completions"]]


def lost_as_empty(results: list[Any], counts: Sequence[int]) -> list[Any]:
    """Results of concurrent ``sample`` calls (``gather(..., return_exceptions=True)``) with
    each call whose samples all failed for good counted as failed and replaced by no samples.

    Failures that every request would meet (a refused key) pass through, and so does the
    first failure when every call failed: then there is nothing to go on with.

    Example:
        >>> lost_as_empty([[1], [2]], [1, 1])
        [[1], [2]]
    """
    lost = [
        i for i, r in enumerate(results) if isinstance(r, ModelError) and not r.fails_every_request
    ]
    if not lost:
        return results
    if len(lost) == len(results):
        raise results[lost[0]]
    if (failures := _failures.get()) is not None:
        failures.append(sum(counts[i] for i in lost))
    return [[] if i in lost else r for i, r in enumerate(results)]


@contextmanager
def counting_failures() -> Iterator[list[int]]:
    """Collect the counts of samples that failed for good within this block.

    Example:
        >>> with counting_failures() as failures:
        ...     pass
        >>> sum(failures)
        0
    """
    failures: list[int] = []
    token = _failures.set(failures)
    try:
        yield failures
    finally:
        _failures.reset(token)


def call_size(verifier: object, count: int) -> int:
    """How many of ``count`` texts one call of ``verifier`` scores: its ``batch_size`` (1 for a
    judge that asks about each candidate alone, a PRM's forward pass), else all of them.

    Example:
        >>> call_size(object(), 8)
        8
    """
    size = getattr(verifier, "batch_size", None)
    return max(1, int(size) if size else count)


async def score_steps(
    verifier: StepVerifier, prompt: list[Message], solutions: Sequence[Sequence[str]]
) -> list[StepScores]:
    """Score the steps of partial solutions, each call of the verifier a task.

    A verifier that caches its verdicts (``remember``) is handed those a resumed run replays,
    so that it does not ask again about the steps they judged.
    """
    size = call_size(verifier, len(solutions))

    async def one_call(start: int) -> list[StepScores]:
        part = [list(steps) for steps in solutions[start : start + size]]
        with spending("verification"):
            result = await score_steps_task(verifier, prompt, part)
        scores = [StepScores.model_validate(row) for row in result["scores"]]
        remember = getattr(verifier, "remember", None)
        if replay.replayed(result["record"]) and remember is not None:
            remember(prompt, part, scores)
        return scores

    calls = range(0, len(solutions), size)
    results = await asyncio.gather(*(one_call(start) for start in calls), return_exceptions=True)
    return [scores for batch in within_budget(results) for scores in batch]


def candidates_from(
    completions: Sequence[Completion],
    key: Callable[[str], str | None] | None = None,
    start: int = 0,
) -> list[Candidate]:
    """Number completions as candidates (from ``start``), with answer keys when given."""
    return [
        Candidate(
            index=start + i,
            text=c.text,
            finish_reason=c.finish_reason,
            usage=c.usage,
            key=key(c.text) if key else None,
            tool_calls=c.tool_calls,
            confidence=c.confidence or confidence_of(c.logprobs),
        )
        for i, c in enumerate(completions)
    ]


def with_scores(
    candidates: Sequence[Candidate], scores: Sequence[Score | None], **update: Any
) -> list[Candidate]:
    """The candidates with their scores (None: the budget left it unscored) and ``update``."""
    return [
        c.model_copy(update={"score": s, **update}) for c, s in zip(candidates, scores, strict=True)
    ]


async def sample_some(
    model: ChatModel,
    prompt: list[Message],
    n: int,
    settings: SamplingSettings,
    strategy: str,
    **options: Any,
) -> list[Completion]:
    """Like ``sample``, but when the budget runs out part-way, the completions that arrived.

    Raises:
        BudgetExhausted: not even one completion fits in the budget.
    """
    try:
        return await sample(model, prompt, n, settings, strategy, **options)
    except BudgetExhausted as exc:
        arrived = [c for c in exc.partial if c is not None]
        if not arrived:
            raise
        return arrived


async def score_some(
    verifier: Verifier, prompt: list[Message], texts: Sequence[str], strategy: str
) -> list[Score | None]:
    """Score texts with an outcome verifier, each call of it a task; None for the texts the
    budget left unscored. Emits a ``scored`` event for each score."""
    size, counter = call_size(verifier, len(texts)), counter_for("scored", strategy, len(texts))

    async def one_call(start: int) -> list[Score | None]:
        part = list(texts[start : start + size])
        try:
            with spending("verification"):
                result = await score_task(verifier, prompt, part)
        except BudgetExhausted as exc:  # some or all of this call's texts were not scored
            partial = exc.partial if isinstance(exc.partial, list) else []
            rows = partial if len(partial) == len(part) else [None] * len(part)
        else:
            replay.replayed(result["record"])
            rows = result["scores"]
        scores = [None if row is None else Score.model_validate(row) for row in rows]
        for i, score in enumerate(scores):
            if score is not None:
                counter.tick(index=start + i, score=score.value)
        return scores

    calls = range(0, len(texts), size)
    results = await asyncio.gather(*(one_call(start) for start in calls), return_exceptions=True)
    return [score for batch in within_budget(results) for score in batch]
