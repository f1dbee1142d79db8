"""``OpenAIChat``'s configuration, resolved in one place from its arguments and the environment
(``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``TTC_MODEL``, ``TTC_CONTINUATION``): which endpoint,
which model, or the embedded one; how to ask for JSON, continue a reply and sample ``n``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Literal

import httpx

from ttc_agent.errors import ConfigurationError
from ttc_agent.models.continuation import Continuation, checked
from ttc_agent.models.endpoint import Endpoint, check_base_url, concurrency_limit
from ttc_agent.models.retry import RetryPolicy
from ttc_agent.models.shaping import JSONMode
from ttc_agent.models.turn import LOCAL_CPU

NMode = Literal["auto", "native", "parallel"]
"""How ``n`` samples are asked for: ``native`` (n in one request), ``parallel`` (one request
each) or ``auto`` (n in one request, until the server is seen to return fewer)."""

if TYPE_CHECKING:
    from ttc_agent.models.embedded import GGUFSpec

_HONOURS_N: dict[str, bool | None] = {"auto": None, "native": True, "parallel": False}


@dataclass(frozen=True)
class ChatSettings:
    """What an ``OpenAIChat`` talks to and how.

    Attributes:
        model: the model to name in requests (None: ask the server which it serves).
        base_url: the endpoint (None: OpenAI's, or the embedded model's once started).
        api_key: the key sent as a Bearer token.
        embedded: the embedded model to start (None: an endpoint was configured).
        json_mode: how to ask for a reply in a JSON schema (``ttc_agent.models.shaping``).
        continuation: how to continue a partial reply (``ttc_agent.models.continuation``).
        honours_n: whether the server returns ``n`` choices (None: not known yet).
    """

    model: str | None
    base_url: str | None
    api_key: str | None
    embedded: str | None
    json_mode: JSONMode
    continuation: Continuation
    honours_n: bool | None

    @property
    def local(self) -> bool:
        """Whether the model is the embedded one."""
        return self.embedded is not None

    def endpoint(
        self,
        *,
        timeout: float,
        retry: RetryPolicy | None,
        max_concurrency: int | None,
        http_client: httpx.AsyncClient | None,
    ) -> Endpoint:
        """The endpoint these settings name (the embedded model's: started on first use, one
        request at a time on the CPU it shares)."""
        return Endpoint(
            self.base_url,
            self.api_key,
            timeout=timeout,
            retry=retry,
            max_concurrency=max_concurrency,
            locate=partial(_embedded_base_url, self.embedded) if self.embedded else None,
            turn=LOCAL_CPU if self.embedded else None,
            http_client=http_client,
        )


def resolve_settings(
    model: str | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    embedded: str | None = None,
    n_mode: NMode = "auto",
    json_mode: JSONMode | None = None,
    continuation: Continuation | None = None,
    max_concurrency: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> ChatSettings:
    """The settings of ``OpenAIChat(...)``: unset arguments from ``environ`` (None: the
    process's environment); no endpoint at all (no base URL and no API key) is the embedded
    model, named ``embedded`` (``"0.5b"`` when unset), whatever the environment says.

    Raises:
        ConfigurationError: an argument or variable out of range, naming it.

    Example:
        >>> resolve_settings("m", base_url="http://h/v1", api_key="k", environ={}).json_mode
        'json_schema'
        >>> resolve_settings(environ={}).embedded, resolve_settings(environ={}).continuation
        ('0.5b', 'auto')
    """
    env = os.environ if environ is None else environ
    concurrency_limit(max_concurrency)  # refused at once when below 1
    if n_mode not in _HONOURS_N:
        raise ConfigurationError(f"n_mode must be auto, native or parallel, got {n_mode!r}")
    if json_mode not in (None, "json_schema", "json_object", "off"):
        raise ConfigurationError(
            f"json_mode must be json_schema, json_object or off, got {json_mode!r}"
        )
    if embedded is not None:
        if base_url is not None or api_key is not None:
            raise ConfigurationError("give base_url and api_key, or embedded, not both")
    else:
        model = model or env.get("TTC_MODEL") or None
        if base_url is None and env.get("OPENAI_BASE_URL"):
            base_url = check_base_url(env["OPENAI_BASE_URL"], "OPENAI_BASE_URL")
        api_key = api_key or env.get("OPENAI_API_KEY") or None
    local = _embedded_model(embedded) if base_url is None and api_key is None else None
    if local is None and continuation is None:
        continuation = env.get("TTC_CONTINUATION") or None  # type: ignore[assignment]
    return ChatSettings(
        model=model or (local.alias if local else None),  # the embedded one's, before it starts
        base_url=base_url,
        api_key=api_key,
        embedded=(embedded or "0.5b") if local else None,
        json_mode=json_mode or ("json_object" if local else "json_schema"),
        continuation=checked(continuation),
        honours_n=_HONOURS_N[n_mode],
    )


def _embedded_model(name: str | None) -> GGUFSpec:
    """The embedded model named (imported only when one is used)."""
    from ttc_agent.models.embedded import EMBEDDED_MODELS

    if name is not None and name not in EMBEDDED_MODELS:
        raise ConfigurationError(
            f"unknown embedded model {name!r}; available: {', '.join(EMBEDDED_MODELS)}"
        )
    return EMBEDDED_MODELS[name or "0.5b"]


def _embedded_base_url(name: str) -> str:
    from ttc_agent.models.embedded import EMBEDDED_MODELS, embedded_server

    return embedded_server(EMBEDDED_MODELS[name]).base_url


class ModelName:
    """The model to name in requests: the one configured, else the one the endpoint serves
    (asked once, on first use).

    Example:
        >>> ModelName("m", Endpoint("http://127.0.0.1:9/v1", None)).known
        'm'
    """

    def __init__(self, name: str | None, endpoint: Endpoint) -> None:
        self.known, self.endpoint = name, endpoint
        self._discovery: asyncio.Lock | None = None

    async def resolve(self) -> str:
        """The name; asks the endpoint when none was configured (``Endpoint.served_model``)."""
        if self.known is not None:
            return self.known
        self._discovery = self._discovery or asyncio.Lock()
        async with self._discovery:
            if self.known is None:
                self.known = await self.endpoint.served_model()
        return self.known
