"""What a model call may cost, and metering one against the running budget.

Every model call, whatever sends it (``OpenAIChat``, ``LangChainChat``, ``VLLMPRM``), reserves
its worst case before it is sent and settles to what was billed after, through ``metered_call``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import openai

from ttc_agent.budget import BudgetExhausted, Meter, current_meter
from ttc_agent.types import Usage

T = TypeVar("T")


@dataclass(frozen=True)
class Cost:
    """What a call may cost at most, and how to read what it did cost (None: the reply does
    not say, so the call is charged what it reserved)."""

    model: str
    prompt_tokens: int
    output_tokens: int
    usage: Callable[[Any], Usage | None]


ONE_CALL = Cost("", 0, 0, usage=lambda _: Usage(calls=1))
"""A request that bills no tokens (a model list, a template rendering): one call."""


async def metered_call(meter: Meter, cost: Cost, start: Callable[[], Awaitable[T]]) -> T:
    """Run ``start()`` with its worst case reserved on ``meter``, settled to what it billed."""
    ticket = meter.reserve(
        cost.model, prompt_tokens=cost.prompt_tokens, output_tokens=cost.output_tokens
    )
    left = meter.remaining_time()
    try:
        call = start()
        result = await (call if left is None else asyncio.wait_for(call, max(left, 0.001)))
    except TimeoutError:
        meter.settle(ticket, cost.model, None)
        meter.exhausted = True
        raise BudgetExhausted("the deadline passed during a call") from None
    except openai.APIStatusError:  # the server refused: one call, no tokens
        meter.settle(ticket, cost.model, Usage(calls=1))
        raise
    except BaseException:  # it may have been billed in full: charge the reservation
        meter.settle(ticket, cost.model, None)
        raise
    meter.settle(ticket, cost.model, cost.usage(result))
    return result


def request_cost(
    model: str,
    prompt_tokens: int,
    max_tokens: int | None,
    n: int,
    usage: Callable[[Any], Usage | None],
) -> tuple[Cost | None, int | None]:
    """The worst case of a request of ``n`` choices under the running budget (None without
    one), and its ``max_tokens`` capped to what is left.

    Raises:
        BudgetExhausted: not one output token is left.
    """
    meter = current_meter()
    if meter is None:
        return None, max_tokens
    room = meter.output_room(model, prompt_tokens, n)
    if room is not None:
        if room < 1:
            meter.exhausted = True
            raise BudgetExhausted("no output tokens left in the budget")
        if max_tokens is not None and max_tokens > room:
            meter.exhausted = True  # the budget shortens this reply: the result is limited
        max_tokens = min(max_tokens or room, room)
    return Cost(model, prompt_tokens, (max_tokens or 0) * n, usage=usage), max_tokens
