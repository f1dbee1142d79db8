"""How ``ttc run`` shows a search: progress bars while it runs, then the chosen answer and a
table of the candidates that fits the terminal, and the record ``--json`` prints.

The table fits any width from about 30 columns, in a terminal or a pipe: the numbers (index,
score, tokens) always show in full; the text previews shrink first and are dropped when too
narrow to read, then long answers and criterion names are cut, then the criteria columns go.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from ttc_agent.types import SearchResult

LABELS = {
    "step": "steps",
    "round": "revising",
    "sampled": "sampling",
    "scored": "judging",
    "compared": "comparing",
}
DEEPEST = ("step", "round")  # across trees, the furthest one; for counts, the sum
MIN_PREVIEW = 8  # a preview narrower than this is dropped


class ProgressBars:
    """Progress bars fed with the strategies' progress events (``ttc_agent.strategies._progress``).

    Each event kind is one bar, shown from its first event with its total. Counts of several
    step-search trees add up; steps show the deepest tree.

    Example:
        >>> bars = ProgressBars(None)  # no console: only counts
        >>> bars.update({"ttc": "sampled", "done": 0, "total": 8})
        >>> bars.shown()
        {'sampling': (0, 8)}
    """

    def __init__(self, console: Console | None) -> None:
        self._progress = None
        if console is not None:
            columns = (TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn())
            self._progress = Progress(
                *columns, TimeElapsedColumn(), console=console, transient=True
            )
        self._parts: dict[str, dict[Any, tuple[int, int | None]]] = {}
        self._bars: dict[str, TaskID] = {}

    def __enter__(self) -> ProgressBars:
        if self._progress is not None:
            self._progress.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.__exit__(kind, error, trace)

    def update(self, event: Mapping[str, Any]) -> None:
        """Take one event; events that are not counts (``selected``, ``effort``) are ignored."""
        kind = event.get("ttc")
        if kind not in LABELS:
            return
        done = event.get("done", event.get("step", event.get("round", 0)))
        self._parts.setdefault(kind, {})[event.get("tree")] = (int(done or 0), event.get("total"))
        if self._progress is None:
            return
        completed, total = self._combined(kind)
        if kind not in self._bars:
            self._bars[kind] = self._progress.add_task(
                LABELS[kind], total=total, completed=completed
            )
        else:
            self._progress.update(self._bars[kind], total=total, completed=completed)

    def shown(self) -> dict[str, tuple[int, int | None]]:
        """What each bar shows: label -> (done, total)."""
        return {LABELS[kind]: self._combined(kind) for kind in self._parts}

    def _combined(self, kind: str) -> tuple[int, int | None]:
        parts = self._parts[kind].values()
        combine = max if kind in DEEPEST else sum
        totals = [total for _, total in parts]
        return combine(done for done, _ in parts), (
            None if None in totals else combine(t for t in totals if t is not None)
        )


def run_record(result: SearchResult) -> dict[str, Any]:
    """The search record with the chosen ``answer`` first and the ``total`` usage added.

    Example:
        >>> from ttc_agent.types import SearchUsage
        >>> record = run_record(SearchResult(strategy="none", settings={}, candidates=[],
        ...                                  chosen=None, usage=SearchUsage()))
        >>> record["answer"], record["usage"]["total"]["total_tokens"]
        ('', 0)
    """
    record = result.model_dump(mode="json")
    total = result.usage.total
    record["usage"]["total"] = total.model_dump(mode="json") | {"total_tokens": total.total_tokens}
    return {"answer": result.answer, **record}


def show_result(result: SearchResult, console: Console) -> None:
    """Print the chosen answer, the candidates' table and the tokens spent."""
    best = result.best
    console.print(best.text if best else "", markup=False, highlight=False, soft_wrap=True)
    console.print(f"{result.strategy}: {len(result.candidates)} candidates", highlight=False)
    console.print(candidates_table(result, console.width))
    usage = result.usage
    limited = "; the budget ran out" if result.budget_limited else ""
    console.print(
        f"tokens: generation {usage.generation.total_tokens} ({usage.generation.calls} calls), "
        f"judging {usage.verification.total_tokens} ({usage.verification.calls} calls){limited}",
        highlight=False,
        soft_wrap=True,
    )


@dataclass
class _Column:
    header: str
    cells: list[str]
    right: bool = True
    narrowest: int | None = None  # how narrow it may get (None: never narrower than its text)
    shrinks: int = 0  # the order in which columns give up width: lower first

    @property
    def natural(self) -> int:
        return max(len(self.header), *(len(cell) for cell in self.cells))

    @property
    def floor(self) -> int:
        return self.natural if self.narrowest is None else min(self.natural, self.narrowest)


def candidates_table(result: SearchResult, width: int) -> Table:
    """The candidates as a table at most ``width`` characters wide, where it can be."""
    best = result.best
    criteria = list(best.score.criteria) if best and best.score else []
    candidates = result.candidates
    scores = [c.score for c in candidates]
    marks = ["*" if c.index == result.chosen else "" for c in candidates]
    number = _Column("#", [f"{mark}{c.index}" for mark, c in zip(marks, candidates, strict=True)])
    score = _Column("score", [f"{s.value:.2f}" if s else "-" for s in scores])
    judged = [
        _Column(name, [f"{s.criteria.get(name, 0):.2f}" if s else "-" for s in scores])
        for name in criteria
    ]
    for column in judged:  # the criterion's name may be cut down to its numbers' width
        column.narrowest, column.shrinks = max(len(cell) for cell in column.cells), 2
    answer = []
    if any(c.key is not None for c in candidates):
        keys = ["-" if c.key is None else str(c.key) for c in candidates]
        answer = [_Column("answer", keys, narrowest=10, shrinks=1)]
    tokens = _Column("tokens", [str(c.usage.completion_tokens) for c in candidates])
    previews = [" ".join(c.text.split()) for c in candidates]
    text = _Column("text", previews, right=False, narrowest=MIN_PREVIEW)
    # the previews shrink first; then they go, then the criteria shrink, then they go
    layouts = [
        [number, score, *judged, *answer, tokens, text],
        [number, score, *judged, *answer, tokens],
        [number, score, *answer, tokens],
    ]
    for columns in layouts:
        widths = _fit(columns, width)
        if widths is not None:
            break
    else:
        columns, widths = layouts[-1], [c.floor for c in layouts[-1]]
    table = _table()
    for column, column_width in zip(columns, widths, strict=True):
        table.add_column(
            Text(column.header, overflow="ellipsis", no_wrap=True),
            justify="right" if column.right else "left",
            width=column_width,
            no_wrap=True,
            overflow="ellipsis",
        )
    for row in zip(*(column.cells for column in columns), strict=True):
        table.add_row(*(Text(cell) for cell in row))
    return table


def _fit(columns: Sequence[_Column], width: int) -> list[int] | None:
    """Column widths within ``width``, narrowing the previews, answers and criterion names
    (in that order of the columns' kinds) only as much as needed; None if they cannot fit."""
    widths = [column.natural for column in columns]
    excess = sum(widths) + _overhead(len(columns)) - width
    for rank in sorted({column.shrinks for column in columns}):
        while excess > 0:
            narrowable = [
                i for i, c in enumerate(columns) if c.shrinks == rank and widths[i] > c.floor
            ]
            if not narrowable:
                break
            widest = max(narrowable, key=lambda i: widths[i])  # the widest gives first
            widths[widest] -= 1
            excess -= 1
    return widths if excess <= 0 else None


def _table() -> Table:
    return Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)


def _overhead(count: int) -> int:
    """The characters a table of ``count`` columns adds to its columns' widths."""
    probe = _table()
    for _ in range(count):
        probe.add_column(width=1)
    probe.add_row(*["x"] * count)
    console = Console(width=10_000, file=io.StringIO())
    return Measurement.get(console, console.options, probe).maximum - count
