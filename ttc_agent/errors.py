"""Every error ttc-agent raises, in one place.

    TTCError
    ├── ConfigurationError      bad arguments: n < 1, an unknown option, no model named
    │   └── JudgeCardError      a judge card that is missing or invalid
    ├── ModelError              a model endpoint failed for good (after any retries)
    │   ├── SamplesFailed       some of n samples failed for good; ``partial`` holds the rest
    │   ├── EndpointUnreachable no connection could be made
    │   ├── AuthenticationFailed 401 / 403
    │   └── EmbeddedModelError  the embedded local model could not be assembled or started
    ├── JudgeOutputError        a judge's output could not be parsed, after retries
    └── SearchError             a search failed part-way; ``partial`` holds what was computed

Messages name the problem and never contain an API key. Every error is also a built-in
``RuntimeError`` (``ConfigurationError`` a ``ValueError``), the types whose messages servers such
as langgraph-api pass on to their clients instead of "An internal error occurred".
"""

from __future__ import annotations

from typing import Any


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
        partial: the completions that arrived.
        failed: how many samples failed for good.
    """

    def __init__(self, message: str, *, partial: list[Any], failed: int) -> None:
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
        partial: what was already computed (for example the sampled candidates), so that
            nothing paid for is lost.
    """

    def __init__(self, message: str, *, partial: Any = None) -> None:
        super().__init__(message)
        self.partial = partial
