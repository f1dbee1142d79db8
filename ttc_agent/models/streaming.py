"""One completion streamed token by token with its logprobs, cancelled mid-way when the caller
says so: the stream's HTTP response is closed, which is how a client tells vLLM, SGLang,
llama.cpp's servers and OpenAI to stop generating for it.

What a stream costs, for the budget: the usage the stream reported (at its end with
``stream_options.include_usage``, or in every chunk from a server that sends it so, as vLLM does
with ``continuous_usage_stats``: pass it in ``OpenAIChat(extra_body={"stream_options":
{"include_usage": True, "continuous_usage_stats": True}})``); else the call's whole reservation,
since the client cannot know what the server generated before it saw the stream closed. The
completion's own usage is what the stream reported, else the tokens the client received (with
no prompt tokens, as for any reply that does not report usage).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import openai

from ttc_agent.models.endpoint import Endpoint
from ttc_agent.models.metering import Cost, capped_cost
from ttc_agent.models.shaping import completion_request, sampling_params, with_fields
from ttc_agent.protocols import CancelWhen, StopRule
from ttc_agent.types import Completion, Message, TokenLogprob, Usage


class _Streamable(Protocol):
    """What ``StreamSampling`` reads of the model it is part of (``OpenAIChat``)."""

    endpoint: Endpoint
    extra_body: dict[str, Any]
    request_fields: dict[str, Any]
    logprobs: bool

    async def _model_name(self) -> str: ...


class StreamSampling:
    """``stream_sample``, the streaming part of ``OpenAIChat``."""

    async def stream_sample(
        self: _Streamable,
        messages: Sequence[Message],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_logprobs: int | None = None,
        cancel_when: CancelWhen | None = None,
    ) -> Completion:
        """One completion, streamed with its logprobs and cancelled (the stream closed,
        ``finish_reason="cancelled"``) as soon as ``cancel_when``'s rule says. A text answer:
        no tools are offered, nor a caller's shape fields (``request_fields``).

        Example:
            >>> # watch = lambda: GroupWatch(window=32, threshold=11.0).add
            >>> # completion = await model.stream_sample(messages, top_logprobs=20,
            >>> #                                        cancel_when=watch)
        """
        model = await self._model_name()
        params = sampling_params(
            temperature=temperature,
            max_tokens=max_tokens,
            top_logprobs=top_logprobs if self.logprobs else None,
        )
        params = with_fields(params, self.request_fields, shaped=True)
        _, request, extra = completion_request(model, messages, 1, params, self.extra_body)
        cost = await capped_cost(model, request, 1, tools=None, usage=_billed)
        return await stream_one(self.endpoint, request, extra, cost, cancel_when)


@dataclass
class _Stream:
    """What one attempt received."""

    stop: StopRule | None
    text: list[str] = field(default_factory=list)
    tokens: list[TokenLogprob] = field(default_factory=list)
    pieces: int = 0
    finish_reason: str | None = None
    usage: Usage | None = None
    cancelled: bool = False

    def take(self, chunk: Any) -> bool:
        """Read one chunk; True when the stream should be cancelled now."""
        if getattr(chunk, "usage", None) is not None:
            usage = chunk.usage
            self.usage = Usage(
                prompt_tokens=usage.prompt_tokens or 0,
                completion_tokens=usage.completion_tokens or 0,
                calls=1,
            )
        for choice in chunk.choices or []:
            if choice.index != 0:
                continue
            if choice.delta is not None and choice.delta.content:
                self.text.append(choice.delta.content)
                self.pieces += 1
            if choice.finish_reason is not None:
                self.finish_reason = choice.finish_reason
            for item in getattr(choice.logprobs, "content", None) or []:
                token = TokenLogprob(
                    token=item.token,
                    logprob=item.logprob,
                    top={alt.token: alt.logprob for alt in item.top_logprobs or []},
                )
                self.tokens.append(token)
                if self.stop is not None and self.stop(token):
                    self.cancelled = True
        return self.cancelled

    def completion(self) -> Completion:
        received = len(self.tokens) or self.pieces
        finish = "cancelled" if self.cancelled else self.finish_reason
        return Completion(
            text="".join(self.text),
            finish_reason=finish,
            ended=False if finish in ("length", "cancelled") else None,
            logprobs=self.tokens or None,
            usage=self.usage or Usage(completion_tokens=received, calls=1),
        )


async def stream_one(
    endpoint: Endpoint,
    request: dict[str, Any],
    extra_body: dict[str, Any],
    cost: Cost | None,
    cancel_when: CancelWhen | None,
) -> Completion:
    """Stream one chat completion of ``request`` (its fields as ``create`` takes them) and read
    it into a ``Completion``; ``finish_reason`` is ``"cancelled"`` when ``cancel_when``'s rule
    stopped it (its text and logprobs are what arrived before)."""

    async def create(client: openai.AsyncOpenAI) -> _Stream:
        received = _Stream(cancel_when() if cancel_when is not None else None)
        stream = await client.chat.completions.create(
            **request,
            stream=True,
            stream_options={"include_usage": True},
            extra_body=extra_body or None,
        )
        try:
            async for chunk in stream:
                if received.take(chunk):
                    break
        finally:
            await stream.close()  # closes the connection, mid-way or not
        return received

    if cost is not None:  # what the stream reported, whoever reserved it
        cost = Cost(cost.model, cost.prompt_tokens, cost.output_tokens, usage=_billed)
    received = await endpoint.call(create, cost=cost)
    return received.completion()


def _billed(received: _Stream) -> Usage | None:
    """What the stream reported it cost (None: charge the reservation)."""
    return received.usage
