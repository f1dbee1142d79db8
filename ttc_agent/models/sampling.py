"""Sampling requests: one request for ``n`` choices, metered against the running budget, and
``n`` completions from a server that may ignore ``n``: one request for all of them, then single
requests, concurrently, for the ones it did not return (llama.cpp returns one), remembering what
that says of the server for the next call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ttc_agent.budget import BudgetExhausted, within_budget
from ttc_agent.models.endpoint import Endpoint
from ttc_agent.models.metering import capped_cost
from ttc_agent.models.protocol import OnCompletion
from ttc_agent.models.replies import billed, completions_of, read_reply, without_lost_samples
from ttc_agent.models.shaping import completion_request
from ttc_agent.types import Completion, Message

Call = Callable[[int], Awaitable[list[Completion]]]
"""One request for ``n`` choices."""


async def complete(
    endpoint: Endpoint,
    model: str,
    messages: Sequence[Message],
    n: int,
    params: Mapping[str, Any],
    extra_body: Mapping[str, Any],
) -> list[Completion]:
    """One request for ``n`` choices (``ttc_agent.models.shaping.completion_request``), its
    worst case reserved under the running budget and its bill settled."""
    path, request, extra = completion_request(model, messages, n, params, extra_body)
    tools = request.get("tools") or extra.get("tools")
    cost = await capped_cost(model, request, n, tools=tools, usage=billed)
    reply = await endpoint.post(path, request | extra, read=read_reply, cost=cost)
    return completions_of(reply)


@dataclass
class NSupport:
    """Whether a server returns ``n`` choices for ``n`` (None: not known yet; learnt from the
    first request that asks for more than one)."""

    honoured: bool | None = None


async def sample_n(
    call: Call, n: int, server: NSupport, on_completion: OnCompletion | None = None
) -> list[Completion]:
    """``n`` completions, each handed to ``on_completion`` as its request returns; what the
    first request for more than one says of the ``server`` is remembered on it.

    Raises:
        BudgetExhausted: the budget stopped the single requests; its ``partial`` holds every
            completion that arrived.
        SamplesFailed: some single requests failed for good (``without_lost_samples``).

    Example:
        >>> async def server_ignoring_n(n):
        ...     return [Completion(text="one")]
        >>> server = NSupport()
        >>> len(asyncio.run(sample_n(server_ignoring_n, 3, server))), server.honoured
        (3, False)
    """

    def deliver(batch: list[Completion]) -> list[Completion]:
        if on_completion is not None:
            for completion in batch:
                on_completion(completion)
        return batch

    completions: list[Completion] = []
    if n > 1 and server.honoured is not False:
        try:
            completions = deliver(await call(n))
        except BudgetExhausted:
            completions = []  # n at once does not fit: single requests below take what does
        else:
            if server.honoured is None:
                server.honoured = len(completions) > 1

    async def one() -> list[Completion]:
        return deliver(await call(1))

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
