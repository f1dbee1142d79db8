"""When and how long to retry a failed model call.

Retried: 429 (after the server's Retry-After when it sends one), 408, 409, 5xx, timeouts,
dropped connections and responses without choices. Never retried: 400, 401, 403, 404, 422
and every other client error, which a retry cannot fix.
"""

from __future__ import annotations

import contextlib
import email.utils
import time
from dataclasses import dataclass

import openai
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

_RETRYABLE_STATUS = frozenset({408, 409, 429})


class EmptyResponse(Exception):
    """The server answered 200 but with no choices; worth another try."""


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed call is worth another try.

    Example:
        >>> is_retryable(TimeoutError()), is_retryable(ValueError())
        (False, False)
    """
    if isinstance(exc, openai.APIConnectionError | EmptyResponse):  # includes timeouts
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _RETRYABLE_STATUS or exc.status_code >= 500
    return False


def retry_after_seconds(exc: BaseException | None) -> float | None:
    """The delay a server asked for in ``retry-after-ms`` or ``Retry-After``, if any."""
    response = getattr(exc, "response", None)
    if response is None:
        return None
    headers = response.headers
    if (ms := headers.get("retry-after-ms")) is not None:
        with contextlib.suppress(ValueError):  # malformed: fall back to Retry-After
            return max(0.0, float(ms) / 1000)
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring Retry-After.

    Args:
        attempts: tries in all, the first included.
        initial_wait: seconds before the first retry (doubled each time, plus jitter).
        max_wait: the longest single wait, Retry-After included.

    Example:
        >>> RetryPolicy(attempts=3).attempts
        3
    """

    attempts: int = 6
    initial_wait: float = 0.5
    max_wait: float = 60.0

    def _wait(self, state: RetryCallState) -> float:
        backoff = wait_exponential_jitter(
            multiplier=self.initial_wait, max=self.max_wait, jitter=self.initial_wait
        )
        exc = state.outcome.exception() if state.outcome else None
        asked = retry_after_seconds(exc)
        if asked is not None:
            return min(asked, self.max_wait)
        return backoff(state)

    def retrying(self) -> AsyncRetrying:
        """A tenacity controller for one call: ``async for attempt in policy.retrying(): ...``."""
        return AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=retry_if_exception(is_retryable),
            reraise=True,
        )
