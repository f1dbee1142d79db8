"""Progress events that strategies emit on LangGraph's custom stream.

A caller streaming the parent graph with ``stream_mode="custom"`` receives one dict per event:

    {"ttc": "sampled", "strategy": "best_of_n", "done": 0, "total": 8}
    {"ttc": "sampled", "strategy": "best_of_n", "done": 3, "total": 8}
    {"ttc": "scored", "strategy": "best_of_n", "done": 3, "total": 8, "index": 5, "score": 4.2}
    {"ttc": "step", "strategy": "beam_search", "step": 2, "total": 40, "tree": 0, ...}
    {"ttc": "round", "strategy": "refine", "round": 1, "total": 3, "best": 4.5}
    {"ttc": "selected", "strategy": "best_of_n", "index": 5, "score": 4.2}

The ``ttc`` key names the event and marks it as ours among other custom events. Every count
starts with a ``done: 0`` event as its work begins, so a progress bar can show its total before
anything arrives; a count that starts again at 0 (the next step's samples) may have another
total. Step searches add ``tree`` (DVTS grows several at once); ``step`` and ``round`` events
give the most there may be as ``total``, and the number reached once a search ends early.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from langgraph.config import get_stream_writer

_shared: ContextVar[dict[str, Counter] | None] = ContextVar("ttc_progress", default=None)


def emit(event: str, strategy: str, **fields: Any) -> None:
    """Write one progress event to the running graph's custom stream (no-op outside a graph).

    Example:
        >>> emit("sampled", "best_of_n", done=1, total=8, index=0)  # outside a graph: ignored
    """
    try:
        writer = get_stream_writer()
    except RuntimeError:  # not inside a graph run
        return
    writer({"ttc": event, "strategy": strategy, **fields})


class Counter:
    """Counts completed items of one kind and emits an event for each.

    Example:
        >>> sampled = Counter("sampled", "best_of_n", total=2)
        >>> sampled.start()
        >>> sampled.tick(index=0)
        1
    """

    def __init__(self, event: str, strategy: str, total: int, done: int = 0, **fields: Any) -> None:
        self.event, self.strategy, self.total, self.done = event, strategy, total, done
        self.fields = fields

    def start(self) -> None:
        """Announce the count before anything is done: ``done`` so far of ``total``."""
        emit(self.event, self.strategy, done=self.done, total=self.total, **self.fields)

    def tick(self, count: int = 1, **fields: Any) -> int:
        """Count ``count`` more items done (one event) and return how many are done."""
        self.done += count
        emit(self.event, self.strategy, done=self.done, total=self.total, **self.fields | fields)
        return self.done


@contextmanager
def counted_together(event: str, strategy: str, total: int, **fields: Any) -> Iterator[Counter]:
    """Count the ``event`` items of every task started in this block as one count of
    ``total``, starting at 0 (for example one step's samples, taken for several parents at
    once, which would otherwise each count 1..k of k and interleave).

    Example:
        >>> with counted_together("sampled", "beam_search", total=4, tree=0) as counter:
        ...     counter_for("sampled", "beam_search", total=2) is counter
        True
    """
    counter = Counter(event, strategy, total, **fields)
    counter.start()
    token = _shared.set({**(_shared.get() or {}), event: counter})
    try:
        yield counter
    finally:
        _shared.reset(token)


def counter_for(event: str, strategy: str, total: int, done: int = 0) -> Counter:
    """The counter of an enclosing ``counted_together`` block for ``event``; else a new count
    of ``total`` from ``done``, announced now.

    Example:
        >>> counter_for("sampled", "best_of_n", total=8).total
        8
    """
    shared = (_shared.get() or {}).get(event)
    if shared is not None:
        return shared
    counter = Counter(event, strategy, total, done=done)
    counter.start()
    return counter
