"""A step judge's memory: each judgement of a solution prefix remembered (the latest ``size``),
and shared while it is being asked within an event loop, so that a step is judged once however
many solutions, calls and concurrent searches share it."""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from ttc_agent.budget import within_budget
from ttc_agent.types import Usage

Judge = Callable[[Sequence[str]], Awaitable[tuple[float, Usage]]]
"""Judges the last of some steps: its score and what asking cost."""


class StepJudgements:
    """Judgements of the prefixes of solutions to one conversation or another.

    Example:
        >>> async def judge(steps):
        ...     return (1.0 if steps[-1] == "4" else 0.0), Usage(calls=1)
        >>> memory = StepJudgements(size=8)
        >>> [(scores, usage)] = asyncio.run(memory.scores("Q", [["2+2", "4"]], judge))
        >>> scores, usage.calls
        ([0.0, 1.0], 2)
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._known: OrderedDict[str, float] = OrderedDict()
        self._asked: dict[tuple[int, str], asyncio.Future[tuple[float, Usage]]] = {}  # by loop

    @staticmethod
    def key(conversation: str, steps: Sequence[str]) -> str:
        """What a judgement of the last of ``steps`` is remembered by."""
        return json.dumps([conversation, list(steps)])

    async def scores(
        self, conversation: str, solutions: Sequence[Sequence[str]], judge: Judge
    ) -> list[tuple[list[float], Usage]]:
        """Every step's score of each solution, and what this call paid for it (a step known,
        or asked by another call, costs it nothing); a budget stop keeps what arrived."""
        loop = id(asyncio.get_running_loop())  # a judgement is shared within its event loop
        needed: dict[str, asyncio.Future[tuple[float, Usage]]] = {}
        mine = []  # the judgements this call asks for, and so pays for
        for steps in solutions:
            for k in range(len(steps)):
                key = self.key(conversation, steps[: k + 1])
                if key in self._known or key in needed:
                    continue
                if (loop, key) not in self._asked:
                    self._asked[loop, key] = asyncio.ensure_future(judge(steps[: k + 1]))
                    mine.append(key)
                needed[key] = self._asked[loop, key]
        try:
            judged = await asyncio.gather(*needed.values(), return_exceptions=True)
        finally:
            for key in mine:
                self._asked.pop((loop, key), None)
        paid = {}
        for key, outcome in zip(needed, judged, strict=True):
            if not isinstance(outcome, BaseException):  # kept even if another one failed
                self.remember(key, outcome[0])
                if key in mine:
                    paid[key] = outcome[1]
        within_budget(judged)
        results = []
        for steps in solutions:
            keys = [self.key(conversation, steps[: k + 1]) for k in range(len(steps))]
            usage = Usage.sum([paid.pop(key) for key in keys if key in paid])
            results.append(([self._known[key] for key in keys], usage))
        return results

    def remember(self, key: str, value: float) -> None:
        """Take a judgement as known (the oldest forgotten beyond ``size``)."""
        self._known[key] = value
        self._known.move_to_end(key)
        while len(self._known) > self.size:
            self._known.popitem(last=False)
