"""The extra fields a caller adds to every request of a model (``OpenAIChat(request_fields=...)``;
the fields ttc-agent sets itself are shaped in ``ttc_agent.models.shaping``).

Extra fields stop where ttc-agent's own begin:

- The fields ttc-agent sets itself are refused (``OWN_FIELDS``): strategies set the sampling
  temperature and length per call, the budget reserves by ``max_tokens``, verifiers ask for
  logprobs, and ``n`` and ``stream`` are how the model talks to the server.
- A field a call sets itself wins over the caller's: ``stop`` (step search's step delimiter),
  ``response_format`` (a judge's schema), ``tools`` (the model's own ``tools=``).
- A call whose reply has a shape of its own (one that asks for a JSON schema, such as a judge's,
  or a continuation over ``/completions``) leaves out the fields that shape replies
  (``SHAPE_FIELDS``: tools, tool choice, response format, legacy functions).
- Any other field travels as given, including those the openai client does not know (a
  server's own, such as vLLM's ``top_k``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ttc_agent.errors import ConfigurationError

OWN_FIELDS = (
    "model",
    "messages",
    "prompt",
    "n",
    "stream",
    "stream_options",
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "logprobs",
    "top_logprobs",
)
"""Fields only ttc-agent sets."""

SHAPE_FIELDS = (
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "functions",
    "function_call",
)
"""Fields that shape a reply: left out of requests whose reply has a shape of its own."""


def checked_fields(fields: Mapping[str, Any] | None) -> dict[str, Any]:
    """The caller's extra request fields, or a ``ConfigurationError`` naming one that
    ttc-agent sets itself.

    Example:
        >>> checked_fields({"seed": 7})
        {'seed': 7}
    """
    fields = dict(fields or {})
    for name in OWN_FIELDS:
        if name in fields:
            raise ConfigurationError(
                f"request_fields cannot set {name!r}: ttc-agent sets it itself (fields it sets: "
                f"{', '.join(OWN_FIELDS)})"
            )
    return fields


def fields_for(
    fields: Mapping[str, Any], request: Mapping[str, Any], *, shaped: bool
) -> dict[str, Any]:
    """The extra fields one request takes: those it does not set itself, less the shape
    fields when its reply has a shape of its own.

    Example:
        >>> fields = {"seed": 7, "stop": ["\\n"], "tools": []}
        >>> fields_for(fields, {"stop": ["Step"]}, shaped=True)
        {'seed': 7}
    """
    return {
        name: value
        for name, value in fields.items()
        if name not in request and not (shaped and name in SHAPE_FIELDS)
    }
