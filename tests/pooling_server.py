"""A loopback stand-in for vLLM's pooling server (``/pooling``, ``/tokenize``) over real HTTP,
for the PRM tests and the budget tests."""

from __future__ import annotations

import json
import re
import threading
import zlib
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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
