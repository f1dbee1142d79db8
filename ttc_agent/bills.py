"""Bills: what the metered calls made within a block billed, recorded for whoever listens.

Every call a ``Meter`` settles (or charges) is noted in each recording open in its context
(recordings nest, and LangGraph tasks copy the context, so the calls of every task started
inside a block are noted in it). A recording keeps each call two ways:

- as a list of ``Bill`` (model, prompt tokens, output tokens), what the meter charged: a
  checkpointed task stores these beside its result, so that a run resumed from the checkpoint,
  which replays the result instead of making the calls again, charges its budget for them (see
  ``ttc_agent.strategies._replay``);
- as ``generation`` and ``verification`` usage, what the servers counted (calls made inside
  ``spending("verification")`` are verification): when a budget stops a search step part-way,
  what that step had spent arrived in no result, and its recording still has it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal, NamedTuple

from ttc_agent.types import Usage

Kind = Literal["generation", "verification"]


class Bill(NamedTuple):
    """One call, as the meter charged it."""

    model: str
    prompt_tokens: int
    output_tokens: int


class Recording(list[Bill]):
    """The calls noted within one block: a list of bills, plus what the servers counted split
    into generation and verification (thread- and task-safe).

    Example:
        >>> with recording() as bills:
        ...     note("m", Usage(prompt_tokens=3, calls=1))
        ...     with spending("verification"):
        ...         note("m", Usage(prompt_tokens=5, completion_tokens=1, calls=1))
        >>> [tuple(bill) for bill in bills]
        [('m', 3, 0), ('m', 5, 1)]
        >>> bills.generation.prompt_tokens, bills.verification.prompt_tokens
        (3, 5)
    """

    def __init__(self) -> None:
        super().__init__()
        self.generation = Usage()
        self.verification = Usage()
        self._lock = threading.Lock()

    def add(self, bill: Bill, counted: Usage, kind: Kind) -> None:
        """Note one call: ``bill`` as charged, ``counted`` as its server counted it."""
        with self._lock:
            self.append(bill)
            if kind == "verification":
                self.verification = self.verification + counted
            else:
                self.generation = self.generation + counted


_open: ContextVar[tuple[Recording, ...]] = ContextVar("ttc_recordings", default=())
_kind: ContextVar[Kind] = ContextVar("ttc_spending", default="generation")


def note(model: str, charged: Usage, counted: Usage | None = None) -> None:
    """Note one call in every recording open in this context: ``charged`` is what the meter
    charged, ``counted`` what the server said it billed (``charged`` when not given)."""
    bill = Bill(model, charged.prompt_tokens, charged.completion_tokens)
    kind = _kind.get()
    for open_recording in _open.get():
        open_recording.add(bill, charged if counted is None else counted, kind)


@contextmanager
def recording() -> Iterator[Recording]:
    """Record the calls made within this block (concurrent ones and nested recordings' too)."""
    bills = Recording()
    token = _open.set((*_open.get(), bills))
    try:
        yield bills
    finally:
        _open.reset(token)


@contextmanager
def spending(kind: Kind) -> Iterator[None]:
    """Count the calls made inside the block as ``kind`` (``generation`` by default)."""
    token = _kind.set(kind)
    try:
        yield
    finally:
        _kind.reset(token)
