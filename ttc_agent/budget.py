"""Hard budgets: calls, output tokens, total tokens, cost and a deadline.

A ``Budget`` is a ceiling; a ``Meter`` enforces it while a search runs. Every model call
*reserves* its worst case before it is sent (one call, its ``max_tokens`` per choice, an upper
bound on its prompt tokens) and *settles* to what the server billed when it returns, so that
concurrent calls can never together overshoot. A call whose reservation does not fit is not
sent: ``BudgetExhausted`` is raised instead, and strategies return their best result so far,
marked ``budget_limited``.

The meter of the running search is found through a context variable, so every call made inside
the search (sampling, judging, step scoring) is metered without being passed around.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ttc_agent import bills
from ttc_agent.errors import BudgetExhausted as BudgetExhausted
from ttc_agent.token_bound import prompt_token_bound as prompt_token_bound
from ttc_agent.types import Usage


class Price(BaseModel):
    """What a model costs, in your currency per million tokens."""

    model_config = ConfigDict(frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000


class Budget(BaseModel):
    """Ceilings on what one search may spend; unset ones are unlimited.

    Args:
        calls: model calls (each HTTP request, retries included).
        output_tokens: completion tokens.
        total_tokens: prompt plus completion tokens.
        cost: money, priced with ``prices`` (model name -> ``Price``).
        deadline: seconds from the start of the search.

    Example:
        >>> Budget(calls=20, total_tokens=50_000).limited
        True
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    calls: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)
    total_tokens: int | None = Field(default=None, ge=0)
    cost: float | None = Field(default=None, ge=0)
    prices: dict[str, Price] = Field(default_factory=dict)
    deadline: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _priced(self) -> Budget:
        if self.cost is not None and not self.prices:
            raise ValueError("a cost budget needs prices: {model name: Price(input=, output=)}")
        return self

    @property
    def limited(self) -> bool:
        """Whether any ceiling is set."""
        ceilings = (self.calls, self.output_tokens, self.total_tokens, self.cost, self.deadline)
        return any(value is not None for value in ceilings)


class Spend(BaseModel):
    """An amount of spending: what a call reserves, or what it cost."""

    model_config = ConfigDict(frozen=True)

    calls: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0

    def __add__(self, other: Spend) -> Spend:
        return Spend(
            calls=self.calls + other.calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost=self.cost + other.cost,
        )

    def __sub__(self, other: Spend) -> Spend:
        return Spend(
            calls=self.calls - other.calls,
            prompt_tokens=self.prompt_tokens - other.prompt_tokens,
            output_tokens=self.output_tokens - other.output_tokens,
            cost=self.cost - other.cost,
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens


class Meter:
    """Enforces one ``Budget`` across concurrent calls (thread- and task-safe). A meter with a
    ``parent`` enforces both budgets: every call is reserved and settled in both.

    Example:
        >>> meter = Meter(Budget(calls=1))
        >>> ticket = meter.reserve("m", prompt_tokens=10, output_tokens=5)
        >>> meter.settle(ticket, "m", Usage(prompt_tokens=8, completion_tokens=3, calls=1))
        >>> meter.spent.calls, meter.spent.total_tokens
        (1, 11)
    """

    def __init__(
        self, budget: Budget, *, clock: float | None = None, parent: Meter | None = None
    ) -> None:
        self.budget, self.parent = budget, parent
        self.started = time.monotonic() if clock is None else clock
        self.spent = Spend()  # settled
        self.reserved = Spend()  # in flight
        self.exhausted = False
        self._lock = threading.Lock()

    def remaining_time(self) -> float | None:
        """Seconds left before the deadline (None without one)."""
        lefts = [] if self.parent is None else [self.parent.remaining_time()]
        if self.budget.deadline is not None:
            lefts.append(self.budget.deadline - (time.monotonic() - self.started))
        return min((left for left in lefts if left is not None), default=None)

    def output_room(self, model: str, prompt_tokens: int, choices: int = 1) -> int | None:
        """The most output tokens each of ``choices`` may be given now (None: unlimited)."""
        with self._lock:
            committed = self.spent + self.reserved
        rooms = []
        if self.budget.output_tokens is not None:
            rooms.append(self.budget.output_tokens - committed.output_tokens)
        if self.budget.total_tokens is not None:
            rooms.append(self.budget.total_tokens - committed.total_tokens - prompt_tokens)
        if self.budget.cost is not None:
            price = self.budget.prices.get(model)
            if price is not None and price.output > 0:
                left = self.budget.cost - committed.cost - price.cost(prompt_tokens, 0)
                rooms.append(int(left * 1_000_000 / price.output))
        own = None if not rooms else max(0, min(rooms)) // max(choices, 1)
        above = (
            None if self.parent is None else self.parent.output_room(model, prompt_tokens, choices)
        )
        return min((room for room in (own, above) if room is not None), default=None)

    def reserve(self, model: str, *, prompt_tokens: int, output_tokens: int) -> Spend:
        """Reserve one call's worst case, or raise ``BudgetExhausted`` without reserving."""
        if self.parent is not None:
            try:
                self.parent.reserve(model, prompt_tokens=prompt_tokens, output_tokens=output_tokens)
            except BudgetExhausted:
                self.exhausted = True
                raise
        try:
            ask = self._ask(model, prompt_tokens, output_tokens)
            with self._lock:
                left = self.remaining_time()
                if left is not None and left <= 0:
                    self.exhausted = True
                    raise BudgetExhausted("the deadline has passed")
                problem = self._over(self.spent + self.reserved + ask)
                if problem:
                    self.exhausted = True
                    raise BudgetExhausted(f"the next call would exceed the {problem} budget")
                self.reserved = self.reserved + ask
        except BudgetExhausted:
            if self.parent is not None:
                self.parent._settle_up(model, prompt_tokens, output_tokens, Usage())
            raise
        return ask

    def settle(self, ticket: Spend, model: str, usage: Usage | None) -> None:
        """Replace a reservation by what the call billed (``None``: the reply did not say, or
        the call failed part-way: charge the reservation). Open recordings note the call.
        """
        charged = usage or Usage(
            prompt_tokens=ticket.prompt_tokens, completion_tokens=ticket.output_tokens, calls=1
        )
        bills.note(model, charged, counted=usage or Usage(calls=1))
        self._settle_up(model, ticket.prompt_tokens, ticket.output_tokens, usage)

    def charge(self, model: str, usage: Usage) -> None:
        """Charge a call that was made before this meter saw it, with nothing reserved for it (a
        resumed run replaying a stored result): here and in every parent, noted like any call.

        Example:
            >>> meter = Meter(Budget(calls=3))
            >>> meter.charge("m", Usage(prompt_tokens=4, completion_tokens=2, calls=1))
            >>> meter.spent.calls, meter.reserved.calls
            (1, 0)
        """
        bills.note(model, usage)
        self._charge_up(model, usage)

    def _charge_up(self, model: str, usage: Usage) -> None:
        billed = self._ask(model, usage.prompt_tokens, usage.completion_tokens, usage.calls)
        with self._lock:
            self.spent = self.spent + billed
        if self.parent is not None:
            self.parent._charge_up(model, usage)

    def _settle_up(self, model: str, prompt: int, output: int, usage: Usage | None) -> None:
        """Settle here and in every parent (``Usage()``: the call was not sent after all)."""
        ticket = self._ask(model, prompt, output)
        if usage is None:
            billed = ticket
        else:
            billed = self._ask(model, usage.prompt_tokens, usage.completion_tokens, usage.calls)
        with self._lock:
            self.reserved = self.reserved - ticket
            self.spent = self.spent + billed
        if self.parent is not None:
            self.parent._settle_up(model, prompt, output, usage)

    def _ask(self, model: str, prompt_tokens: int, output_tokens: int, calls: int = 1) -> Spend:
        cost = self._cost(model, prompt_tokens, output_tokens)
        return Spend(
            calls=calls, prompt_tokens=prompt_tokens, output_tokens=output_tokens, cost=cost
        )

    def _over(self, spend: Spend) -> str | None:
        budget = self.budget
        if budget.calls is not None and spend.calls > budget.calls:
            return "calls"
        if budget.output_tokens is not None and spend.output_tokens > budget.output_tokens:
            return "output tokens"
        if budget.total_tokens is not None and spend.total_tokens > budget.total_tokens:
            return "total tokens"
        if budget.cost is not None and spend.cost > budget.cost + 1e-12:
            return "cost"
        return None

    def _cost(self, model: str, prompt_tokens: int, output_tokens: int) -> float:
        if self.budget.cost is None or prompt_tokens == output_tokens == 0:
            return 0.0
        price = self.budget.prices.get(model)
        if price is None:
            raise BudgetExhausted(
                f"no price for model {model!r} in the budget's prices "
                f"({', '.join(self.budget.prices) or 'none'}): cannot keep to a cost budget"
            )
        return price.cost(prompt_tokens, output_tokens)


_current: contextvars.ContextVar[Meter | None] = contextvars.ContextVar("ttc_meter", default=None)


def current_meter() -> Meter | None:
    """The meter of the search running in this context, if any."""
    return _current.get()


@contextlib.contextmanager
def metered(budget: Budget | Meter | None) -> Iterator[Meter | None]:
    """Meter every model call made inside the block against ``budget``.

    Example:
        >>> with metered(Budget(calls=3)) as meter:
        ...     current_meter() is meter
        True
    """
    if budget is None:
        yield None
        return
    meter = budget if isinstance(budget, Meter) else Meter(budget)
    token = _current.set(meter)
    try:
        yield meter
    finally:
        _current.reset(token)


def within_budget(results: list[Any]) -> list[Any]:
    """Results of concurrent calls (``gather(..., return_exceptions=True)``). When the budget
    stopped some of them, raise ``BudgetExhausted`` whose ``partial`` holds the others (None
    where a call was stopped); any other error passes through.

    Example:
        >>> within_budget([1, 2])
        [1, 2]
    """
    errors = [r for r in results if isinstance(r, BaseException)]
    for error in errors:
        if not isinstance(error, BudgetExhausted):
            raise error
    if errors:
        partial = [None if isinstance(r, BaseException) else r for r in results]
        raise BudgetExhausted(str(errors[0]), partial=partial)
    return results
