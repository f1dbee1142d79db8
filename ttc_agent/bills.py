"""What each metered model call billed, noted for whoever is recording it.

A checkpointed task records the calls it paid for beside its result, so that a run resumed
from the checkpoint, which replays the result instead of making the calls again, can charge its
budget for them (see ``ttc_agent.strategies.replay``). Recordings nest: a call is noted in every
recording it is made within.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Bill = tuple[str, int, int]
"""One call: the model, its prompt tokens and its output tokens."""

_recordings: ContextVar[tuple[list[Bill], ...]] = ContextVar("ttc_bills", default=())


def note(model: str, prompt_tokens: int, output_tokens: int) -> None:
    """Note one call in every recording this context is within.

    Example:
        >>> with recording() as bills:
        ...     note("m", 10, 3)
        >>> bills
        [('m', 10, 3)]
    """
    for bills in _recordings.get():
        bills.append((model, prompt_tokens, output_tokens))


@contextmanager
def recording() -> Iterator[list[Bill]]:
    """Collect the bills of the calls made within this block (concurrent ones included)."""
    bills: list[Bill] = []
    token = _recordings.set((*_recordings.get(), bills))
    try:
        yield bills
    finally:
        _recordings.reset(token)
