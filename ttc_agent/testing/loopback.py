"""The loopback server: a ``ScriptedServer`` answering real HTTP on 127.0.0.1 from a thread.

Point the real ``openai`` client (or ``OpenAIChat``) at it; it answers as its script says
(``ttc_agent.testing.core``): waits, drops connections, streams paced tokens and notices a client
that closes a stream early.

Example:
    >>> with LoopbackServer(lambda request: "Hello!") as server:
    ...     print(server.base_url.startswith("http://127.0.0.1:"))
    True
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ttc_agent.testing.core import Answer, ScriptedServer
from ttc_agent.testing.stream import send


class LoopbackServer(ScriptedServer):
    """A real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions API, as scripted
    (the arguments are ``ScriptedServer``'s)."""

    _httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the loopback server is not running")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> LoopbackServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._httpd = _Server(("127.0.0.1", 0), RequestHandler)
        self._httpd.script = self
        threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True).start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    script: ScriptedServer


class RequestHandler(BaseHTTPRequestHandler):
    """One connection to the loopback server: the script's answer, written to the socket."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as real servers: no 40 ms wait for an ACK
    server: _Server

    def log_message(self, *args: Any) -> None:
        """Quiet: tests read what happened from ``requests``."""

    def do_GET(self) -> None:
        self._send(self.server.script.answer("GET", self.path, dict(self.headers), b""))

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send(self.server.script.answer("POST", self.path, dict(self.headers), raw))

    def _send(self, answer: Answer) -> None:
        time.sleep(answer.delay)
        if answer.drop:
            self.close_connection = True
            self.connection.shutdown(2)
        elif answer.events is not None:
            self._stream(answer)
        else:
            self._json(answer.status, answer.payload, answer.headers)

    def _stream(self, answer: Answer) -> None:
        """Send a completion as server-sent events; a client that closes the stream early is
        recorded, billed what was generated."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.close_connection = True
        self.end_headers()
        script = self.server.script
        sent = send(self.wfile, answer.events or [], script.token_latency)
        if sent is not None:
            script.closed_early(answer, sent)

    def _json(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
