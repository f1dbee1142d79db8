"""What ``ttc serve`` does with each field of a client's request when it thinks harder: uses it
itself, forwards it to the upstream with every candidate's request, or refuses it with a 400
that names it (never drops it silently).

- Used by the proxy (``PROXY_FIELDS``): the model (and its effort suffix), the messages, ``n``
  (1: ask for candidates with ``ttc.n``), ``stream`` and ``stream_options`` (the proxy streams
  the answer), ``temperature`` and ``max_tokens`` / ``max_completion_tokens`` (each
  candidate's), ``reasoning_effort`` and ``ttc`` (what to run).
- Refused (``REFUSED``) when they ask for something: what the chosen answer cannot carry back
  (its logprobs, audio, web-search citations) and legacy ``functions``, whose replies
  (``function_call``) are not candidates' tool calls.
- Everything else is forwarded as sent (tools, tool_choice, parallel_tool_calls,
  response_format, stop, seed, top_p, penalties, logit_bias, user, metadata, a server's own
  fields...). The judge's requests carry none of them: it has its own prompt and schema.
"""

from __future__ import annotations

from typing import Any

PROXY_FIELDS = frozenset(
    {
        "model",
        "messages",
        "n",
        "stream",
        "stream_options",
        "temperature",
        "max_tokens",
        "max_completion_tokens",
        "reasoning_effort",
        "ttc",
    }
)
"""Fields the proxy uses itself."""

_LOGPROBS = "the answer is chosen among candidates and their logprobs are not kept"
_LEGACY = "legacy function calls are not chosen among: offer the functions as tools"
REFUSED = {
    "logprobs": _LOGPROBS,
    "top_logprobs": _LOGPROBS,
    "functions": f"{_LEGACY} ({{'type': 'function', 'function': ...}})",
    "function_call": f"{_LEGACY} and pick one with tool_choice",
    "audio": "the candidates' audio is not kept",
    "web_search_options": "the chosen answer's citations (annotations) are not kept",
}
"""Fields the proxy cannot honour when thinking harder, with the reason (``modalities`` too,
when it asks for more than text)."""


class BadRequest(Exception):
    """A client error: the status and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def forwarded_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The fields of a thinking-harder request that go with every candidate's request.

    Raises:
        BadRequest: 400 naming a field that asks for what the proxy cannot honour.

    Example:
        >>> forwarded_fields({"model": "m", "messages": [], "seed": 7, "logprobs": False})
        {'seed': 7}
    """
    for name, why in REFUSED.items():
        if body.get(name) not in (None, False, 0, []):  # {} asks too: web search's defaults
            raise BadRequest(400, f"{name!r} cannot be honoured when thinking harder: {why}")
    if set(body.get("modalities") or ["text"]) != {"text"}:
        raise BadRequest(
            400, "'modalities' other than text cannot be honoured when thinking harder"
        )
    return {
        name: value
        for name, value in body.items()
        if name not in PROXY_FIELDS and name not in REFUSED
    }
