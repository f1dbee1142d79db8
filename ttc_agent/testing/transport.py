"""A ``ScriptedServer`` answering through ``httpx.MockTransport``: no socket, no thread.

For strategy-logic tests, where what matters is what the model answers, not how the bytes
travel: give ``OpenAIChat`` (or ``Endpoint``) the server's ``http_client()``. Faults, timeouts,
killed runs, resume and the proxy are tested on the real loopback server
(``ttc_agent.testing.loopback``), which answers the same script over real HTTP. A handler here
runs on the event loop, so it must not block.

Example:
    >>> import asyncio
    >>> from ttc_agent import OpenAIChat
    >>> server = TransportServer(lambda request: "Hello!")
    >>> async def ask() -> str:
    ...     async with OpenAIChat("m", base_url=server.base_url, api_key="k",
    ...                           http_client=server.http_client()) as model:
    ...         return (await model.sample([{"role": "user", "content": "Hi"}]))[0].text
    >>> asyncio.run(ask())
    'Hello!'
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from ttc_agent.testing.core import Answer, ScriptedServer
from ttc_agent.testing.stream import DONE, carries_token, encoded


class TransportServer(ScriptedServer):
    """The script, as an ``httpx`` transport (the arguments are ``ScriptedServer``'s).

    A wait longer than the request's read timeout raises ``httpx.ReadTimeout`` after the
    timeout, as a server that does not answer in time would.
    """

    base_url = "http://scripted.invalid/v1"

    @property
    def transport(self) -> httpx.MockTransport:
        """A transport answering every request as scripted."""
        return httpx.MockTransport(self._handle)

    def http_client(self, **options: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` on this server (``options`` are the client's)."""
        return httpx.AsyncClient(transport=self.transport, **options)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        answer = self.answer(request.method, path, dict(request.headers), request.content)
        timeout = (request.extensions.get("timeout") or {}).get("read")
        if timeout is not None and answer.delay > timeout:
            await asyncio.sleep(timeout)
            raise httpx.ReadTimeout("the scripted server did not answer in time", request=request)
        await asyncio.sleep(answer.delay)
        if answer.drop:
            raise httpx.RemoteProtocolError("the server closed the connection", request=request)
        if answer.events is not None:
            events = _Events(self, answer)
            return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, stream=events)
        body = json.dumps(answer.payload).encode()  # as the loopback server writes it
        headers = {"Content-Type": "application/json"} | answer.headers
        return httpx.Response(answer.status, content=body, headers=headers)


class _Events(httpx.AsyncByteStream):
    """A streamed reply, paced as the script says; a client that closes it before the end is
    recorded on the script (billed the tokens sent)."""

    def __init__(self, script: ScriptedServer, answer: Answer) -> None:
        self.script, self.answer = script, answer
        self.sent, self.finished = 0, False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for event in self.answer.events or []:
            token = carries_token(event)
            self.sent += token  # counted as it is handed over: the client may close after it
            yield encoded(event)
            if token:
                await asyncio.sleep(self.script.token_latency)
        self.finished = True
        yield DONE

    async def aclose(self) -> None:
        if not self.finished:
            self.script.closed_early(self.answer, self.sent)
            self.finished = True
