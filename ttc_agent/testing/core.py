"""What a scripted OpenAI-compatible server answers, with no sockets: the pure core under the
loopback server (``ttc_agent.testing.loopback``) and the httpx transport
(``ttc_agent.testing.transport``).

A ``ScriptedServer`` takes a request (method, path, headers, body bytes) and says what to
answer (an ``Answer``: a status and a JSON body, a stream's chunks, a dropped connection, and
how long to wait first). It records every request (``requests``; ``lookups``: the paths of the
others, ``/v1/models`` and ``/apply-template``), draws planned faults and serves the ones
injected; the adapters only move the bytes and wait. Replies are cut at the first of the
request's ``stop`` strings (finish_reason ``stop``) and at ``max_completion_tokens`` (or
``max_tokens``) tokens (finish_reason ``length``), as real servers do. Both
``/chat/completions`` and ``/completions`` are served.

Example:
    >>> script = ScriptedServer(lambda request: "Hello!")
    >>> body = b'{"model": "m", "messages": [{"role": "user", "content": "Hi"}]}'
    >>> answer = script.answer("POST", "/v1/chat/completions", {}, body)
    >>> answer.status, answer.payload["choices"][0]["message"]["content"]
    (200, 'Hello!')
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ttc_agent.testing.chat_request import ChatRequest, Handler, fenced
from ttc_agent.testing.faults import DAMAGED, Fault, FaultPlan, draw, planned_fault
from ttc_agent.testing.servers import OWNED_BY, Flavour, apply_template, refusal
from ttc_agent.testing.stream import billed_until, chunks
from ttc_agent.testing.wire import Counting, Reply, completion


@dataclass(frozen=True)
class Answer:
    """What to answer one request with.

    Attributes:
        status: the HTTP status.
        payload: the JSON body (None with ``drop``).
        headers: extra response headers.
        drop: close the connection without answering.
        delay: seconds to wait before answering.
        events: a streamed reply's chunks (a 200 to a ``stream`` request), else None.
        index: the recorded request it answers (None: not a completion request).
    """

    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    delay: float = 0.0
    events: list[dict[str, Any]] | None = None
    index: int | None = None


_COMPLETIONS = ("/v1/chat/completions", "/v1/completions")  # only under /v1, as vLLM serves


class ScriptedServer:
    """An OpenAI-compatible server's answers, scripted and deterministic (no sockets).

    Args:
        handler: called once per choice with the request; returns the text, a ``Reply`` or a
            ``Fault``. The default echoes the last user message.
        honour_n: return n choices for ``n`` (like OpenAI, vLLM), or one (like llama.cpp).
        latency: seconds every request takes before answering.
        faults: inject faults into a share of requests (``injected`` counts them by kind).
        api_key: when set, requests must carry it as a Bearer token.
        model: the one model name ``/v1/models`` lists.
        stop_reason: report vLLM's ``stop_reason`` (None when the reply ended by itself).
        flavour: ``vllm``, ``openai`` or ``llamacpp``: list that ``owned_by`` and treat a
            partial assistant reply as that server does (``ttc_agent.testing.servers``).
        counting: ``words`` or ``bytes`` (a server whose counts exceed the client's estimate:
            see ``ttc_agent.testing.wire``).
        usage: report each reply's usage (False: bill it, as ``requests`` records, but do
            not say).
        list_models: serve ``/v1/models`` (False: a 404, as some proxies answer).
        token_latency: seconds between streamed tokens (a server generating as it sends: a
            client that closes the stream early is seen to, see ``ChatRequest.closed_early``).
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
        self.honour_n, self.latency, self.api_key, self.model = honour_n, latency, api_key, model
        self.stop_reason, self.flavour, self.counting = stop_reason, flavour, counting
        self.usage, self.list_models, self.token_latency = usage, list_models, token_latency
        self.requests: list[ChatRequest] = []
        self.lookups: list[str] = []
        self.errors: list[Exception] = []  # exceptions raised by the handler
        self.fault_plan, self.injected = faults, Counter[str]()
        self._faults: deque[Fault] = deque()
        self._draws, self._lock = random.Random(faults.seed if faults else 0), threading.Lock()

    def inject(self, fault: Fault, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``fault``."""
        with self._lock:
            self._faults.extend([fault] * times)

    def reset(self) -> None:
        """Forget recorded requests and pending faults."""
        with self._lock:
            self.requests.clear()
            self._faults.clear()

    def answer(self, method: str, path: str, headers: Mapping[str, str], raw: bytes) -> Answer:
        """What to answer a request with (``path`` from the server's root, e.g. ``/v1/models``)."""
        headers = {key.lower(): value for key, value in headers.items()}
        if self.api_key and headers.get("authorization") != f"Bearer {self.api_key}":
            return Answer(401, _error("invalid API key", 401))
        if method == "GET":
            self.lookups.append(path)
            if path.rstrip("/") == "/v1/models" and self.list_models:  # as vLLM
                owner = OWNED_BY[self.flavour]
                data = [{"id": self.model, "object": "model", "owned_by": owner}]
                return Answer(200, {"object": "list", "data": data})
            return Answer(404, _error("not found", 404))
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            return Answer(400, _error("invalid JSON body", 400))
        if path == "/apply-template" and self.flavour == "llamacpp":
            self.lookups.append(path)
            return Answer(200, {"prompt": apply_template(body.get("messages") or [])})
        if path.rstrip("/") not in _COMPLETIONS:
            return Answer(404, _error("not found", 404))
        try:
            answer = self._respond(body, headers)
        except Exception as exc:  # a broken test script: say so instead of hanging up
            self.errors.append(exc)
            return Answer(599, _error(f"handler failed: {exc!r}", 599))
        if answer.status != 200 or answer.drop or not body.get("stream"):
            return answer
        options = body.get("stream_options") or {}
        running = self.flavour == "vllm" and bool(options.get("continuous_usage_stats"))
        events = chunks(answer.payload, bool(options.get("include_usage")), running)
        return replace(answer, events=events)

    def closed_early(self, answer: Answer, sent: int) -> None:
        """Record that the client closed ``answer``'s stream after ``sent`` tokens: it is
        billed what was generated until then."""
        request = self.requests[answer.index or 0]
        text = "".join(c["message"]["content"] for c in answer.payload["choices"])
        request.usage = billed_until(request.usage, sent, self.counting, text)
        request.closed_early, request.streamed = True, sent

    def _respond(self, body: dict[str, Any], headers: dict[str, str]) -> Answer:
        """A completion request's answer: an injected or planned fault, else the replies."""
        with self._lock:
            index = len(self.requests)
            request = ChatRequest(index, body=body, headers=headers, flavour=self.flavour)
            self.requests.append(request)
            fault = self._faults.popleft() if self._faults else None
            judging = fenced(request.last_user) is not None
            planned = None if fault else draw(self.fault_plan, self._draws, judging)
            self.injected.update([planned] if planned else [])
        wait = self.latency
        if planned in DAMAGED:
            replies = damaged(planned, request, self.handler)
            return Answer(200, self._completion(body, index, replies), delay=wait, index=index)
        fault = fault or planned_fault(planned, self.fault_plan)
        if fault is not None:
            wait += fault.delay
            if fault.drop or fault.status != 200:
                return _failure(fault, wait)
        if problem := refusal(body, self.flavour):
            return Answer(400, _error(problem, 400), delay=wait)
        n = int(body.get("n") or 1) if self.honour_n else 1
        replies = []
        for choice in range(n):
            outcome = self.handler(ChatRequest(index, body, headers, choice, flavour=self.flavour))
            if isinstance(outcome, Fault):
                return _failure(outcome, wait + outcome.delay)
            replies.append(outcome if isinstance(outcome, Reply) else Reply(str(outcome)))
        return Answer(200, self._completion(body, index, replies), delay=wait, index=index)

    def _completion(self, body: dict[str, Any], index: int, replies: list[Reply]) -> dict[str, Any]:
        """The reply's payload; what it bills is recorded on request ``index`` (and left out of
        the payload by a server that does not report usage)."""
        payload = completion(
            body,
            index,
            replies,
            counting=self.counting,
            stop_reason=self.stop_reason,
            model=self.model,
        )
        self.requests[index].usage = payload["usage"]
        if not self.usage:
            del payload["usage"]
        return payload


def damaged(kind: str | None, request: ChatRequest, handler: Handler) -> list[Reply]:
    """The replies of a damaged 200: none, the handler's cut short, or not a verdict."""
    if kind == "empty":
        return []
    if kind == "truncated":
        reply = handler(replace(request, choice=0))
        text = reply.text if isinstance(reply, Reply) else str(reply)
        return [Reply(text[: len(text) // 2], "length")]
    return [Reply("Great answer! 10/10 :)")]


def _failure(fault: Fault, delay: float) -> Answer:
    if fault.drop:
        return Answer(0, drop=True, delay=delay)
    return Answer(fault.status, _error(fault.message, fault.status), fault.headers, delay=delay)


def _error(message: str, status: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": "loopback_error", "code": status}}
