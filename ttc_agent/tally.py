"""Tallies: what the metered calls made within a block billed, as their servers counted.

A strategy keeps its usage from the completions and scores that arrive; when a budget stops a
step part-way, what that step had already spent arrived in no result. A tally, opened around
the step, still has it, split into generation and verification (calls made inside
``spending("verification")``). Tallies are found through context variables, so the calls of
every task started inside the block (LangGraph tasks copy the context) are tallied.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from typing import Literal

from ttc_agent.types import Usage


class Tally:
    """The usage billed by the metered calls of one block (thread- and task-safe).

    Example:
        >>> with tallied() as tally:
        ...     record(Usage(prompt_tokens=3, calls=1))
        ...     with spending("verification"):
        ...         record(Usage(prompt_tokens=5, calls=1))
        >>> tally.generation.prompt_tokens, tally.verification.prompt_tokens
        (3, 5)
    """

    def __init__(self) -> None:
        self.generation = Usage()
        self.verification = Usage()
        self._lock = threading.Lock()

    def add(self, usage: Usage, kind: Kind) -> None:
        with self._lock:
            if kind == "verification":
                self.verification = self.verification + usage
            else:
                self.generation = self.generation + usage


Kind = Literal["generation", "verification"]

_open: contextvars.ContextVar[tuple[Tally, ...]] = contextvars.ContextVar("ttc_tallies", default=())
_kind: contextvars.ContextVar[Kind] = contextvars.ContextVar("ttc_kind", default="generation")


@contextlib.contextmanager
def spending(kind: Kind) -> Iterator[None]:
    """Tally the calls made inside the block as ``kind`` (``generation`` by default)."""
    token = _kind.set(kind)
    try:
        yield
    finally:
        _kind.reset(token)


@contextlib.contextmanager
def tallied() -> Iterator[Tally]:
    """Tally the metered calls made inside the block (nested tallies each see them)."""
    tally = Tally()
    token = _open.set((*_open.get(), tally))
    try:
        yield tally
    finally:
        _open.reset(token)


def record(usage: Usage) -> None:
    """Add one call's usage to every tally open in this context."""
    kind = _kind.get()
    for tally in _open.get():
        tally.add(usage, kind)
