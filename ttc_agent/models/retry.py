"""When and how long to retry a failed model call.

Retried: 429 (after the server's Retry-After when it sends one), 408, 409, 5xx, timeouts,
dropped connections and responses without choices. Never retried: 400, 401, 403, 404, 422
and every other client error, which a retry cannot fix. (An endpoint that has never answered
and refuses the connection is not retried either: see ``Endpoint``.)

Two details as openai-python has them: a server that asks (Retry-After) for a longer wait than
the policy's ``max_wait`` is not retried, since an earlier try would be refused again; and a
server's ``x-should-retry: true`` or ``false`` decides over the status.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import openai

T = TypeVar("T")

_RETRYABLE_STATUS = frozenset({408, 409, 429})


class EmptyResponse(Exception):
    """The server answered 200 but with no choices; worth another try."""


class UnreadableReply(EmptyResponse):
    """The server answered 200 with a body that is not a JSON object; worth another try."""


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


def server_says_retry(exc: BaseException) -> bool | None:
    """What the server's ``x-should-retry`` header says of a failed call (None: nothing).

    Example:
        >>> server_says_retry(ValueError()) is None
        True
    """
    response = getattr(exc, "response", None)
    if response is None:
        return None
    return {"true": True, "false": False}.get(response.headers.get("x-should-retry", ""))


def could_not_connect(exc: BaseException) -> bool:
    """Whether a failed call never opened a connection (refused, unknown host, no route), as
    opposed to a connection that dropped or timed out once open.

    The HTTP stacks under the ``openai`` client raise a ``ConnectError`` (httpx, its fork
    httpx2) or a ``ClientConnectorError`` (aiohttp) for exactly these, so they are recognised
    by name, whichever stack it is.

    Example:
        >>> class ConnectError(Exception): ...
        >>> could_not_connect(ConnectError("refused")), could_not_connect(ValueError())
        (True, False)
    """
    names = {"ConnectError", "ClientConnectorError"}
    return any(kind.__name__ in names for e in _chain(exc) for kind in type(e).__mro__)


def timed_out(exc: BaseException) -> bool:
    """Whether a failed call ran out of time.

    The openai client's aiohttp transport reports every aiohttp connection error as a timeout,
    a refused or dropped connection too; the aiohttp error underneath says whether it was one.

    Example:
        >>> timed_out(TimeoutError()), timed_out(ConnectionResetError())
        (True, False)
    """
    if not isinstance(exc, openai.APITimeoutError | TimeoutError):
        return False
    underneath = [e for e in _chain(exc) if type(e).__module__.startswith("aiohttp.")]
    return all(isinstance(e, TimeoutError) for e in underneath)


def describe(exc: BaseException | None) -> str:
    """Why a call failed, in a few words, for retry notices and errors.

    Example:
        >>> describe(ConnectionRefusedError()), describe(EmptyResponse())
        ('connection refused', 'no choices in the reply')
    """
    chain = _chain(exc) if exc is not None else []
    if exc is not None and timed_out(exc):
        return "timed out"
    if isinstance(exc, openai.APIStatusError):
        return f"answered {exc.status_code}"
    if isinstance(exc, UnreadableReply):
        return "a reply that is not JSON"
    if isinstance(exc, EmptyResponse):
        return "no choices in the reply"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    if any(isinstance(e, socket.gaierror) for e in chain):
        return "host name not found"
    if exc is not None and could_not_connect(exc):
        return "could not connect"
    if isinstance(exc, openai.APIConnectionError):
        return "connection lost"
    return type(exc).__name__


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes (``raise ... from``) and contexts, first to last."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


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
        on_retry: called before each retry with the attempt about to be made, the attempts in
            all and why the last one failed, e.g. ``(2, 6, "answered 503")``.

    Example:
        >>> RetryPolicy(attempts=3).attempts
        3
    """

    attempts: int = 6
    initial_wait: float = 0.5
    max_wait: float = 60.0
    on_retry: Callable[[int, int, str], None] | None = None

    def delay(self, attempt: int, exc: BaseException) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (from 1): what the server
        asked for (Retry-After), else exponential backoff with jitter, at most ``max_wait``.

        Example:
            >>> RetryPolicy(initial_wait=0.5, max_wait=60).delay(1, ValueError()) < 1.0
            True
        """
        asked = retry_after_seconds(exc)
        if asked is not None:
            return min(asked, self.max_wait)
        backoff = self.initial_wait * 2 ** (attempt - 1) + random.uniform(0, self.initial_wait)
        return max(0.0, min(backoff, self.max_wait))

    def waits_too_long(self, exc: BaseException) -> float | None:
        """The wait the server asked for, when it is longer than ``max_wait`` (else None).

        Example:
            >>> RetryPolicy(max_wait=60).waits_too_long(ValueError()) is None
            True
        """
        asked = retry_after_seconds(exc)
        return asked if asked is not None and asked > self.max_wait else None

    def retries(self, exc: BaseException) -> bool:
        """Whether a failure is worth another try under this policy: not when the server asks
        to wait longer than ``max_wait``; else as its ``x-should-retry`` says, else as
        ``is_retryable``.

        Example:
            >>> RetryPolicy().retries(TimeoutError())
            False
        """
        if self.waits_too_long(exc) is not None:
            return False
        said = server_says_retry(exc)
        return is_retryable(exc) if said is None else said

    async def call(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt()``, tried again after each retryable failure until ``attempts`` tries
        are spent (the last failure is raised as it is)."""
        number = 1
        while True:
            try:
                return await attempt()
            except Exception as exc:
                if number >= self.attempts or not self.retries(exc):
                    raise
                if self.on_retry is not None:
                    self.on_retry(number + 1, self.attempts, describe(exc))
                await asyncio.sleep(self.delay(number, exc))
                number += 1
