from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ttc_agent import OpenAIChat
from ttc_agent.testing import LoopbackServer, TransportServer

# The tests mirror the package (strategies/, verifiers/, models/) beside guarantees/ and the
# top-level tests of the CLI, the proxy, evaluation and graphs. Tests share helpers by module
# name (``from test_cli import ttc``, ``from serve_proxy import Proxy``), so every folder is
# importable from any test, however the run was started.
HERE = Path(__file__).resolve().parent
sys.path[:0] = [
    str(HERE / folder) for folder in ("strategies", "verifiers", "models", "guarantees")
]


@pytest.fixture
def loopback() -> Iterator[type[LoopbackServer]]:
    """Start loopback servers inside a test; all are stopped at its end."""
    started: list[LoopbackServer] = []

    class Managed(LoopbackServer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.start()
            started.append(self)

    yield Managed
    for server in started:
        server.stop()


@pytest.fixture
async def model_for(loopback):
    """``make(handler, **server_options) -> (server, model)``: a loopback server (honouring n
    unless told otherwise, so choices come in script order) and an ``OpenAIChat`` on it, closed
    at the end of the test. The model continues partial replies as ``continuation`` says:
    by default ``auto`` on a flavoured server, and ``prefill`` on the plain loopback server,
    which continues a final assistant message as llama-server and Ollama do."""
    models: list[OpenAIChat] = []

    def make(handler, continuation=None, **server_options):
        server = loopback(handler, **server_options)
        if continuation is None:
            continuation = "auto" if server.flavour else "prefill"
        model = OpenAIChat("m", base_url=server.base_url, api_key="k", continuation=continuation)
        models.append(model)
        return server, model

    yield make
    for model in models:
        await model.aclose()


@pytest.fixture
async def scripted_model():
    """``make(handler, **server_options) -> (server, model)``: a ``TransportServer`` and an
    ``OpenAIChat`` on it through ``http_client=`` (no socket, no thread), for strategy logic;
    faults, timeouts, kills, resume and the proxy are tested on ``loopback``. Continuation as
    ``model_for``'s."""
    models: list[OpenAIChat] = []

    def make(handler, continuation=None, **server_options):
        server = TransportServer(handler, **server_options)
        if continuation is None:
            continuation = "auto" if server.flavour else "prefill"
        model = OpenAIChat(
            "m",
            base_url=server.base_url,
            api_key="k",
            continuation=continuation,
            http_client=server.http_client(),
        )
        models.append(model)
        return server, model

    yield make
    for model in models:
        await model.aclose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server of the tests' own for this session (see tests/postgres_server.py)."""
    import shutil
    import tempfile
    from pathlib import Path

    from postgres_server import postgres_server

    folder = Path(tempfile.mkdtemp(prefix="ttc-postgres-"))  # not under pytest's private tmp
    try:
        with postgres_server(folder) as url:
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)
