"""``ttc serve``: an OpenAI-compatible proxy that thinks harder when a client asks it to.

A client picks the effort with the standard ``reasoning_effort`` field (or a model-name suffix,
``MODEL:high``); the extension field ``"ttc": {"strategy": "best_of_n", "n": 8}`` picks the
strategy and n. Without them a request passes through to the upstream unchanged.

- Streaming is real: while searching, progress goes out as SSE comments
  (``: ttc {"ttc": "sampled", "done": 3, "total": 8}``), then the answer as ordinary
  ``chat.completion.chunk`` events and ``data: [DONE]``.
- Usage is complete: ``usage`` adds up every internal call (sampling and judging); the
  extension field ``ttc.usage`` splits it into generation and verification.
- Conversations stay whole: system, user, assistant and tool messages reach the upstream as
  messages.
- Requests stay whole: every other field (tools, tool_choice, response_format, stop, seed...)
  goes with each candidate's request, and one the proxy cannot honour is a 400 naming it
  (``serve_fields``). Candidates that call tools are chosen among as tool calls, and the chosen
  call comes back as OpenAI writes one, streamed too (``serve_tools``).
- Safe by default: it binds to 127.0.0.1; ``--api-key`` is required on any other host and
  checked on every request; request size and n are limited; upstream errors map to 502/504
  with a clear message; the upstream key never reaches a client or a log.
"""

from __future__ import annotations

import contextlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ttc_agent.budget import Budget, metered
from ttc_agent.errors import ConfigurationError, EndpointUnreachable, ModelError, TTCError
from ttc_agent.models.endpoint import Endpoint
from ttc_agent.models.openai_chat import OpenAIChat
from ttc_agent.models.retry import RetryPolicy
from ttc_agent.serve_fields import BadRequest, forwarded_fields
from ttc_agent.serve_reply import chat_completion
from ttc_agent.serve_tools import ToolCallsShown, choose_tool_call
from ttc_agent.sse import completion_events
from ttc_agent.strategies import preset_strategies, search_result
from ttc_agent.strategies.think_harder import DEFAULT_PRESETS, Preset, think_harder
from ttc_agent.types import SearchResult
from ttc_agent.verifiers.rubric_judge import RubricJudge

EFFORTS = ("none", "low", "medium", "high")


@dataclass
class ProxyConfig:
    """How the proxy runs.

    Args:
        upstream: the OpenAI-compatible endpoint, e.g. ``http://127.0.0.1:8000/v1``.
        upstream_key: sent upstream; never sent to clients or logged.
        api_key: when set, clients must send it as a Bearer token.
        max_body_bytes: the largest request body accepted.
        max_n: the most candidates a request may ask for.
        judge: the judge card that scores candidates.
        presets: what each effort level runs (the think_harder defaults, unless given).
    """

    upstream: str
    upstream_key: str | None = None
    api_key: str | None = None
    max_body_bytes: int = 1_000_000
    max_n: int = 32
    timeout: float = 600.0
    retry: RetryPolicy | None = None
    judge: str = "helpfulness"
    presets: dict[str, Preset] = field(default_factory=lambda: dict(DEFAULT_PRESETS))


def create_app(config: ProxyConfig) -> Starlette:
    """The proxy as an ASGI application (serve it with uvicorn, or ``ttc serve``).

    Example:
        >>> app = create_app(ProxyConfig(upstream="http://127.0.0.1:8000/v1"))
        >>> sorted(route.path for route in app.routes)
        ['/v1/chat/completions', '/v1/models']
    """
    upstream = config.upstream.rstrip("/")
    headers = {"Authorization": f"Bearer {config.upstream_key or 'not-needed'}"}
    http = httpx.AsyncClient(timeout=config.timeout, headers=headers)
    endpoint = Endpoint(upstream, config.upstream_key, timeout=config.timeout, retry=config.retry)
    models: dict[str, tuple[OpenAIChat, RubricJudge]] = {}

    def model_for(name: str) -> tuple[OpenAIChat, RubricJudge]:
        if name not in models:
            model = OpenAIChat(name, base_url=upstream, endpoint=endpoint)
            models[name] = (model, RubricJudge(config.judge, model))
        return models[name]

    async def list_models(request: Request) -> Response:
        _authorise(request, config)
        reply = await http.get(f"{upstream}/models")
        return Response(reply.content, reply.status_code, media_type="application/json")

    async def chat_completions(request: Request) -> Response:
        _authorise(request, config)
        raw = await request.body()
        if len(raw) > config.max_body_bytes:
            raise BadRequest(413, f"request body over {config.max_body_bytes} bytes")
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadRequest(400, "the request body is not valid JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            raise BadRequest(400, "the request needs a JSON object with a 'messages' list")
        plan = _plan(body, config)
        if plan is None:
            return await _pass_through(http, f"{upstream}/chat/completions", raw, body)
        model_name, preset_name, preset = plan
        fields = forwarded_fields(body)
        model, judge = model_for(model_name)
        temperature = body.get("temperature")
        node = think_harder(
            ToolCallsShown(model.with_request_fields(fields)),  # the judge: none of the fields
            judge,
            effort=preset_name,  # type: ignore[arg-type]
            presets={preset_name: preset},
            temperature=0.8 if temperature is None else temperature,
            max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
        )
        graph_input = {"messages": body["messages"]}

        async def answer(final: Any) -> SearchResult:
            return await choose_tool_call(search_result(final), body["messages"], judge)

        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            name = body.get("model", model_name)
            events = _stream(node.graph, graph_input, answer, preset.budget, name, include_usage)
            return StreamingResponse(events, media_type="text/event-stream")
        with metered(preset.budget):  # the search, and a tie between tool calls judged after it
            result = await answer(await node.graph.ainvoke(graph_input))
        return JSONResponse(chat_completion(result, body.get("model", model_name)))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await http.aclose()
        await endpoint.aclose()

    return Starlette(
        routes=[
            Route("/v1/models", _guarded(list_models), methods=["GET"]),
            Route("/v1/chat/completions", _guarded(chat_completions), methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def _guarded(handler: Any) -> Any:
    """Map every failure to an OpenAI-style error response with the right status."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except BadRequest as exc:
            return _error(exc.status, str(exc))
        except ConfigurationError as exc:
            return _error(400, str(exc))
        except TTCError as exc:
            return _error(*_upstream_status(exc))
        except httpx.TransportError as exc:
            return _error(502, f"the upstream is unreachable: {type(exc).__name__}")

    return guarded


def _upstream_status(exc: TTCError) -> tuple[int, str]:
    if isinstance(exc, EndpointUnreachable):
        return (504 if "timed out" in str(exc) else 502), f"upstream: {exc}"
    if isinstance(exc, ModelError) and exc.status_code is not None and exc.status_code < 500:
        status = 429 if exc.status_code == 429 else 502
        return status, f"upstream: {exc}"
    return 502, f"upstream: {exc}"


def _authorise(request: Request, config: ProxyConfig) -> None:
    if config.api_key is None:
        return
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {config.api_key}".encode()):
        raise BadRequest(401, "missing or wrong API key")


def _plan(body: dict[str, Any], config: ProxyConfig) -> tuple[str, str, Preset] | None:
    """(upstream model, effort, preset) for a test-time-compute request; None: pass through."""
    model = str(body.get("model") or "")
    effort = body.get("reasoning_effort")
    if ":" in model and model.rsplit(":", 1)[1] in EFFORTS:
        model, effort = model.rsplit(":", 1)[0], effort or model.rsplit(":", 1)[1]
    extension = body.get("ttc")
    if effort is None and extension is None:
        return None
    if effort is not None and effort not in EFFORTS:
        raise BadRequest(
            400, f"unknown reasoning_effort {effort!r}; use one of {', '.join(EFFORTS)}"
        )
    if int(body.get("n") or 1) != 1:
        raise BadRequest(400, "n must be 1 when thinking harder; ask for candidates with ttc.n")
    preset = config.presets[effort or "medium"]
    if extension is not None:
        if not isinstance(extension, dict):
            raise BadRequest(400, 'ttc must be an object, e.g. {"strategy": "best_of_n", "n": 8}')
        strategy = extension.get("strategy", preset.strategy)
        if strategy not in preset_strategies():  # the registry's, yours registered included
            raise BadRequest(
                400,
                f"unknown ttc.strategy {strategy!r}; use one of {', '.join(preset_strategies())}",
            )
        n = extension.get("n", preset.n)
        if not isinstance(n, int) or not 1 <= n <= config.max_n:
            raise BadRequest(400, f"ttc.n must be an integer from 1 to {config.max_n}, got {n!r}")
        preset = preset.model_copy(update={"strategy": strategy, "n": n})
    if preset.n > config.max_n:
        raise BadRequest(400, f"n {preset.n} is over this proxy's limit of {config.max_n}")
    return model, effort or "medium", preset


async def _pass_through(
    http: httpx.AsyncClient, url: str, raw: bytes, body: dict[str, Any]
) -> Response:
    headers = {"Content-Type": "application/json"}
    if not body.get("stream"):
        reply = await http.post(url, content=raw, headers=headers)
        return Response(
            reply.content, _pass_status(reply.status_code), media_type="application/json"
        )
    upstream = await http.send(
        http.build_request("POST", url, content=raw, headers=headers), stream=True
    )
    if upstream.status_code != 200:
        content = await upstream.aread()
        await upstream.aclose()
        return Response(content, _pass_status(upstream.status_code), media_type="application/json")
    if "text/event-stream" not in upstream.headers.get("content-type", ""):
        completion = json.loads(await upstream.aread())  # it did not stream: stream it here
        await upstream.aclose()
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = completion_events(completion, include_usage=include_usage)
        return StreamingResponse(iter(events), media_type="text/event-stream")

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()

    return StreamingResponse(relay(), media_type="text/event-stream")


def _pass_status(status: int) -> int:
    """Upstream 5xx is the proxy's bad gateway; client errors pass through as they are."""
    return 502 if status >= 500 else status


async def _stream(
    graph: Any,
    graph_input: dict[str, Any],
    answer: Callable[[Any], Awaitable[SearchResult]],
    budget: Budget | None,
    model: str,
    include_usage: bool,
) -> AsyncIterator[str]:
    """Progress as SSE comments while searching, then the answer as chunks, then [DONE]."""
    final = None
    try:
        with metered(budget):
            async for mode, chunk in graph.astream(graph_input, stream_mode=["custom", "values"]):
                if mode == "values":
                    final = chunk
                elif isinstance(chunk, dict) and "ttc" in chunk:
                    yield f": ttc {json.dumps(chunk, default=str)}\n\n"
            result = await answer(final)
    except TTCError as exc:
        status, message = (
            _upstream_status(exc) if not isinstance(exc, ConfigurationError) else (400, str(exc))
        )
        yield f"data: {json.dumps({'error': {'message': message, 'code': status}})}\n\n"
        yield "data: [DONE]\n\n"
        return
    for sse in completion_events(chat_completion(result, model), include_usage=include_usage):
        yield sse


def _error(status: int, message: str) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "upstream_error"
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status)
