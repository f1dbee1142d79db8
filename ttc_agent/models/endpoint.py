"""One HTTP endpoint as every caller needs it: a client per event loop, bounded concurrency,
retries, and errors that name the endpoint and never the key.

An endpoint that has never answered and cannot be connected to (connection refused, unknown
host) fails at the first request instead of being retried: nothing is listening there yet, and
a few seconds of backoff would only delay the error. Once it has answered, connection trouble
is retried like any other transient failure."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from functools import partial
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import httpx
import httpx2
import openai

from ttc_agent.budget import current_meter
from ttc_agent.errors import (
    ConfigurationError,
    ModelError,
)
from ttc_agent.models.failures import model_error
from ttc_agent.models.metering import ONE_CALL, Cost, metered_call
from ttc_agent.models.retry import EmptyResponse, RetryPolicy, could_not_connect
from ttc_agent.models.turn import SharedTurn

T = TypeVar("T")

ROUND_BOUND = 256
"""Requests in flight at once on one endpoint when no ``max_concurrency`` is given.

A strategy works in rounds (n samples, then n judge calls), and a round split by a limit below
its n costs a whole extra latency: so by default a round goes out at once. The bound stops a
runaway fan-out (many searches at once, each with a large n): 256 is what vLLM batches at most
by default (``--max-num-seqs``), so more in flight would only queue at the server."""


def concurrency_limit(max_concurrency: int | None) -> int:
    """The most requests in flight that ``max_concurrency`` allows (None: ``ROUND_BOUND``).

    Example:
        >>> concurrency_limit(None), concurrency_limit(4)
        (256, 4)
    """
    if max_concurrency is None:
        return ROUND_BOUND
    if max_concurrency < 1:
        raise ConfigurationError(f"max_concurrency must be at least 1, got {max_concurrency}")
    return max_concurrency


def check_base_url(url: str, source: str = "base URL") -> str:
    """The URL, if it is an http(s) URL with a host; else a ``ConfigurationError`` naming it.

    Example:
        >>> check_base_url("http://localhost:8000/v1")
        'http://localhost:8000/v1'
    """
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number
        ok = False
    if not ok:
        raise ConfigurationError(
            f"{source} {url!r} is not an http:// or https:// URL with a host, "
            "e.g. http://localhost:8000/v1"
        )
    return url


class Endpoint:
    """Calls to one OpenAI-compatible server through the ``openai`` client.

    Args:
        base_url: the server (None: OpenAI's default, or ``locate``'s answer).
        api_key: sent as a Bearer token; scrubbed from every error message.
        locate: called once, in a worker thread, to find the base URL on first use (the
            embedded model starts its server there).
        max_concurrency: the most requests in flight at once (None: ``ROUND_BOUND``, so that
            a strategy's round goes out at once).
        turn: endpoints sharing one ``SharedTurn`` send one request at a time between them (the
            embedded servers, which share the CPU cores); its wait is outside the HTTP timeout.
        http_client: the HTTP client under the ``openai`` client, as openai-python takes it
            (None: openai's aiohttp transport); closed with the endpoint. A test gives one on
            an ``httpx.MockTransport`` (``ttc_agent.testing.TransportServer``).

    Example:
        >>> endpoint = Endpoint("http://127.0.0.1:9/v1", None)
        >>> endpoint.where
        'http://127.0.0.1:9/v1'
    """

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        *,
        timeout: float = 600.0,
        retry: RetryPolicy | None = None,
        max_concurrency: int | None = None,
        locate: Callable[[], str] | None = None,
        turn: SharedTurn | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = check_base_url(base_url) if base_url is not None else None
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.max_concurrency = concurrency_limit(max_concurrency)
        self._api_key, self._locate, self._turn = api_key, locate, turn
        self._http_client = http_client
        self._clients: dict[asyncio.AbstractEventLoop, tuple[openai.AsyncOpenAI, asyncio.Semaphore]]
        self._clients = {}
        weakref.finalize(self, _close_left_open, self._clients)  # never closed: quietly, at exit
        self._lock: asyncio.Lock | None = None
        self._listing: list[tuple[str, str | None]] | None = None
        self._answered = False  # whether the server has ever answered (any HTTP status)

    @property
    def root(self) -> str:
        """The server's root, for the APIs that are not under ``/v1``.

        Example:
            >>> Endpoint("http://127.0.0.1:9/v1/", None).root
            'http://127.0.0.1:9'
        """
        return (self.base_url or "").rstrip("/").removesuffix("/v1")

    @property
    def where(self) -> str:
        """The endpoint as error messages name it."""
        return self.base_url or "the OpenAI API"

    async def client(self) -> tuple[openai.AsyncOpenAI, asyncio.Semaphore]:
        """This event loop's client and its concurrency slots (created on first use)."""
        loop = asyncio.get_running_loop()
        if loop in self._clients:
            return self._clients[loop]
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if loop not in self._clients:
                if self.base_url is None and self._locate is not None:
                    self.base_url = await asyncio.to_thread(self._locate)
                client = openai.AsyncOpenAI(
                    base_url=self.base_url,
                    api_key=self._api_key or "not-needed",
                    timeout=self.timeout,
                    max_retries=0,  # the RetryPolicy is the one retry layer
                    http_client=self._transport(),
                )
                self._clients[loop] = (client, asyncio.Semaphore(self.max_concurrency))
        return self._clients[loop]

    def _transport(self) -> httpx2.AsyncClient:
        """The HTTP client under the openai client: the one given, else openai's aiohttp one.

        openai-python is typed for its httpx fork (httpx2) and takes an httpx client as well
        (it converts its timeouts and auth), so one given as ``httpx.AsyncClient`` goes as is.
        """
        if self._http_client is None:
            return openai.DefaultAioHttpClient()
        return cast(httpx2.AsyncClient, self._http_client)

    async def call(
        self,
        request: Callable[[openai.AsyncOpenAI], Awaitable[T]],
        *,
        cost: Cost | None = None,
    ) -> T:
        """Run ``request(client)`` in a concurrency slot, retried by the policy.

        ``request`` may raise ``EmptyResponse`` to have a useless answer retried. With ``cost``
        and a budget running (``ttc_agent.budget.metered``), every attempt reserves its worst
        case before it is sent and settles to the billed usage after.

        Raises:
            ModelError: (or a subclass) once retries are spent or the error is not retryable.
            BudgetExhausted: the next attempt would not fit in the budget; it was not sent.
        """
        client, slots = await self.client()
        meter = current_meter() if cost is not None else None

        async def attempt() -> T:
            async with slots, self._taken():
                try:
                    if meter is None or cost is None:
                        result = await request(client)
                    else:
                        result = await metered_call(meter, cost, lambda: request(client))
                except openai.APIConnectionError as exc:
                    if not self._answered and could_not_connect(exc):
                        raise self._error(exc, retried=False) from None
                    raise
                except openai.APIStatusError:
                    self._answered = True
                    raise
            self._answered = True
            return result

        try:
            return await self.retry.call(attempt)
        except openai.APIError as exc:
            raise self._error(exc) from None
        except EmptyResponse as exc:
            raise ModelError(f"{self.where}: {exc} after {self.retry.attempts} attempts") from None

    async def post(
        self,
        path: str,
        body: dict[str, Any],
        *,
        read: Callable[[bytes], T],
        cost: Cost | None = None,
    ) -> T:
        """POST ``body`` as JSON to ``path`` (under the base URL): the reply as ``read`` reads
        its bytes.

        The openai client sends it (its headers, status errors and timeouts) but hands back the
        bytes: building its typed reply cost more client CPU than the rest of the request.
        ``read`` may raise ``EmptyResponse`` (or ``UnreadableReply``) to have a useless reply
        retried. Retried and metered as ``call``.
        """

        async def request(client: openai.AsyncOpenAI) -> T:
            return read(await client.post(path, body=body, cast_to=bytes))

        return await self.call(request, cost=cost)

    async def models(self) -> list[tuple[str, str | None]]:
        """The models the server lists, each with its ``owned_by``: asked once (a metered call),
        then remembered.

        Raises:
            ModelError: with status 404 when the server has no ``/v1/models``.
        """
        if self._listing is None:
            listing = await self.call(lambda client: _listed(client.models.list()), cost=ONE_CALL)
            self._listing = listing
        return self._listing

    async def served_model(self) -> str:
        """The name of the one model the server lists (for a model that was not named).

        Raises:
            ConfigurationError: the server has no ``/models``, or lists more or fewer than one.
        """
        try:
            models = [name for name, _ in await self.models()]
        except ModelError as exc:
            if exc.status_code != 404:
                raise
            raise ConfigurationError(
                f"no model named, and {self.where}/models answered 404 when asked for the served "
                "model's name: name it (--model, model= or TTC_MODEL), or check the base URL "
                "(most servers want it to end in /v1)"
            ) from None
        if len(models) != 1:
            raise ConfigurationError(
                f"{self.where} serves {len(models)} models "
                f"({', '.join(models[:5]) or 'none'}); name one with model= or TTC_MODEL"
            )
        return models[0]

    def _error(self, exc: openai.APIError, *, retried: bool = True) -> ModelError:
        return model_error(exc, self.where, self._api_key, self.retry, retried=retried)

    def _taken(self) -> AbstractAsyncContextManager[None]:
        return self._turn.taken() if self._turn is not None else nullcontext()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        clients = list(self._clients.values())
        self._clients.clear()
        for client, _ in clients:
            await client.close()


def _close_left_open(clients: dict[asyncio.AbstractEventLoop, tuple[Any, Any]]) -> None:
    """Close the clients of an endpoint that was never closed (when it is collected, or at
    exit), so that aiohttp has no unclosed session to complain of: on their loop while it
    runs, else on the loop running here, else on a loop of their own."""
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    for loop, (client, _) in list(clients.items()):
        if loop.is_running():
            loop.call_soon_threadsafe(partial(loop.create_task, client.close()))
        elif running is not None:
            running.create_task(client.close())
        else:
            closer = asyncio.new_event_loop()
            closer.run_until_complete(client.close())
            closer.close()
    clients.clear()


async def _listed(pages: Any) -> list[tuple[str, str | None]]:
    return [(model.id, getattr(model, "owned_by", None)) async for model in pages]
