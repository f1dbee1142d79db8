"""Every contract of ttc-agent in one place: what a model, a verifier, a step verifier and an
answer equivalence must offer, and what a strategy's search function receives and returns.

Implement one of these and every strategy can use it; ``ttc_agent/conformance.py`` checks the
package's own implementations against them with the type checker. This module imports only the
core types and errors, so anything may import it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, Protocol, TypeAlias, TypeVar, runtime_checkable

from pydantic import BaseModel

from ttc_agent.errors import ConfigurationError
from ttc_agent.types import (
    Aggregate,
    Completion,
    Message,
    Score,
    SearchResult,
    StepScores,
    TokenLogprob,
    Usage,
)

OnCompletion = Callable[[Completion], object]
"""Called once for each completion as it arrives (for progress events)."""

OnScore = Callable[[int, Score], object]
"""Called with (candidate index, score) as each candidate's score is ready."""

AnswerKey = Callable[[str], str | None]
"""Extracts a candidate's final answer (None: none found), e.g. ``last_number``."""


@runtime_checkable
class ChatModel(Protocol):
    """Anything that can sample chat completions: ``OpenAIChat``, ``LangChainChat``, yours.

    ``sample`` returns exactly ``n`` completions, each carrying its share of the token usage.
    ``top_logprobs`` asks for that many alternatives at every generated token, where the
    endpoint gives them (completions come back without logprobs where it does not).
    ``json_schema`` asks for a reply constrained to that JSON schema, in whatever way the
    endpoint supports it (a hint: callers still validate what comes back). ``prefix`` continues
    the assistant's reply from that text (step-level search): the completions hold only the
    continuation. A model declares whether it can continue a partial reply at all through
    ``check_continuation``, which step search awaits before its first request.
    """

    @property
    def name(self) -> str:
        """The model's name, as results record it."""
        ...

    async def sample(
        self,
        messages: Sequence[Message],
        n: int = 1,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_logprobs: int | None = None,
        stop: Sequence[str] | None = None,
        json_schema: dict[str, Any] | None = None,
        prefix: str | None = None,
        on_completion: OnCompletion | None = None,
    ) -> list[Completion]: ...

    async def check_continuation(self) -> None:
        """Raise ``ConfigurationError`` (naming the model and how to fix it) unless ``sample``
        can continue a partial reply given as ``prefix``."""
        ...

    async def aclose(self) -> None: ...


StopRule = Callable[[TokenLogprob], bool]
"""Called with each streamed token as it arrives; True cancels the stream."""

CancelWhen = Callable[[], StopRule]
"""Makes a fresh ``StopRule`` for each attempt of a stream (a retried stream starts again)."""


@runtime_checkable
class StreamingChatModel(ChatModel, Protocol):
    """A model that can also stream one completion with its logprobs and cancel it mid-way
    (``deepconf``'s online mode): ``OpenAIChat``.

    ``stream_sample`` returns one completion; when ``cancel_when``'s rule stops it, the stream
    is closed (so that the server stops generating) and the completion holds what arrived, with
    ``finish_reason="cancelled"``.
    """

    async def stream_sample(
        self,
        messages: Sequence[Message],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_logprobs: int | None = None,
        cancel_when: CancelWhen | None = None,
    ) -> Completion: ...


async def can_continue(model: ChatModel) -> bool:
    """Whether ``model`` can continue a partial reply (its ``check_continuation`` passes)."""
    try:
        await model.check_continuation()
    except ConfigurationError:
        return False
    return True


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


@runtime_checkable
class StepVerifier(Protocol):
    """Scores the steps of several (partial) solutions to one prompt, in one batch.

    ``solutions[i]`` is the list of steps of solution i (the text between step delimiters, in
    order, without the delimiters). The result has one ``StepScores`` per solution, in order,
    with one score in [0, 1] per step: the verifier's estimate that the solution is still on a
    correct path after that step.

    A verifier may say how its step scores are best combined into a solution's score with a
    ``preferred_aggregate`` attribute (see ``preferred_aggregate``): ``last`` for a PRM trained
    to value the whole prefix, ``min`` for a judge of the latest step alone.
    """

    @property
    def name(self) -> str:
        """The verifier's name, as results record it."""
        ...

    async def score_steps(
        self, prompt: Sequence[Message], solutions: Sequence[Sequence[str]]
    ) -> list[StepScores]: ...


def preferred_aggregate(verifier: object) -> Aggregate:
    """How ``verifier``'s step scores are best aggregated: its ``preferred_aggregate``, or
    ``last`` (the score of the whole prefix) when it does not say.

    Example:
        >>> preferred_aggregate(object())
        'last'
    """
    return getattr(verifier, "preferred_aggregate", "last")


class PairwiseComparison(Protocol):
    """A pairwise judge's verdict on two answers, asked in both orders."""

    @property
    def outcome(self) -> Literal["first", "second", "tie"]:
        """Which answer won: the one shown first in the first order, the other, or neither."""
        ...

    @property
    def preference(self) -> float:
        """The probability that the first answer wins, both orders averaged (0.5: none)."""
        ...

    @property
    def usage(self) -> Usage: ...


@runtime_checkable
class PairwiseVerifier(Protocol):
    """Compares two answers to one prompt, in both orders (``PairwiseJudge``)."""

    @property
    def name(self) -> str:
        """The judge's name, as results record it."""
        ...

    async def compare_both_orders(
        self, prompt: Sequence[Message], first: str, second: str
    ) -> PairwiseComparison: ...


@runtime_checkable
class Equivalence(Protocol):
    """Assigns each candidate text a group label (None: no answer found)."""

    name: str

    def labels(self, texts: Sequence[str]) -> list[str | None]: ...


Part = Literal["verifier", "step_verifier", "answer_key", "equivalence", "is_final", "pairwise"]
"""The name of one of ``Parts``' optional fields (what a strategy may need)."""


@dataclass(frozen=True)
class Parts:
    """What a search draws on besides its settings: the objects that shape it, fixed when its
    node is built (settings, by contrast, are plain values an invocation may override).

    Each strategy says which parts it needs and which it takes when given (its registry row);
    a part it does not use is ignored.

    Attributes:
        model: samples every candidate.
        verifier: scores whole candidates (a judge, ``StepsAsOutcome``).
        step_verifier: scores the steps of partial solutions (a PRM, ``LLMStepJudge``).
        answer_key: extracts a candidate's final answer, for weighted selection and agreement.
        equivalence: groups candidates that give the same answer (majority voting).
        is_final: says whether a step ends a solution where the server does not say (step
            search; ``None``: ``\\boxed{``, "answer is" or ``####``).
        pairwise: compares two candidates in both orders (tournament selection).
    """

    model: ChatModel
    verifier: Verifier | None = None
    step_verifier: StepVerifier | None = None
    answer_key: AnswerKey | None = None
    equivalence: Equivalence | None = None
    is_final: Callable[[str], bool] | None = None
    pairwise: PairwiseVerifier | None = None

    def missing(self, needs: Collection[Part]) -> list[str]:
        """The parts of ``needs`` that were not given, in field order."""
        return [f.name for f in fields(self) if f.name in needs and getattr(self, f.name) is None]

    def only(self, names: Collection[Part]) -> Parts:
        """These parts with only ``names`` given besides the model (the rest left out)."""
        given = {name: getattr(self, name) for name in names}
        return Parts(model=self.model, **given)


T = TypeVar("T")


def required(part: T | None, name: Part) -> T:
    """A part its strategy needs; registry rows check this before a search starts.

    Example:
        >>> required(None, "verifier")
        Traceback (most recent call last):
        ...
        ttc_agent.errors.ConfigurationError: this strategy needs parts.verifier, not given
    """
    if part is None:
        raise ConfigurationError(f"this strategy needs parts.{name}, not given")
    return part


S = TypeVar("S", bound=BaseModel)

SearchFunction: TypeAlias = Callable[[list[Message], S, Parts], Awaitable[SearchResult]]
"""A strategy's algorithm: ``async def search(prompt, settings, parts) -> SearchResult``.

It runs one search for one prompt (the conversation as OpenAI-style messages) with validated
settings (a frozen pydantic model of the strategy's own) and its ``Parts``, inside a graph run:
``StrategyNode`` does everything else (state, overrides, budget, failures, the reply).
"""
