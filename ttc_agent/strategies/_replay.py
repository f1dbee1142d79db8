"""A resumed run pays only for what it does again, and keeps to what is left of its budget.

Every checkpointed task records, beside its result, what its calls billed and which run made
them. When a node runs again from a checkpoint, LangGraph hands back the stored results of the
tasks that had finished instead of running them; the node then charges its meter for the calls
those results cost, so that the budget counts them once, as in the run that was interrupted.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from ttc_agent import bills
from ttc_agent.budget import current_meter
from ttc_agent.types import Usage

T = TypeVar("T")

_run: ContextVar[str | None] = ContextVar("ttc_run", default=None)


@contextmanager
def new_run() -> Iterator[str]:
    """Mark the calls and task results made within this block (one node invocation) as its own.

    Example:
        >>> with new_run() as run:
        ...     replayed({"run": run, "bills": [["m", 5, 1]]})
        False
    """
    run = uuid.uuid4().hex
    token = _run.set(run)
    try:
        yield run
    finally:
        _run.reset(token)


async def recorded(work: Awaitable[T]) -> tuple[T, dict[str, Any]]:
    """Inside a task: ``work``'s result and the record to store with it (its run, its bills)."""
    with bills.recording() as billed:
        result = await work
    return result, {"run": _run.get(), "bills": [list(bill) for bill in billed]}


def replayed(record: Mapping[str, Any]) -> bool:
    """In the node, once a task has returned: whether its result was stored by another run. If
    so, the meter (and any recording around it) is charged for the calls the result cost."""
    if record.get("run") == _run.get():
        return False  # made in this run: already charged as the calls were made
    meter = current_meter()
    for model, prompt_tokens, output_tokens in record.get("bills", []):
        billed = Usage(prompt_tokens=prompt_tokens, completion_tokens=output_tokens, calls=1)
        if meter is None:
            bills.note(model, billed)
        else:
            meter.charge(model, billed)  # a call with nothing reserved: it was made before
    return True
