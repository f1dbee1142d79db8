"""Every contract of ttc-agent in one place: what a model, a verifier, a step verifier and an
answer equivalence must offer, and what a strategy's search function receives and returns.

Implement one of these and every strategy can use it; ``ttc_agent/conformance.py`` checks the
package's own implementations against them with the type checker. This module imports only the
core types and errors, so anything may import it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from ttc_agent.errors import ConfigurationError
from ttc_agent.types import Aggregate, Completion, Message, Score, StepScores

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


@runtime_checkable
class Equivalence(Protocol):
    """Assigns each candidate text a group label (None: no answer found)."""

    name: str

    def labels(self, texts: Sequence[str]) -> list[str | None]: ...
