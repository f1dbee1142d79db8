"""Progress events that strategies emit on LangGraph's custom stream.

A caller streaming the parent graph with ``stream_mode="custom"`` receives one dict per event:

    {"ttc": "sampled", "strategy": "best_of_n", "done": 3, "total": 8, "index": 2}
    {"ttc": "scored", "strategy": "best_of_n", "done": 3, "total": 8, "index": 5, "score": 4.2}
    {"ttc": "selected", "strategy": "best_of_n", "index": 5, "score": 4.2}

The ``ttc`` key names the event and marks it as ours among other custom events.
"""

from __future__ import annotations

from typing import Any

from langgraph.config import get_stream_writer


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
        >>> sampled.tick(index=0)
        1
    """

    def __init__(self, event: str, strategy: str, total: int, done: int = 0) -> None:
        self.event, self.strategy, self.total, self.done = event, strategy, total, done

    def tick(self, **fields: Any) -> int:
        self.done += 1
        emit(self.event, self.strategy, done=self.done, total=self.total, **fields)
        return self.done
