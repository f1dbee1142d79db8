"""Every error ttc-agent raises, in one place.

    TTCError
    ├── ConfigurationError        bad arguments: n < 1, an unknown option, no model named
    │   └── JudgeCardError        a judge card that is missing or invalid
    ├── ModelError                a model endpoint failed for good (after any retries)
    │   ├── SamplesFailed         some of n samples failed for good
    │   │                         partial: list[Completion], the samples that arrived
    │   ├── EndpointUnreachable   no connection could be made
    │   ├── AuthenticationFailed  401 / 403
    │   └── EmbeddedModelError    the embedded local model could not be assembled or started
    ├── BudgetExhausted           a call did not fit in what is left of the budget
    │                             partial: list, what the interrupted step had produced
    ├── JudgeOutputError          a judge's output could not be parsed, after retries
    │                             raw: str, the judge's last output
    └── SearchError               a search failed part-way
                                  partial: SearchResult | None, what was already computed

Messages name the problem and never contain an API key. Every error is also a built-in
``RuntimeError`` (``ConfigurationError`` a ``ValueError``), the types whose messages servers such
as langgraph-api pass on to their clients instead of "An internal error occurred".
"""

from __future__ import annotations

from typing import Any

from ttc_agent.types import Completion, SearchResult


class TTCError(RuntimeError):
    """Base class of all ttc-agent errors.

    Example:
        >>> isinstance(JudgeOutputError("no verdict"), RuntimeError)
        True
    """


class ConfigurationError(TTCError, ValueError):
    """An argument or setting is invalid; the message names it."""


class JudgeCardError(ConfigurationError):
    """A judge card cannot be found or does not validate."""


class ModelError(TTCError):
    """A call to a model endpoint failed for good.

    Attributes:
        status_code: the HTTP status when the server answered, else None.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code

    @property
    def fails_every_request(self) -> bool:
        """Whether every request would meet this failure alike (a refused key, a request the
        server rejects), rather than this request being unlucky (5xx, timeouts, 429)."""
        status = self.status_code
        return status is not None and 400 <= status < 500 and status not in (408, 409, 429)


class SamplesFailed(ModelError):
    """Some of the samples of one ``sample`` call failed for good; the others arrived.

    Strategies catch it, go on with ``partial`` and report ``failed`` in their result.

    Attributes:
        partial: the completions that arrived, in the order they were asked for.
        failed: how many samples failed for good.
    """

    def __init__(self, message: str, *, partial: list[Completion], failed: int) -> None:
        super().__init__(message)
        self.partial = partial
        self.failed = failed


class EndpointUnreachable(ModelError):
    """No connection to the endpoint could be made (after retries)."""


class AuthenticationFailed(ModelError):
    """The endpoint refused the credentials (401 or 403)."""

    @property
    def fails_every_request(self) -> bool:
        return True


class EmbeddedModelError(ModelError):
    """The embedded local model could not be assembled, verified or started."""


class BudgetExhausted(TTCError):
    """A call would not fit in what is left of the budget, so it was not sent.

    Strategies catch it and return their best result so far, marked ``budget_limited``; it
    reaches you only when nothing at all fitted. (``ttc_agent.budget`` re-exports it.)

    Attributes:
        partial: what the interrupted step had already produced, in order, with ``None`` where
            a call was stopped: the completions of a ``sample`` call that arrived before the
            budget ran out, or one entry per concurrent call (its result, or ``None``) when
            several were stopped together. Empty when the step had produced nothing.
    """

    def __init__(self, message: str, *, partial: list[Any] | None = None) -> None:
        super().__init__(message)
        self.partial: list[Any] = [] if partial is None else partial


class JudgeOutputError(TTCError):
    """A judge's output could not be parsed into scores, even after retries.

    Attributes:
        raw: the judge's last output, for inspection.
    """

    def __init__(self, message: str, *, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


class SearchError(TTCError):
    """A search failed part-way.

    Attributes:
        partial: the search record so far (for example every sampled candidate, unscored, with
            ``chosen=None`` and the usage spent), so that nothing paid for is lost.
    """

    def __init__(self, message: str, *, partial: SearchResult | None = None) -> None:
        super().__init__(message)
        self.partial = partial
