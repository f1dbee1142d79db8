"""Our errors for the ``openai`` client's: each names the endpoint (never the key) and says why
the call failed, after how many attempts, and, for a server that asked to wait longer than the
retry policy would, what it asked."""

from __future__ import annotations

import openai

from ttc_agent.errors import AuthenticationFailed, EndpointUnreachable, ModelError
from ttc_agent.models.retry import RetryPolicy, describe, timed_out


def model_error(
    exc: openai.APIError,
    where: str,
    api_key: str | None,
    retry: RetryPolicy,
    *,
    retried: bool = True,
) -> ModelError:
    """Our error for an openai error on the endpoint ``where`` (the key scrubbed from it).

    Example:
        >>> error = openai.APIConnectionError(request=None)  # type: ignore[arg-type]
        >>> str(model_error(error, "http://h/v1", None, RetryPolicy(attempts=3)))
        'http://h/v1 is unreachable: connection lost (after 3 attempts)'
    """
    message = str(exc)
    if api_key:
        message = message.replace(api_key, "***")
    if isinstance(exc, openai.APIConnectionError):
        after = f" (after {retry.attempts} attempts)" if retried else ""
        if timed_out(exc):
            return EndpointUnreachable(f"{where} timed out{after}")
        return EndpointUnreachable(f"{where} is unreachable: {describe(exc)}{after}")
    status = getattr(exc, "status_code", None)
    if status in (401, 403):
        return AuthenticationFailed(
            f"{where} refused the API key ({status}): {message}", status_code=status
        )
    if (asked := retry.waits_too_long(exc)) is not None:
        message += (
            f" (it asked to wait {asked:g} s, more than the retry policy's max_wait of "
            f"{retry.max_wait:g} s: not retried)"
        )
    return ModelError(f"{where} answered {status}: {message}", status_code=status)
