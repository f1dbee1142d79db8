"""An endpoint that cannot work says so at once: malformed URLs, refused connections, unknown
hosts, a server without ``/v1/models``; and the command line shows each retry as it happens."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ttc_agent import OpenAIChat
from ttc_agent.errors import ConfigurationError, EndpointUnreachable
from ttc_agent.models import RetryPolicy
from ttc_agent.testing import Fault

ROOT = Path(__file__).resolve().parents[2]
PROMPT = [{"role": "user", "content": "Hi"}]


def closed_port() -> int:
    """A loopback port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ttc(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TTC_"))}
    return subprocess.run(
        [sys.executable, "-m", "ttc_agent.cli", *args],
        capture_output=True,
        text=True,
        env=environment | env,
        cwd=ROOT,
        timeout=120,
    )


@pytest.mark.parametrize("url", ["not-a-url", "ftp://example.com/v1", "http://", "localhost:8000"])
def test_malformed_base_url_is_rejected_at_once(url):
    with pytest.raises(ConfigurationError, match="not an http:// or https:// URL"):
        OpenAIChat("m", base_url=url, api_key="k")


def test_malformed_base_url_from_the_environment_names_the_variable(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "not-a-url")
    with pytest.raises(ConfigurationError, match="OPENAI_BASE_URL"):
        OpenAIChat("m", api_key="k")


@pytest.mark.parametrize(
    ("host", "reason"),
    [("127.0.0.1:{port}", "connection refused"), ("nohost.invalid", "host name not found")],
)
async def test_a_never_reached_endpoint_fails_at_the_first_request(host, reason):
    url = f"http://{host.format(port=closed_port())}/v1"
    started = time.monotonic()
    async with OpenAIChat("m", base_url=url, api_key="k", retry=RetryPolicy(6)) as model:
        with pytest.raises(EndpointUnreachable, match=f"{url} is unreachable: {reason}"):
            await model.sample(PROMPT)
    assert time.monotonic() - started < 2  # six attempts with backoff would take ~15 s


async def test_an_endpoint_that_answered_before_is_retried_when_it_drops(model_for):
    server, model = model_for(lambda request: "ok")
    model.endpoint.retry = RetryPolicy(3, initial_wait=0.01, max_wait=0.02)
    await model.sample(PROMPT)  # reached once: later connection trouble may pass
    server.inject(Fault.dropped(), times=2)
    [completion] = await model.sample(PROMPT)
    assert completion.text == "ok"


async def test_each_retry_is_reported_as_it_happens(model_for):
    notices = []
    server, model = model_for(lambda request: "ok")
    model.endpoint.retry = RetryPolicy(
        4, initial_wait=0.01, max_wait=0.02, on_retry=lambda *notice: notices.append(notice)
    )
    server.inject(Fault.server_error(503), times=2)
    await model.sample(PROMPT)
    assert notices == [(2, 4, "answered 503"), (3, 4, "answered 503")]


def test_the_command_line_prints_each_retry_on_stderr(loopback):
    server = loopback(lambda request: "Fine.", honour_n=True)
    server.inject(Fault.server_error(503), times=1)
    done = ttc(
        "run",
        "Q",
        "--strategy",
        "majority_vote",
        "-n",
        "1",
        "--answer",
        "exact",
        "--base-url",
        server.base_url,
        "--model",
        "m",
        COLUMNS="100",
    )
    assert done.returncode == 0, done.stderr
    assert "retrying 2/6: answered 503" in done.stderr


def test_the_command_line_fails_fast_on_a_closed_port():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    started = time.monotonic()
    done = ttc("run", "Q", "--base-url", url, "--model", "m")
    assert done.returncode == 1
    assert done.stderr.strip() == f"ttc: error: {url} is unreachable: connection refused"
    assert time.monotonic() - started < 15  # start-up included; the retries took ~20 s


def test_the_command_line_rejects_a_malformed_url_at_once():
    done = ttc("run", "Q", "--base-url", "not-a-url", "--model", "m")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "not an http:// or https:// URL" in done.stderr


async def test_model_discovery_without_v1_models_says_what_to_do(loopback, monkeypatch):
    monkeypatch.delenv("TTC_MODEL", raising=False)
    server = loopback(lambda request: "ok")
    root = server.base_url.removesuffix("/v1")  # the server's root has no /models
    async with OpenAIChat(base_url=root, api_key="k", retry=RetryPolicy(1)) as model:
        with pytest.raises(ConfigurationError) as caught:
            await model.sample(PROMPT)
    message = str(caught.value)
    assert f"{root}/models" in message and "404" in message
    assert "--model" in message and "/v1" in message
