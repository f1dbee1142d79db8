"""What a model call may cost, and metering one against the running budget.

Every model call, whatever sends it (``OpenAIChat``, ``LangChainChat``, ``VLLMPRM``), reserves
its worst case before it is sent and settles to what was billed after, through ``metered_call``.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import openai

from ttc_agent.budget import BudgetExhausted, Meter, current_meter, prompt_token_bound
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
    else:
        meter.settle(ticket, cost.model, cost.usage(result))
        return result
    finally:
        _wake_waiters()  # room may have come free for requests waiting on this loop


async def request_cost(
    model: str,
    prompt_tokens: int,
    max_tokens: int | None,
    n: int,
    usage: Callable[[Any], Usage | None],
) -> tuple[Cost | None, int | None]:
    """The worst case of a request of ``n`` choices under the running budget (None without
    one), and its ``max_tokens`` capped to what is left.

    A request whose worst case does not fit while other calls are in flight waits for them
    to settle first (they reserved their worst cases, and most bill far less), so that a
    round sent at once buys what the same round sent a few at a time would.

    Raises:
        BudgetExhausted: not one output token is left.
    """
    meter = current_meter()
    if meter is None:
        return None, max_tokens
    room = await _room(meter, model, prompt_tokens, n, max_tokens or 1)
    if room is not None:
        if room < 1:
            meter.exhausted = True
            raise BudgetExhausted("no output tokens left in the budget")
        if max_tokens is not None and max_tokens > room:
            meter.exhausted = True  # the budget shortens this reply: the result is limited
        max_tokens = min(max_tokens or room, room)
    return Cost(model, prompt_tokens, (max_tokens or 0) * n, usage=usage), max_tokens


async def capped_cost(
    model: str,
    request: dict[str, Any],
    n: int,
    *,
    tools: list[Any] | None,
    usage: Callable[[Any], Usage | None],
) -> Cost | None:
    """The worst case of a chat or text completion ``request`` (its ``messages`` or ``prompt``,
    ``tools`` offered with it) under the running budget; its ``max_tokens`` is capped, in
    place, to what is left (``request_cost``)."""
    prompt = prompt_token_bound(request.get("prompt") or request["messages"], tools=tools)
    cost, max_tokens = await request_cost(model, prompt, request.get("max_tokens"), n, usage)
    if max_tokens is not None:
        request["max_tokens"] = max_tokens
    return cost


async def _room(meter: Meter, model: str, prompt_tokens: int, n: int, wanted: int) -> int | None:
    """The output room of each of ``n`` choices, once it holds ``wanted`` tokens or no call
    is in flight any more to free some (or the deadline comes)."""
    room = meter.output_room(model, prompt_tokens, n)
    while room is not None and room < wanted and _in_flight(meter):
        left = meter.remaining_time()
        if left is not None and left <= 0:
            break
        settled = _settles.setdefault(asyncio.get_running_loop(), asyncio.Event())
        with contextlib.suppress(TimeoutError):  # a call settled on another loop: look again
            await asyncio.wait_for(settled.wait(), min(SETTLE_POLL, left or SETTLE_POLL))
        room = meter.output_room(model, prompt_tokens, n)
    return room


SETTLE_POLL = 0.1
"""Seconds between looks at the budget while waiting for calls settled on other loops."""

_settles: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event]
_settles = weakref.WeakKeyDictionary()


def _in_flight(meter: Meter | None) -> bool:
    while meter is not None:
        if meter.reserved.calls > 0:
            return True
        meter = meter.parent
    return False


def _wake_waiters() -> None:
    """After a settle: requests waiting on this loop for room look at the budget again."""
    with contextlib.suppress(RuntimeError):  # no running loop: nothing waits on one
        settled = _settles.pop(asyncio.get_running_loop(), None)
        if settled is not None:
            settled.set()
