"""``ttc serve``'s app on a free loopback port in a thread, for tests that call it over real
HTTP with the real openai client; and what those tests ask it."""

from __future__ import annotations

import socket
import threading
import time

import openai
import uvicorn

from ttc_agent.serve import ProxyConfig, create_app

CRITERIA = ["correctness", "completeness", "specificity", "clarity"]  # the helpfulness card's
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
HI = [{"role": "user", "content": "Weather in Paris?"}]


class Proxy:
    """The proxy serving ``config`` while the ``with`` block runs."""

    def __init__(self, config: ProxyConfig) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(
                create_app(config), host="127.0.0.1", port=self.port, log_level="warning"
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Proxy:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def client(proxy: Proxy, key: str = "client-key") -> openai.OpenAI:
    """The openai client on the proxy, without its own retries."""
    return openai.OpenAI(base_url=proxy.url, api_key=key, max_retries=0)
