"""The writing experiment's figures: which draft each budget chooses, its win rate against
the baseline with a bootstrap interval, the length-controlled win rate, how often the two judges
agree, and the report."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttc_agent.evaluation.plots import pyplot
from ttc_agent.files import write_atomically

if TYPE_CHECKING:
    from ttc_agent.evaluation.writing import WritingPrompt


@dataclass(frozen=True)
class WinRate:
    """One strategy at one budget against the baseline."""

    strategy: str
    n: int
    prompts: int
    wins: int
    ties: int
    losses: int
    win_rate: float
    low: float  # 95 % bootstrap interval
    high: float
    length_controlled: float
    words: float  # mean length of the chosen texts
    baseline_words: float
    tokens: float  # mean tokens per prompt: drafts and the selection judge's scoring
    compared: int = 0  # prompts whose choice was not the baseline itself, so was compared

    @property
    def agreement(self) -> float | None:
        """How often the evaluation judge agrees with the selection judge: the share of the
        compared choices it prefers to the baseline (which the selection judge ranked below
        them); None when every choice was the baseline itself.

        Example:
            >>> WinRate("best_of_n", 2, 4, 3, 1, 0, 0.875, 0.7, 1.0, 0.9, 50, 40, 300, 4).agreement
            0.75
        """
        return self.wins / self.compared if self.compared else None


def choice(rows: Sequence[dict[str, Any]]) -> int:
    """The best-scored of these drafts (the earliest on ties; unscored never wins)."""
    values = [(r["score"] if r["score"] is not None else -math.inf, -i) for i, r in enumerate(rows)]
    return -max(values)[1]


def rows_of(drafts: dict, strategy: str, prompt: str) -> list[dict[str, Any]]:
    mine = [row for (s, p, _), row in drafts.items() if s == strategy and p == prompt]
    return sorted(mine, key=lambda row: row["index"])


def win_rate(
    strategy: str,
    k: int,
    prompts: Sequence[WritingPrompt],
    drafts: dict,
    comparisons: dict,
    strategies: Sequence[str],
    choices: Mapping[tuple[str, str, int], tuple[int, int]] | None = None,
) -> WinRate:
    """One strategy's win rate at budget ``k``; ``choices`` gives each prompt's chosen draft
    and what choosing it cost in tokens (a tournament's), by (strategy, prompt, k), where the
    choice is not the best-scored draft's."""
    outcomes: list[float] = []
    differences: list[float] = []
    words: list[int] = []
    base_words: list[int] = []
    tokens: list[int] = []
    compared = 0
    for prompt in prompts:
        mine = rows_of(drafts, strategy, prompt.id)[:k]
        base_strategy = "best_of_n" if "best_of_n" in strategies else strategy
        base = drafts.get((base_strategy, prompt.id, 0))
        if not mine or base is None:
            continue
        chosen, choosing = (choices or {}).get((strategy, prompt.id, k), (choice(mine), 0))
        if mine[chosen] is base:
            outcome = 0.5  # the baseline itself
        elif (row := comparisons.get((strategy, prompt.id, chosen))) is not None:
            outcome = {"win": 1.0, "tie": 0.5, "loss": 0.0}[row["outcome"]]
            compared += 1
        else:
            continue  # not compared (a judge failure): left out, a rerun asks again
        outcomes.append(outcome)
        words.append(mine[chosen]["words"])
        base_words.append(base["words"])
        differences.append(mine[chosen]["words"] - base["words"])
        tokens.append(sum(r["tokens"] + r["verification_tokens"] for r in mine) + choosing)
    count = len(outcomes)
    if not count:
        return WinRate(strategy, k, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    low, high = bootstrap_interval(outcomes)
    return WinRate(
        strategy=strategy,
        n=k,
        prompts=count,
        wins=outcomes.count(1.0),
        ties=outcomes.count(0.5),
        losses=outcomes.count(0.0),
        win_rate=sum(outcomes) / count,
        low=low,
        high=high,
        length_controlled=length_controlled(outcomes, differences),
        words=sum(words) / count,
        baseline_words=sum(base_words) / count,
        tokens=sum(tokens) / count,
        compared=compared,
    )


def bootstrap_interval(
    outcomes: Sequence[float], *, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """A 95 % percentile bootstrap interval of the mean outcome (seeded: repeatable).

    Example:
        >>> bootstrap_interval([1.0] * 10)
        (1.0, 1.0)
    """
    draws = random.Random(seed)
    size = len(outcomes)
    means = sorted(sum(draws.choices(outcomes, k=size)) / size for _ in range(resamples))
    return means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]


def length_controlled(outcomes: Sequence[float], differences: Sequence[float]) -> float:
    """The win rate at equal length: fit ``P(win) = sigmoid(a + b * tanh(d / sd(d)))`` to the
    outcomes (ties as 1/2) by Newton's method, and return ``sigmoid(a)``.

    Example:
        >>> round(length_controlled([1, 1, 0, 0], [50, 40, -40, -50]), 2)  # length explains it
        0.5
    """
    spread = _std(differences)
    xs = [math.tanh(d / spread) if spread > 0 else 0.0 for d in differences]
    a = b = 0.0
    ridge = 1e-3  # keeps the fit finite when length separates wins from losses
    for _ in range(50):
        ps = [1 / (1 + math.exp(-(a + b * x))) for x in xs]
        ga = sum(p - y for p, y in zip(ps, outcomes, strict=True)) + ridge * a
        gb = sum((p - y) * x for p, y, x in zip(ps, outcomes, xs, strict=True)) + ridge * b
        ws = [p * (1 - p) for p in ps]
        haa = sum(ws) + ridge
        hab = sum(w * x for w, x in zip(ws, xs, strict=True))
        hbb = sum(w * x * x for w, x in zip(ws, xs, strict=True)) + ridge
        det = haa * hbb - hab * hab
        if det <= 1e-12:
            break
        a -= (hbb * ga - hab * gb) / det
        b -= (haa * gb - hab * ga) / det
    return 1 / (1 + math.exp(-a))


def _std(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def write_report(
    folder: Path,
    rates: Sequence[WinRate],
    model: str,
    selection: str,
    judge: str,
    prompts: int,
    tournament: str | None = None,
) -> None:
    chosen_by = (
        f"by tournament under `{tournament}` (ties to the selection judge `{selection}`)"
        if tournament
        else f"by the selection judge `{selection}`"
    )
    lines = [
        "# Writing-quality experiment",
        "",
        f"{prompts} prompts; generator `{model}`; drafts chosen {chosen_by}; evaluation "
        f"judge `{judge}` (pairwise against the first plain sample, both orders, calibrated: "
        "no preference = tie).",
        "",
        "| strategy | n | win rate | 95 % interval | W / T / L | LC win rate | words | "
        "baseline words | tokens | judges agree |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rates:
        agree = "-" if r.agreement is None else f"{r.agreement:.0%}"
        lines.append(
            f"| {r.strategy} | {r.n} | {r.win_rate:.1%} | {r.low:.1%} to {r.high:.1%} | "
            f"{r.wins} / {r.ties} / {r.losses} | {r.length_controlled:.1%} | {r.words:.0f} | "
            f"{r.baseline_words:.0f} | {r.tokens:.0f} | {agree} |"
        )
    lines += [
        "",
        "*Judges agree*: of the choices that were not the first draft itself (each scored above "
        "it by the selection judge), the share the evaluation judge also prefers to it.",
        "",
        "![win rate against n](win_rate.png)",
        "",
    ]
    write_atomically(folder / "report.md", "\n".join(lines))
    write_atomically(
        folder / "win_rates.json", json.dumps([asdict(r) for r in rates], indent=2) + "\n"
    )
    _plot(folder / "win_rate.png", rates)


def _plot(path: Path, rates: Sequence[WinRate]) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    for strategy in dict.fromkeys(r.strategy for r in rates):
        mine = [r for r in rates if r.strategy == strategy and r.prompts]
        if not mine:
            continue
        errors = [[r.win_rate - r.low for r in mine], [r.high - r.win_rate for r in mine]]
        sizes = [r.n for r in mine]
        label = f"{strategy} win rate"
        rates_ = [r.win_rate for r in mine]
        axes.errorbar(sizes, rates_, yerr=errors, marker="o", capsize=3, label=label)
        controlled = [r.length_controlled for r in mine]
        axes.plot(sizes, controlled, ":", marker="x", label=f"{strategy} length-controlled")
    axes.axhline(0.5, color="grey", linewidth=0.8)
    axes.set_xscale("log", base=2)
    axes.set_xlabel("n (drafts per prompt)")
    axes.set_ylabel("win rate against n = 1")
    axes.set_ylim(0, 1)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
