"""Streamed samples as LangGraph tasks: each trace is streamed with its logprobs and cancelled
as soon as its group confidence falls below a threshold (DeepConf's online mode), one
checkpointed task per trace, so that a resumed run does not stream it again.

A stored trace keeps its confidence signals, not its logprobs, like a sampled one
(``_tasks.sample_task``), and whether it was cancelled (``finish_reason="cancelled"``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ttc_agent.budget import BudgetExhausted, within_budget
from ttc_agent.confidence import GroupWatch, confidence_of
from ttc_agent.protocols import CancelWhen, StreamingChatModel
from ttc_agent.strategies import _replay as replay
from ttc_agent.strategies._progress import Counter
from ttc_agent.strategies._tasks import lost_as_empty, named_task
from ttc_agent.types import Completion, Message


@named_task("ttc_stream")
async def stream_task(
    model: StreamingChatModel,
    prompt: list[Message],
    options: dict[str, Any],
    watch: tuple[int, float] | None,
    signals: tuple[int, int],
) -> dict[str, Any]:
    """Stream one trace; ``watch`` = (window, threshold) cancels it when a full window's mean
    token confidence falls below the threshold; ``signals`` = (window, tail) of its record."""

    cancel_when = None if watch is None else _watching(*watch)
    completion, record = await replay.recorded(
        model.stream_sample(prompt, cancel_when=cancel_when, **options)
    )
    signal = confidence_of(completion.logprobs, *signals)
    row = completion.model_dump(mode="json", exclude={"logprobs"})
    row["confidence"] = None if signal is None else signal.model_dump(mode="json")
    return {"completion": row, "record": record}


def _watching(window: int, threshold: float) -> CancelWhen:
    """A fresh ``GroupWatch`` for each attempt of a stream."""
    return lambda: GroupWatch(window, threshold).add


async def stream_some(
    model: StreamingChatModel,
    prompt: list[Message],
    count: int,
    options: dict[str, Any],
    watch: tuple[int, float] | None,
    signals: tuple[int, int],
    progress: Counter,
) -> list[Completion]:
    """``count`` traces streamed at once (each a task), in order; those the budget or the
    endpoint lost for good are left out (the node counts the lost ones as failed).

    Raises:
        BudgetExhausted: not one trace fitted in the budget.
    """

    async def one() -> Completion:
        result = await stream_task(model, prompt, options, watch, signals)
        replay.replayed(result["record"])
        progress.tick()
        return Completion.model_validate(result["completion"])

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    results = lost_as_empty(results, [1] * count)
    try:
        arrived = within_budget(results)
    except BudgetExhausted as exc:
        arrived = [r for r in exc.partial if isinstance(r, Completion)]
        if not arrived:
            raise
    return [r for r in arrived if isinstance(r, Completion)]
