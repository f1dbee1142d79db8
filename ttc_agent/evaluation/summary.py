"""What an evaluation run measured: its settings, its accuracy points and its verifier's
diagnostics, as the table ``ttc eval`` prints and the ``summary.json`` it writes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ttc_agent.evaluation.diagnostics import VerifierDiagnostics
from ttc_agent.evaluation.metrics import Point


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
        lines = [f"{'n':>4} " + "".join(f"{m:>10} " for m in methods) + " tokens"]
        for n in sizes:
            cells = "".join(
                f"{by[(m, n)].accuracy:>10.1%} " if (m, n) in by else f"{'':>10} " for m in methods
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
