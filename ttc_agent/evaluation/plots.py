"""Plots of a sweep (accuracy against n on a log2 axis, and against tokens) and of a verifier's
scores of right and wrong candidates (needs matplotlib)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ttc_agent.errors import ConfigurationError
from ttc_agent.evaluation.diagnostics import VerifierDiagnostics
from ttc_agent.evaluation.metrics import Point, Sample

LABELS = {
    "naive": "best-of-N",
    "weighted": "weighted best-of-N",
    "majority": "majority vote",
    "pass": "pass@n (perfect verifier)",
}


def require_matplotlib() -> None:
    """Raise a ``ConfigurationError`` saying how to install matplotlib, unless it is installed
    (checked before a run, so that a long run does not fail at its plot).

    Example:
        >>> require_matplotlib()  # installed here: nothing happens
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigurationError("the plots need matplotlib: pip install matplotlib") from None


def pyplot() -> Any:
    """matplotlib's ``pyplot`` drawing to files only (the Agg backend)."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_sweep(
    points: Sequence[Point],
    path: str | Path,
    *,
    title: str = "",
    baselines: dict[str, float] | None = None,
) -> Path:
    """Save a PNG: accuracy against n per method (log2 axis), and against tokens per problem.

    ``baselines`` draws horizontal lines, e.g. ``{"1.5B greedy": 0.33}``.

    Example:
        >>> # plot_sweep(summary.points, "runs/gsm8k/accuracy.png", title="GSM8K")
    """
    plt = pyplot()
    from matplotlib.ticker import NullFormatter

    figure, (by_n, by_tokens) = plt.subplots(1, 2, figsize=(11, 4.2))
    for method in dict.fromkeys(p.method for p in points):
        mine = sorted((p for p in points if p.method == method), key=lambda p: p.n)
        style = "--" if method == "pass" else "-"
        label = LABELS.get(method, method)
        by_n.plot([p.n for p in mine], [p.accuracy for p in mine], style, marker="o", label=label)
        by_tokens.plot(
            [p.tokens for p in mine], [p.accuracy for p in mine], style, marker="o", label=label
        )
    for name, accuracy in (baselines or {}).items():
        for axes in (by_n, by_tokens):
            axes.axhline(accuracy, color="grey", linestyle=":", label=name)
    by_n.set_xscale("log", base=2)
    by_n.set_xlabel("n (candidates per problem)")
    by_tokens.set_xscale("log")
    by_tokens.xaxis.set_minor_formatter(NullFormatter())  # minor labels crowd each other
    by_tokens.set_xlabel("tokens per problem")
    for axes in (by_n, by_tokens):
        axes.set_ylabel("accuracy")
        axes.set_ylim(0, 1)
        axes.grid(alpha=0.3)
    by_n.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_scores(
    problems: Mapping[str, Sequence[Sample]],
    path: str | Path,
    diagnostics: VerifierDiagnostics,
    *,
    title: str = "",
) -> Path:
    """Save a PNG: the distributions of the verifier's normalised scores of right and of wrong
    candidates (a verifier with signal pulls them apart), with the AUROC in the title.

    Example:
        >>> # plot_scores(samples, "runs/gsm8k/scores.png", summary.verifier)
    """
    plt = pyplot()
    scored = [s for samples in problems.values() for s in samples if s.score is not None]
    figure, axes = plt.subplots(figsize=(6, 4))
    edges = [i / 20 for i in range(21)]
    for correct, label, colour in ((True, "right", "tab:green"), (False, "wrong", "tab:red")):
        values = [s.score for s in scored if s.correct == correct]
        if values:
            axes.hist(values, bins=edges, alpha=0.5, color=colour, label=f"{label} ({len(values)})")
    axes.set_xlim(0, 1)
    axes.set_xlabel(f"{diagnostics.name} score (normalised)")
    axes.set_ylabel("candidates")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    area = "undefined" if diagnostics.auroc is None else f"{diagnostics.auroc:.2f}"
    axes.set_title(f"{title}\nAUROC {area}" if title else f"AUROC {area}", fontsize=9)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
