"""Fit ``adaptive``'s policy to an evaluation, as Snell et al. (2024, sections 3.2 and 5.3) do.

1. Each question's predicted difficulty is the mean normalised verifier score of its first
   ``probe`` candidates (what ``adaptive``'s probe sees); the tertiles of those means over the
   questions are the policy's ``score_bins`` (hard below the first, easy from the second).
2. Each choice is a selection read off prefixes, at each n from the probe up (``majority_vote``,
   ``weighted_best_of_n``, ``best_of_n``), or a step search's row at a budget. Its cost is the
   calls it needs once the probe is paid: 2 (n - probe) for a choice that reuses the probe (one
   sample and one verdict per extra candidate), and the calls the search took for a step search.
3. Per bin and budget level (each choice's cost), the row is the most accurate choice on the
   bin's questions among those the level affords; ties go to the cheaper choice, then to
   majority voting, weighted, naive best-of-N and the searches, in that order. A level that
   changes nothing adds no row. An empty bin is fitted on every question.

The policy records the verifier's name and AUROC interval (``VerifierRecord``), so that
``adaptive`` and ``think_harder`` can tell when it is no better than chance.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ttc_agent.errors import ConfigurationError
from ttc_agent.evaluation.diagnostics import VerifierDiagnostics
from ttc_agent.evaluation.metrics import RULES, Sample, budgets
from ttc_agent.strategies import Choice, Policy, VerifierRecord

REUSED = {"majority": "majority_vote", "weighted": "weighted_best_of_n", "naive": "best_of_n"}
"""The prefix selections a policy can choose, by the strategy name ``adaptive`` knows, in the
order that breaks ties."""
DIFFICULTIES = ("easy", "medium", "hard")


@dataclass(frozen=True)
class Option:
    """One choice the fit weighs: its strategy and n, its cost in calls, and whether it was
    right on each question."""

    strategy: str
    n: int
    calls: int
    right: Mapping[str, bool]
    rank: int  # breaks ties: lower first

    def accuracy(self, questions: Sequence[str]) -> float:
        return sum(self.right[q] for q in questions) / len(questions)


def fit_policy(
    samples: Mapping[str, Sequence[Sample]],
    *,
    probe: int = 4,
    search_rows: Iterable[Mapping[str, Any]] = (),
    verifier: VerifierDiagnostics | None = None,
    keep: int = 4,
) -> Policy:
    """A policy fitted to an evaluation's candidates (see the module's docstring).

    Args:
        samples: each question's scored candidates, in sampling order.
        probe: the probe's size (``adaptive``'s ``probe``).
        search_rows: step searches' rows (``problem``, ``strategy``, ``n``, ``correct``,
            ``calls``), as ``ttc eval --search`` writes them.
        verifier: the evaluation's verifier diagnostics, recorded in the policy.
        keep: the beams a step-search row keeps.

    Raises:
        ConfigurationError: no scored candidates, or a probe larger than the candidates.
    """
    questions = {q: s for q, s in samples.items() if any(x.score is not None for x in s)}
    if not questions:
        raise ConfigurationError("no scored candidates to fit a policy to: give a verifier")
    fewest = min(len(s) for s in questions.values())
    if probe > fewest:
        raise ConfigurationError(
            f"a probe of {probe} is more than the {fewest} candidates some questions have"
        )
    predicted = {q: _mean_score(s[:probe]) for q, s in questions.items()}
    means = sorted(predicted.values())
    low, high = means[0], means[0]
    if len(means) > 1:
        low, high = statistics.quantiles(means, n=3, method="inclusive")
    bins = Policy(score_bins=(low, high), table=[])
    options = _prefix_options(questions, probe) + _search_options(search_rows, set(questions))
    table = []
    for difficulty in DIFFICULTIES:
        mine = [q for q in questions if bins.difficulty(0, 0, predicted[q]) == difficulty]
        table += _rows(difficulty, mine or list(questions), options, keep)
    record = None
    if verifier is not None:
        record = VerifierRecord(
            name=verifier.name, auroc=verifier.auroc, auroc_interval=verifier.auroc_interval
        )
    return Policy(score_bins=(low, high), table=table, verifier=record)


def describe(policy: Policy) -> str:
    """The fitted table in words, one line per difficulty.

    Example:
        >>> print(describe(Policy(score_bins=(0.3, 0.6), table=[
        ...     Choice(difficulty="hard", strategy="majority_vote", n=4)])))
        hard (mean probe score below 0.30): majority_vote n=4
    """
    lines = []
    low, high = policy.score_bins or (0.0, 1.0)
    where = {
        "easy": f"at least {high:.2f}",
        "medium": f"{low:.2f} to {high:.2f}",
        "hard": f"below {low:.2f}",
    }
    for difficulty in DIFFICULTIES:
        rows = sorted(
            (r for r in policy.table if r.difficulty == difficulty), key=lambda r: r.min_calls
        )
        if rows:
            choices = "; ".join(
                (f"from {r.min_calls} calls: " if r.min_calls else "") + f"{r.strategy} n={r.n}"
                for r in rows
            )
            lines.append(f"{difficulty} (mean probe score {where[difficulty]}): {choices}")
    return "\n".join(lines)


def _mean_score(samples: Sequence[Sample]) -> float:
    scores = [s.score for s in samples if s.score is not None]
    return sum(scores) / len(scores) if scores else 0.0


def _prefix_options(questions: Mapping[str, Sequence[Sample]], probe: int) -> list[Option]:
    largest = min(len(s) for s in questions.values())
    options = []
    for k in (k for k in budgets(largest) if k >= probe):
        for rank, (method, strategy) in enumerate(REUSED.items()):
            right = {q: RULES[method](s[:k]) for q, s in questions.items()}
            options.append(Option(strategy, k, 2 * (k - probe), right, rank))
    return options


def _search_options(rows: Iterable[Mapping[str, Any]], questions: set[str]) -> list[Option]:
    """A step search at a budget, where every question has its row: its cost is the mean calls
    its rows took."""
    grouped: dict[tuple[str, int], dict[str, Mapping[str, Any]]] = {}
    for row in rows:
        if row["problem"] in questions and "calls" in row:
            grouped.setdefault((row["strategy"], row["n"]), {})[row["problem"]] = row
    options = []
    for (strategy, n), by in sorted(grouped.items()):
        if set(by) == questions:
            calls = round(sum(r["calls"] for r in by.values()) / len(by))
            right = {q: bool(r["correct"]) for q, r in by.items()}
            options.append(Option(strategy, n, calls, right, len(REUSED)))
    return options


def _rows(
    difficulty: str, questions: Sequence[str], options: Sequence[Option], keep: int
) -> list[Choice]:
    rows: list[Choice] = []
    best: Option | None = None
    for level in sorted({o.calls for o in options}):
        affordable = [o for o in options if o.calls <= level]
        pick = max(affordable, key=lambda o: (o.accuracy(questions), -o.calls, -o.rank))
        if best is not None and pick == best:
            continue
        best = pick
        rows.append(
            Choice.model_validate(
                {"difficulty": difficulty, "min_calls": level, "strategy": pick.strategy}
                | {"n": pick.n, "keep": min(keep, pick.n)}
            )
        )
    return rows
