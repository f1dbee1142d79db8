"""A loopback OpenAI-compatible server for tests: real HTTP, scripted and deterministic.

Point the real ``openai`` client (or ``OpenAIChat``) at it; script replies with a handler; make
it honour or ignore ``n``; give it latency; inject faults (429 with Retry-After, 5xx, dropped
connections, hangs). Every request is recorded for assertions.

Example:
    >>> with LoopbackServer(lambda request: "Hello!") as server:
    ...     print(server.base_url.startswith("http://127.0.0.1:"))
    True
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ttc_agent.testing_servers import OWNED_BY, Flavour, apply_template, continued, refusal
from ttc_agent.testing_stream import billed_until, chunks, send
from ttc_agent.testing_wire import (
    Counting,
    Reply,
    chat_message,
    limit,
    logprobs,
    prompt_tokens,
    text_logprobs,
)
from ttc_agent.testing_wire import confident_reply as confident_reply
from ttc_agent.testing_wire import count_tokens as count_tokens
from ttc_agent.testing_wire import judge_reply as judge_reply


@dataclass(frozen=True)
class Fault:
    """A failure to answer one request with, instead of a reply."""

    status: int = 500
    message: str = "injected fault"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False

    @classmethod
    def rate_limit(cls, retry_after: float = 0.05) -> Fault:
        return cls(429, "rate limited", {"Retry-After": f"{retry_after:g}"})

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls(status, f"injected {status}")

    @classmethod
    def dropped(cls) -> Fault:
        """Close the connection without answering."""
        return cls(drop=True)

    @classmethod
    def hang(cls, seconds: float) -> Fault:
        """Answer 200 only after ``seconds`` (longer than a client's timeout: a timeout)."""
        return cls(200, delay=seconds)


FAULT_KINDS = (
    "rate_limit",
    "server_error",
    "unavailable",
    "timeout",
    "reset",
    "empty",
    "truncated",
    "malformed",
)
"""What a ``FaultPlan`` can inject; the last two only into judge requests (see ``FaultPlan``)."""


@dataclass(frozen=True)
class FaultPlan:
    """Faults injected into a share of requests, drawn from a seeded generator.

    Args:
        rate: the share of requests answered with a fault (0.2: one in five).
        seed: seeds the draws, so that a run is repeatable.
        kinds: which faults (see ``FAULT_KINDS``): 429 with Retry-After, 500, 503, a hang past
            the client's timeout, a reset connection, a 200 without choices, and, for judge
            requests only (those whose prompt fences a candidate), a reply cut short with
            ``finish_reason="length"`` and a reply that is not a verdict. A generator's reply
            cut short is indistinguishable from a legitimate stop at ``max_tokens``, so it is
            not a fault a client could recover from: it is kept, marked ``length``.
        hang: seconds a ``timeout`` fault waits before answering (longer than the client's
            timeout).

    Example:
        >>> FaultPlan(rate=0.2, seed=7).kinds[0]
        'rate_limit'
    """

    rate: float
    seed: int = 0
    kinds: tuple[str, ...] = FAULT_KINDS
    hang: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {self.rate}")
        if unknown := set(self.kinds) - set(FAULT_KINDS):
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")


@dataclass
class ChatRequest:
    """A recorded chat-completions request."""

    index: int
    body: dict[str, Any]
    headers: dict[str, str]  # names in lower case
    choice: int = 0  # which of the n choices a handler call is for
    usage: dict[str, int] = field(default_factory=dict)  # what the reply billed (200 only)
    flavour: str | None = None  # the server's (see ttc_agent.testing_servers)
    closed_early: bool = False  # the client closed the stream before its end
    streamed: int | None = None  # tokens sent before the close was seen (usage bills them)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])

    @property
    def prompt(self) -> str | None:
        """The raw prompt of a ``/completions`` request (None for chat requests)."""
        return self.body.get("prompt")

    @property
    def prefix(self) -> str | None:
        """The partial assistant reply the server continues, if any (as its flavour would)."""
        return continued(self.body, self.flavour)

    @property
    def system(self) -> str:
        return "\n".join(m.get("content") or "" for m in self.messages if m.get("role") == "system")

    @property
    def last_user(self) -> str:
        """The last user message's text (its text parts joined, for content parts)."""
        if self.prompt is not None:
            users = re.findall(r"<\|im_start\|>user\n(.*?)<\|im_end\|>", self.prompt, re.DOTALL)
        else:
            users = [_text(m.get("content")) for m in self.messages if m.get("role") == "user"]
        return users[-1] if users else ""


Handler = Callable[[ChatRequest], "str | Reply | Fault"]


class LoopbackServer:
    """A real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions API.

    Args:
        handler: called once per choice with the request; returns the text, a ``Reply`` or a
            ``Fault``. The default echoes the last user message.
        honour_n: return n choices for ``n`` (like OpenAI, vLLM), or one (like llama.cpp).
        stop_reason: report vLLM's ``stop_reason`` (None when the reply ended by itself).

    Replies are cut at the first of the request's ``stop`` strings (finish_reason ``stop``) and
    at ``max_completion_tokens`` (or ``max_tokens``) tokens (finish_reason ``length``), as real
    servers do. Both
    ``/chat/completions`` and ``/completions`` are served.
        latency: seconds every request takes before answering.
        faults: inject faults into a share of requests (``injected`` counts them by kind).
        api_key: when set, requests must carry it as a Bearer token.
        model: the one model name ``/v1/models`` lists.
        flavour: ``vllm``, ``openai`` or ``llamacpp``: list that ``owned_by`` and treat a
            partial assistant reply as that server does (``ttc_agent.testing_servers``).
        counting: ``words`` or ``bytes`` (a server whose counts exceed the client's estimate:
            see ``ttc_agent.testing_wire``).
        usage: report each reply's usage (False: bill it, as ``requests`` records, but do
            not say).
        list_models: serve ``/v1/models`` (False: a 404, as some proxies answer).
        token_latency: seconds between streamed tokens (a server generating as it sends: a
            client that closes the stream early is seen to, see ``ChatRequest.closed_early``).

    ``lookups`` records the paths of the other requests (``/v1/models``, ``/apply-template``).
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        honour_n: bool = True,
        latency: float = 0.0,
        faults: FaultPlan | None = None,
        api_key: str | None = None,
        model: str = "loopback",
        stop_reason: bool = False,
        flavour: Flavour | None = None,
        counting: Counting = "words",
        usage: bool = True,
        list_models: bool = True,
        token_latency: float = 0.0,
    ) -> None:
        if flavour not in OWNED_BY:
            raise ValueError(f"unknown flavour {flavour!r}; known: vllm, openai, llamacpp")
        self.handler = handler or (lambda request: f"echo: {request.last_user}")
        self.honour_n = honour_n
        self.latency = latency
        self.api_key = api_key
        self.model = model
        self.stop_reason = stop_reason
        self.flavour, self.counting, self.usage = flavour, counting, usage
        self.list_models, self.token_latency = list_models, token_latency
        self.requests: list[ChatRequest] = []
        self.lookups: list[str] = []
        self.errors: list[Exception] = []  # exceptions raised by the handler
        self._faults: deque[Fault] = deque()
        self.fault_plan = faults
        self.injected: Counter[str] = Counter()
        self._draws = random.Random(faults.seed if faults else 0)
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the loopback server is not running")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def inject(self, fault: Fault, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``fault``."""
        with self._lock:
            self._faults.extend([fault] * times)

    def reset(self) -> None:
        """Forget recorded requests and pending faults."""
        with self._lock:
            self.requests.clear()
            self._faults.clear()

    def __enter__(self) -> LoopbackServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        server = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as real servers: no 40 ms wait for an ACK

            def log_message(self, *args: Any) -> None:
                """Quiet: tests read what happened from ``requests``."""

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                server.lookups.append(self.path)
                if self.path.rstrip("/") == "/v1/models" and server.list_models:  # as vLLM
                    owner = OWNED_BY[server.flavour]
                    data = [{"id": server.model, "object": "model", "owned_by": owner}]
                    self._json(200, {"object": "list", "data": data})
                else:
                    self._json(404, _error("not found", 404))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                if not self._authorised():
                    return
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    self._json(400, _error("invalid JSON body", 400))
                    return
                if self.path == "/apply-template" and server.flavour == "llamacpp":
                    server.lookups.append(self.path)
                    self._json(200, {"prompt": apply_template(body.get("messages") or [])})
                    return
                if self.path.rstrip("/") not in ("/v1/chat/completions", "/v1/completions"):
                    self._json(404, _error("not found", 404))  # only under /v1, as vLLM serves
                    return
                try:
                    status, payload, headers, drop = server._respond(
                        body, {k.lower(): v for k, v in self.headers.items()}
                    )
                except Exception as exc:  # a broken test script: say so instead of hanging up
                    server.errors.append(exc)
                    payload = _error(f"handler failed: {exc!r}", 599)
                    status, headers, drop = 599, {}, False
                if drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if status == 200 and body.get("stream"):
                    self._stream(body, payload)
                    return
                self._json(status, payload, headers)

            def _stream(self, body: dict[str, Any], payload: dict[str, Any]) -> None:
                """Send a completion as server-sent chat.completion.chunk events; a client
                that closes the stream early is recorded, billed what was generated."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.close_connection = True
                self.end_headers()
                options = body.get("stream_options") or {}
                running = server.flavour == "vllm" and bool(options.get("continuous_usage_stats"))
                events = chunks(payload, bool(options.get("include_usage")), running)
                sent = send(self.wfile, events, server.token_latency)
                if sent is not None:
                    request = server.requests[int(payload["id"].rsplit("-", 1)[1])]
                    text = "".join(c["message"]["content"] for c in payload["choices"])
                    request.usage = billed_until(request.usage, sent, server.counting, text)
                    request.closed_early, request.streamed = True, sent

            def _authorised(self) -> bool:
                if (
                    server.api_key
                    and self.headers.get("Authorization") != f"Bearer {server.api_key}"
                ):
                    self._json(401, _error("invalid API key", 401))
                    return False
                return True

            def _json(
                self, status: int, payload: Any, headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self._httpd = Server(("127.0.0.1", 0), RequestHandler)
        threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True).start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def _respond(
        self, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, Any, dict[str, str], bool]:
        with self._lock:
            index = len(self.requests)
            request = ChatRequest(index, body=body, headers=headers, flavour=self.flavour)
            self.requests.append(request)
            fault = self._faults.popleft() if self._faults else None
            planned = self._draw_fault(request) if fault is None else None
        if self.latency:
            time.sleep(self.latency)
        if planned in ("empty", "truncated", "malformed"):
            return 200, self._damaged(body, request, planned), {}, False
        fault = fault or _PLANNED.get(planned or "")
        if planned == "timeout" and self.fault_plan is not None:
            fault = Fault.hang(self.fault_plan.hang)
        if fault is not None:
            time.sleep(fault.delay)
            if fault.drop:
                return 0, None, {}, True
            if fault.status != 200:
                return fault.status, _error(fault.message, fault.status), fault.headers, False
        if problem := refusal(body, self.flavour):
            return 400, _error(problem, 400), {}, False
        n = int(body.get("n") or 1) if self.honour_n else 1
        replies = []
        for choice in range(n):
            outcome = self.handler(
                ChatRequest(request.index, body, headers, choice, flavour=self.flavour)
            )
            if isinstance(outcome, Fault):
                time.sleep(outcome.delay)
                if outcome.drop:
                    return 0, None, {}, True
                return (
                    outcome.status,
                    _error(outcome.message, outcome.status),
                    outcome.headers,
                    False,
                )
            replies.append(outcome if isinstance(outcome, Reply) else Reply(str(outcome)))
        return 200, self._completion(body, request.index, replies), {}, False

    def _draw_fault(self, request: ChatRequest) -> str | None:
        """The planned fault for this request, if the draw says so (under the lock)."""
        plan = self.fault_plan
        if plan is None or self._draws.random() >= plan.rate:
            return None
        judging = fenced(request.last_user) is not None
        kinds = [k for k in plan.kinds if judging or k not in ("truncated", "malformed")]
        if not kinds:
            return None
        kind = self._draws.choice(kinds)
        self.injected[kind] += 1
        return kind

    def _damaged(self, body: dict[str, Any], request: ChatRequest, kind: str) -> dict[str, Any]:
        """A 200 reply without choices, cut short, or not a verdict."""
        if kind == "empty":
            payload = self._completion(body, request.index, [])
        elif kind == "truncated":
            reply = self.handler(
                ChatRequest(request.index, body, request.headers, flavour=self.flavour)
            )
            text = reply.text if isinstance(reply, Reply) else str(reply)
            cut = Reply(text[: len(text) // 2], "length")
            payload = self._completion(body, request.index, [cut])
        else:
            payload = self._completion(body, request.index, [Reply("Great answer! 10/10 :)")])
        return payload

    def _completion(self, body: dict[str, Any], index: int, replies: list[Reply]) -> dict[str, Any]:
        """The reply's payload; what it bills is recorded on request ``index`` (and left out of
        the payload by a server that does not report usage)."""
        request = self.requests[index]
        chat = "prompt" not in body
        want_logprobs = bool(body.get("logprobs"))
        top_k = int(body.get("top_logprobs") or 0) if chat else int(body.get("logprobs") or 0)
        stop, most = body.get("stop"), body.get("max_completion_tokens", body.get("max_tokens"))
        cut = [limit(reply, stop, most, self.counting) for reply in replies]
        choices = []
        for i, (reply, stopped_by) in enumerate(cut):
            tokens = logprobs(reply, top_k) if want_logprobs else None
            finish = "tool_calls" if reply.tool_calls and reply.finish_reason == "stop" else None
            choice: dict[str, Any] = {"index": i, "finish_reason": finish or reply.finish_reason}
            if chat:
                choice["message"] = chat_message(reply, i)
                choice["logprobs"] = {"content": tokens} if tokens is not None else None
            else:
                choice["text"] = reply.text
                choice["logprobs"] = text_logprobs(tokens) if tokens is not None else None
            if self.stop_reason:
                choice["stop_reason"] = stopped_by
            choices.append(choice)
        prompt = prompt_tokens(body, self.counting)
        completion = sum(count_tokens(reply.text, self.counting) for reply, _ in cut)
        completion += sum(
            count_tokens(json.dumps(r.tool_calls), self.counting) for r, _ in cut if r.tool_calls
        )
        request.usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        return {
            "id": f"chatcmpl-loopback-{request.index}",
            "object": "chat.completion" if chat else "text_completion",
            "created": 0,
            "model": body.get("model") or self.model,
            "choices": choices,
        } | ({"usage": request.usage} if self.usage else {})


_PLANNED = {
    "rate_limit": Fault.rate_limit(0.01),
    "server_error": Fault.server_error(500),
    "unavailable": Fault.server_error(503),
    "reset": Fault.dropped(),
}


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(part.get("text") or "" for part in content if isinstance(part, dict))
    return content or ""


def _error(message: str, status: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": "loopback_error", "code": status}}


def fenced(text: str, label: str = "CANDIDATE") -> str | None:
    """The text inside the first ``label`` fence of a judge prompt (see verifiers.fence)."""
    match = re.search(rf"<<<{label} (\w+)>>>\n(.*?)\n<<<END {label} \1>>>", text, re.DOTALL)
    return None if match is None else match.group(2)
