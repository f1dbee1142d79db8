"""How a model continues a partial assistant reply (step-level search), server by server.

Servers differ: vLLM continues a final assistant message only when asked
(``continue_final_message``), OpenAI's API never does (it answers it with a fresh reply),
llama.cpp's llama-server renders its chat template for ``/completions``. ``auto`` tells them
apart by the ``owned_by`` of the model in ``/v1/models``, once, before the first step.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Sequence
from typing import Any, Literal

from ttc_agent.errors import ConfigurationError, ModelError
from ttc_agent.models.endpoint import Endpoint
from ttc_agent.models.metering import ONE_CALL
from ttc_agent.models.shaping import chatml, text_completion, vllm_continuation
from ttc_agent.types import Message

Continuation = Literal["auto", "prefill", "vllm", "chatml", "llamacpp"]
"""How to continue a partial reply: ``auto`` (ask the server), ``prefill`` (a final assistant
message the server continues by itself), ``vllm`` (vLLM's ``continue_final_message``),
``chatml`` (render ChatML, use ``/completions``) or ``llamacpp`` (render with llama-server's own
template through ``/apply-template``, then ``/completions``)."""

__all__ = ["CONTINUATIONS", "Continuation", "Continuer", "chatml", "checked", "from_owner"]

CONTINUATIONS: tuple[Continuation, ...] = ("auto", "prefill", "vllm", "chatml", "llamacpp")

OWNERS: dict[str, Continuation] = {"vllm": "vllm", "llamacpp": "llamacpp"}
"""The ``owned_by`` values of ``/v1/models`` that say how a server continues a reply."""

CHOICES = (
    "set continuation= (ttc --continuation, TTC_CONTINUATION) to vllm (vLLM), llamacpp "
    "(llama.cpp's llama-server), chatml (a /completions endpoint serving a ChatML model) or "
    "prefill (a server that continues a final assistant message, such as Ollama)"
)


def checked(value: str | None) -> Continuation:
    """A ``continuation=`` setting, validated (None: ``auto``).

    Example:
        >>> checked(None), checked("vllm")
        ('auto', 'vllm')
    """
    if value is None:
        return "auto"
    for choice in CONTINUATIONS:
        if value == choice:
            return choice
    raise ConfigurationError(
        f"continuation must be one of {', '.join(CONTINUATIONS)}, got {value!r}"
    )


def from_owner(where: str, model: str, owner: str | None) -> Continuation:
    """The continuation a server's ``owned_by`` calls for, or a ``ConfigurationError`` that
    names the endpoint and the choices (None: the server has no ``/v1/models``).

    Example:
        >>> from_owner("http://h/v1", "m", "vllm")
        'vllm'
    """
    if owner is not None and owner in OWNERS:
        return OWNERS[owner]
    if owner is None:
        why = "has no /v1/models to tell which server it is"
    elif owner in ("openai", "system", "openai-internal"):
        why = (
            f"serves {model!r} owned by {owner!r}: OpenAI's API answers a partial reply with a "
            "fresh one, so steps would not continue"
        )
    else:
        why = f"serves {model!r} owned by {owner!r}, a server ttc-agent cannot tell how to ask"
    raise ConfigurationError(
        f"step search needs to continue partial replies, but {where} {why}; {CHOICES}"
    )


class Continuer:
    """Continues partial replies on one endpoint: resolves ``auto`` once, from ``owned_by``,
    and keeps llama-server's renderings of the conversations it continues.

    Example:
        >>> import asyncio
        >>> continuer = Continuer(Endpoint("http://127.0.0.1:9/v1", None), "vllm")
        >>> asyncio.run(continuer.mode("m"))
        'vllm'
    """

    def __init__(self, endpoint: Endpoint, setting: Continuation, *, embedded: bool = False):
        self.endpoint, self.setting = endpoint, setting
        self._mode: Continuation | None = "chatml" if embedded and setting == "auto" else None
        self._templates: dict[str, str] = {}
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]
        self._locks = weakref.WeakKeyDictionary()

    async def mode(self, model: str) -> Continuation:
        """How ``model`` continues a partial reply (``/v1/models`` is asked, metered, once).

        Raises:
            ConfigurationError: the server cannot be told to; it names the endpoint and the
                choices. A server without ``/v1/models`` is one.
        """
        if self._mode is None and self.setting != "auto":
            self._mode = self.setting
        if self._mode is None:
            async with self._lock():
                if self._mode is None:
                    owner = await self._owner(model)
                    self._mode = from_owner(self.endpoint.where, model, owner)
        return self._mode

    def _lock(self) -> asyncio.Lock:
        """This event loop's lock: concurrent first steps ask the server once."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def continued(
        self, mode: Continuation, messages: Sequence[Message], prefix: str, params: dict[str, Any]
    ) -> tuple[list[Message], dict[str, Any]]:
        """The messages and parameters that continue ``prefix`` in ``mode`` (a text prompt
        under ``prompt`` for ``/completions``)."""
        continued = [*messages, {"role": "assistant", "content": prefix}]
        if mode == "prefill":
            return continued, params
        if mode == "vllm":
            return continued, vllm_continuation(params)
        prompt = chatml(continued) if mode == "chatml" else await self._template(messages) + prefix
        return continued, text_completion(params, prompt)

    async def _owner(self, model: str) -> str | None:
        """The ``owned_by`` of ``model`` (the server's, when all its models share one); None
        when the server has no ``/v1/models``."""
        try:
            listing = await self.endpoint.models()
        except ModelError as exc:
            if exc.status_code != 404:
                raise
            return None
        owners = dict(listing)
        if model in owners:
            return owners[model] or ""
        kinds = set(owners.values())
        return (kinds.pop() or "") if len(kinds) == 1 else ""

    async def _template(self, messages: Sequence[Message]) -> str:
        """The conversation rendered by llama-server's own chat template, ready for the
        assistant's reply (asked once per conversation, a metered call)."""
        key = json.dumps(list(messages), sort_keys=True)
        async with self._lock():
            if key not in self._templates:
                self._templates[key] = await self._render(messages)
        return self._templates[key]

    async def _render(self, messages: Sequence[Message]) -> str:
        """One rendering by ``/apply-template`` (a 404: the server has none)."""
        where = f"{self.endpoint.root}/apply-template"
        body = {"messages": list(messages)}
        try:
            reply = await self.endpoint.call(
                lambda client: client.post(where, cast_to=object, body=body), cost=ONE_CALL
            )
        except ModelError as exc:
            if exc.status_code != 404:
                raise
            raise ConfigurationError(f"{where} is not served; {CHOICES}") from None
        prompt = reply.get("prompt") if isinstance(reply, dict) else None
        if not isinstance(prompt, str):
            raise ModelError(f"{where} answered without a prompt: {str(reply)[:200]}")
        while len(self._templates) >= 64:
            self._templates.pop(next(iter(self._templates)))
        return prompt
