"""VLLMPRM against a loopback stand-in for vLLM's pooling server."""

from __future__ import annotations

import json
import re
import threading
import zlib
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from test_prm import PROMPT

from ttc_agent.errors import ConfigurationError, ModelError
from ttc_agent.models.retry import RetryPolicy
from ttc_agent.verifiers import VLLMPRM
from ttc_agent.verifiers.step_protocol import StepVerifier
from ttc_agent.verifiers.transformers_prm import QWEN_PRM_SYSTEM

TAG = "<extra_0>"
TAG_ID = 7


class PoolingStub:
    """vLLM's ``/pooling`` and ``/tokenize`` over real HTTP, with a toy tokenizer and head.

    The head gives P(correct) = 0.2 at a step tag whose step says "wrong", 0.9 at other step
    tags and 0.5 at every other token. ``pooling="STEP"`` returns the step-tag rows only (vLLM's
    STEP pooler), ``"ALL"`` one row per token. Rows are [P(wrong), P(correct)] (a two-class
    head), or [P(correct), P(wrong)] with ``good_first`` (``returned_token_ids`` [good, bad]).
    ``faults`` are statuses to answer the next pooling requests with, in order.
    """

    def __init__(
        self, *, pooling: str = "STEP", good_first: bool = False, faults: tuple[int, ...] = ()
    ) -> None:
        self.pooling = pooling
        self.good_first = good_first
        self.faults = deque(faults)
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def start(self) -> PoolingStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @staticmethod
    def tokens(body: dict[str, Any]) -> list[str]:
        if "messages" in body:
            text = "".join(f"<|{m['role']}|>{m['content']}\n" for m in body["messages"])
        else:
            text = body.get("input") or body.get("prompt") or ""
        return re.findall(rf"{re.escape(TAG)}|\w+|[^\w\s]|\s+", text)

    @staticmethod
    def token_id(token: str) -> int:
        return TAG_ID if token == TAG else 100 + zlib.crc32(token.encode()) % 900

    def rows(self, tokens: list[str]) -> list[list[float]]:
        rows, step = [], []
        for token in tokens:
            good = 0.5
            if token == TAG:
                good = 0.2 if "wrong" in step else 0.9
                step = []
            else:
                step.append(token)
            if token == TAG or self.pooling == "ALL":
                rows.append([good, 1 - good] if self.good_first else [1 - good, good])
        return rows

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.requests.append((path, body))
        tokens = self.tokens(body)
        if path == "/tokenize":
            ids = [self.token_id(token) for token in tokens]
            return 200, {"count": len(ids), "max_model_len": 4096, "tokens": ids}
        if path != "/pooling":
            return 404, {"object": "error", "message": f"no route {path}", "code": 404}
        if self.faults:
            status = self.faults.popleft()
            return status, {"object": "error", "message": f"injected {status}", "code": status}
        usage = {"prompt_tokens": len(tokens), "total_tokens": len(tokens), "completion_tokens": 0}
        return 200, {
            "id": "pool-1",
            "object": "list",
            "created": 0,
            "model": body.get("model"),
            "data": [{"index": 0, "object": "pooling", "data": self.rows(tokens)}],
            "usage": usage,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                status, reply = stub.answer(self.path, json.loads(self.rfile.read(length)))
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                """Quiet."""

        return Handler


@pytest.fixture
def pooling_server() -> Iterator[type[PoolingStub]]:
    """Start pooling stubs inside a test; all are stopped at its end."""
    started: list[PoolingStub] = []

    class Managed(PoolingStub):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            self.start()
            started.append(self)

    yield Managed
    for server in started:
        server.stop()


STEPS = [["2 + 3 = 5", "wrong 5 * 4 = 20", "so 20"], ["3 * 4 = 12", "2 + 12 = 14"]]
EXPECTED = [[0.9, 0.2, 0.9], [0.9, 0.9]]
FAST = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05)


async def test_vllm_step_pooling_scores_each_step(pooling_server: type[PoolingStub]) -> None:
    server = pooling_server(pooling="STEP")
    async with VLLMPRM("qwen-prm", base_url=f"{server.url}/v1", step_tag=TAG) as prm:
        assert isinstance(prm, StepVerifier)
        results = await prm.score_steps(PROMPT, STEPS)

    assert [r.steps for r in results] == [pytest.approx(e) for e in EXPECTED]
    assert server.paths() == ["/pooling", "/pooling"]  # /v1 dropped, no tokenize needed
    bodies = {body["messages"][-1]["content"]: body for _, body in server.requests}
    body = bodies[f"2 + 3 = 5{TAG}wrong 5 * 4 = 20{TAG}so 20{TAG}"]  # the requests run at once
    assert body["task"] == "token_classify"
    assert body["model"] == "qwen-prm"
    assert body["add_generation_prompt"] is False
    assert body["messages"][:2] == [
        {"role": "system", "content": QWEN_PRM_SYSTEM},
        {"role": "user", "content": "What is 2 + 3 * 4 ?"},
    ]
    assert sum(r.usage.calls for r in results) == 2
    assert results[0].usage.prompt_tokens == len(PoolingStub.tokens(body))


async def test_vllm_all_pooling_picks_rows_at_step_tag_id(
    pooling_server: type[PoolingStub],
) -> None:
    server = pooling_server(pooling="ALL", good_first=True)
    prm = VLLMPRM(
        "shepherd",
        base_url=server.url,
        step_tag=TAG,
        step_tag_id=TAG_ID,
        reward_token_ids=(0, 1),
        input_format="text",
    )
    results = await prm.score_steps(PROMPT, STEPS)
    await prm.aclose()

    assert [r.steps for r in results] == [pytest.approx(e) for e in EXPECTED]
    pooled = [body for path, body in server.requests if path == "/pooling"]
    tokenized = [body for path, body in server.requests if path == "/tokenize"]
    assert len(pooled) == len(tokenized) == 2
    text = f"What is 2 + 3 * 4 ? 3 * 4 = 12{TAG}2 + 12 = 14{TAG}"
    assert text in [body["input"] for body in pooled]
    assert {"model": "shepherd", "prompt": text} in tokenized


async def test_vllm_retries_503_then_scores(pooling_server: type[PoolingStub]) -> None:
    server = pooling_server(faults=(503,))
    prm = VLLMPRM("qwen-prm", base_url=server.url, step_tag=TAG, retry=FAST)
    [result] = await prm.score_steps(PROMPT, STEPS[:1])
    await prm.aclose()

    assert result.steps == pytest.approx(EXPECTED[0])
    assert server.paths() == ["/pooling", "/pooling"]


async def test_vllm_does_not_retry_400(pooling_server: type[PoolingStub]) -> None:
    server = pooling_server(faults=(400,))
    prm = VLLMPRM("qwen-prm", base_url=server.url, step_tag=TAG, retry=FAST)
    with pytest.raises(ModelError, match="answered 400") as caught:
        await prm.score_steps(PROMPT, STEPS[:1])
    await prm.aclose()

    assert caught.value.status_code == 400
    assert server.paths() == ["/pooling"]


async def test_vllm_gives_up_after_the_retry_budget(pooling_server: type[PoolingStub]) -> None:
    server = pooling_server(faults=(500, 500, 500))
    prm = VLLMPRM("qwen-prm", base_url=server.url, step_tag=TAG, retry=FAST)
    with pytest.raises(ModelError, match="answered 500"):
        await prm.score_steps(PROMPT, STEPS[:1])
    await prm.aclose()
    assert server.paths() == ["/pooling"] * 3


async def test_vllm_step_tag_the_server_does_not_pool_at_is_named(
    pooling_server: type[PoolingStub],
) -> None:
    server = pooling_server(pooling="STEP")
    prm = VLLMPRM("qwen-prm", base_url=server.url, step_tag="\n\n")  # the server pools at TAG
    with pytest.raises(ConfigurationError, match=r"scored 0 step tags for 3 steps.*step_tag_id"):
        await prm.score_steps(PROMPT, STEPS[:1])
    await prm.aclose()
