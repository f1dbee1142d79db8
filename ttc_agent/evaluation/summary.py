"""What an evaluation run measured: its settings, its accuracy points and its verifier's
diagnostics, as the table ``ttc eval`` prints and the ``summary.json`` it writes
(``summarise`` reads them off a run's rows)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ttc_agent.evaluation.diagnostics import VerifierDiagnostics, diagnose
from ttc_agent.evaluation.metrics import METHODS, SCORED, Point, sweep
from ttc_agent.evaluation.rows import samples_in, search_points
from ttc_agent.files import write_atomically


@dataclass(frozen=True)
class Summary:
    """What an evaluation run measured."""

    settings: dict[str, Any]
    problems: int
    points: list[Point]
    failed: dict[str, str] = field(default_factory=dict)  # problem id -> error, to rerun
    verifier: VerifierDiagnostics | None = None  # None: the run had no verifier

    def accuracy(self, method: str, n: int) -> float:
        """One method's accuracy at one budget.

        Example:
            >>> Summary({}, 1, [Point("pass", 2, 0.5, 10.0)]).accuracy("pass", 2)
            0.5
        """
        for point in self.points:
            if point.method == method and point.n == n:
                return point.accuracy
        raise KeyError(f"no {method} at n={n}")

    def table(self) -> str:
        """The metrics as a plain-text table: one row per budget, one column per method.

        Example:
            >>> print(Summary({}, 1, [Point("pass", 1, 0.5, 10.0)]).table())
               n       pass  tokens
               1      50.0%      10
        """
        methods = list(dict.fromkeys(p.method for p in self.points))
        sizes = sorted({p.n for p in self.points})
        by = {(p.method, p.n): p for p in self.points}
        width = {m: max(10, len(m)) for m in methods}
        lines = [f"{'n':>4} " + "".join(f"{m:>{width[m]}} " for m in methods) + " tokens"]
        for n in sizes:
            cells = "".join(
                f"{by[(m, n)].accuracy:>{width[m]}.1%} " if (m, n) in by else " " * (width[m] + 1)
                for m in methods
            )
            tokens = max(by[(m, n)].tokens for m in methods if (m, n) in by)
            lines.append(f"{n:>4} {cells}{tokens:>7.0f}")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        """``summary.json``: the settings, the points, and the verifier (null without one).

        Example:
            >>> Summary({}, 0, []).as_json()["verifier"] is None
            True
        """
        return {
            "settings": self.settings,
            "problems": self.problems,
            "failed": self.failed,
            "verifier": self.verifier.as_json() if self.verifier is not None else None,
            "points": [asdict(point) for point in self.points],
        }

    def title(self) -> str:
        """The plots' title: the model, the verifier and the number of problems."""
        verifier = f", verifier {self.settings['verifier']}" if self.settings["verifier"] else ""
        return f"{self.settings['model']}{verifier}, {self.problems} problems"


def summarise(
    folder: Path,
    settings: dict[str, Any],
    wanted: set[str],
    *,
    searches: Sequence[str] = (),
    failed: dict[str, str] | None = None,
    plot: bool = True,
) -> Summary:
    """The summary of the run in ``folder`` over the problems ``wanted``: every method at every
    power of two up to ``settings["n"]`` (the scored ones when ``settings["verifier"]`` names
    a verifier, with its diagnostics), the searches' points; written to ``summary.json``, with
    ``accuracy.png`` and ``scores.png`` when ``plot``."""
    rows_path = folder / "candidates.jsonl"
    samples = {pid: s for pid, s in samples_in(rows_path).items() if pid in wanted}
    verifier = settings.get("verifier")
    methods = METHODS if verifier else tuple(m for m in METHODS if m not in SCORED)
    points = sweep(samples, settings["n"], methods)
    points += search_points(rows_path, wanted, list(searches))
    diagnostics = diagnose(verifier, samples, points) if verifier else None
    summary = Summary(settings, len(samples), points, dict(failed or {}), diagnostics)
    write_atomically(folder / "summary.json", json.dumps(summary.as_json(), indent=2) + "\n")
    if plot and summary.points:
        from ttc_agent.evaluation.plots import plot_scores, plot_sweep

        plot_sweep(summary.points, folder / "accuracy.png", title=summary.title())
        if diagnostics is not None:
            plot_scores(samples, folder / "scores.png", diagnostics, title=summary.title())
    return summary
