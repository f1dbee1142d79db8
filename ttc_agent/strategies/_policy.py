"""The policy ``adaptive`` decides by: how hard a question is, and for each difficulty and budget
the strategy and n to spend it on; plain data you can change, fit (``ttc eval --fit-policy``),
save and load.

Difficulty comes from a probe of a few answers: by default from how much they agree (the share
of the largest answer group) and how much the verifier's scores spread; a fitted policy bins
questions by the probe's mean verifier score instead (Snell et al.'s predicted difficulty), at
cut points taken from the quantiles of an evaluation. The default table follows Snell et al.
2024 (section 5.3): beam search at low budgets and on medium and hard questions, best-of-N at
high budgets and on easy ones (see docs/decisions.md).

A policy may record what an evaluation measured of its verifier (``VerifierRecord``): when the
AUROC interval contains 0.5, the verifier is no better than chance, and ``adaptive`` and
``think_harder`` fall back to self-consistency where answers can be compared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ttc_agent.errors import ConfigurationError
from ttc_agent.files import write_atomically

Difficulty = Literal["easy", "medium", "hard"]


class Choice(BaseModel):
    """One row of a policy: for this difficulty, with at least ``min_calls`` calls left."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    difficulty: Difficulty
    min_calls: int = Field(default=0, ge=0)
    strategy: str
    """``majority_vote``, ``best_of_n`` or ``weighted_best_of_n`` (they reuse the probe), or a
    registered strategy that does not choose others (``beam_search``)."""
    n: int = Field(ge=1)
    keep: int = Field(default=4, ge=1)


class VerifierRecord(BaseModel):
    """What an evaluation measured of a verifier: its name and AUROC with a 95 % interval.

    Example:
        >>> VerifierRecord(name="math_solution", auroc=0.49, auroc_interval=(0.4, 0.58)).at_chance
        True
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    auroc: float | None = None
    auroc_interval: tuple[float, float] | None = None

    @property
    def at_chance(self) -> bool:
        """Whether the AUROC interval contains 0.5: no evidence the verifier beats a coin."""
        return self.auroc_interval is not None and (
            self.auroc_interval[0] <= 0.5 <= self.auroc_interval[1]
        )

    def why(self) -> str:
        """Why the verifier is not trusted, in words."""
        low, high = self.auroc_interval or (float("nan"), float("nan"))
        return f"verifier {self.name}'s AUROC interval {low:.2f} to {high:.2f} contains 0.5"


def snell_table() -> list[Choice]:
    """The default table, after Snell et al. 2024: beam search wins at low budgets and on medium
    and hard questions, best-of-N (weighted) at high budgets and on easy ones.

    Example:
        >>> [row.strategy for row in snell_table() if row.difficulty == "easy"]
        ['weighted_best_of_n', 'weighted_best_of_n']
    """
    return [
        Choice(difficulty="easy", strategy="weighted_best_of_n", n=8),
        Choice(difficulty="easy", min_calls=48, strategy="weighted_best_of_n", n=16),
        Choice(difficulty="medium", strategy="beam_search", n=4, keep=2),
        Choice(difficulty="medium", min_calls=64, strategy="beam_search", n=8, keep=4),
        Choice(difficulty="medium", min_calls=128, strategy="weighted_best_of_n", n=32),
        Choice(difficulty="hard", strategy="beam_search", n=4, keep=2),
        Choice(difficulty="hard", min_calls=64, strategy="beam_search", n=8, keep=4),
        Choice(difficulty="hard", min_calls=128, strategy="beam_search", n=16, keep=4),
    ]


class Policy(BaseModel):
    """How difficulty is read from a probe, and the strategy table. The row with the largest
    ``min_calls`` that the budget affords wins (no call limit affords every row).

    Example:
        >>> Policy().choose("easy", calls_left=None).strategy
        'weighted_best_of_n'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    easy_agreement: float = Field(default=0.75, gt=0, le=1)
    hard_agreement: float = Field(default=0.4, gt=0, le=1)
    hard_spread: float = Field(default=0.25, ge=0)
    hard_confidence: float | None = Field(default=None, ge=0)
    """Hard at or below this mean lowest group confidence of the probe answers (None: not
    read). Its scale is the model's: set it from your model's confidences on questions it
    gets wrong (``Candidate.confidence``)."""
    score_bins: tuple[float, float] | None = None
    """Fitted: the probe's mean normalised score below which a question is hard, and at or
    above which it is easy (None: difficulty from agreement and spread)."""
    table: list[Choice] = Field(default_factory=snell_table)
    verifier: VerifierRecord | None = None
    """What the fitting evaluation measured of its verifier (None: nothing measured)."""

    @model_validator(mode="after")
    def _ordered_bins(self) -> Policy:
        if self.score_bins is not None and self.score_bins[0] > self.score_bins[1]:
            raise ValueError(f"score_bins must be ascending, got {list(self.score_bins)}")
        return self

    def difficulty(
        self,
        agreement: float,
        spread: float,
        mean_score: float | None = None,
        confidence: float | None = None,
    ) -> Difficulty:
        """Hard when the model was unsure (``hard_confidence``); else by the fitted bins of the
        mean score when there are some; else easy when answers agree, hard when they scatter or
        the scores spread widely."""
        least = self.hard_confidence
        if least is not None and confidence is not None and confidence <= least:
            return "hard"
        if self.score_bins is not None and mean_score is not None:
            low, high = self.score_bins
            return "easy" if mean_score >= high else "hard" if mean_score < low else "medium"
        if agreement >= self.easy_agreement:
            return "easy"
        if agreement <= self.hard_agreement or spread >= self.hard_spread:
            return "hard"
        return "medium"

    def choose(self, difficulty: Difficulty, calls_left: int | None) -> Choice:
        rows = [row for row in self.table if row.difficulty == difficulty]
        affordable = [row for row in rows if calls_left is None or row.min_calls <= calls_left]
        if not affordable:
            affordable = sorted(rows, key=lambda row: row.min_calls)[:1]
        if not affordable:
            raise ValueError(f"the policy has no row for {difficulty!r} questions")
        return max(affordable, key=lambda row: row.min_calls)

    def save(self, path: str | Path) -> Path:
        """Write the policy as JSON (whole or not at all)."""
        return write_atomically(path, self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """A policy from a JSON file (``ttc eval --fit-policy`` writes ``policy.json``).

        Raises:
            ConfigurationError: no such file, or it is not a valid policy (the message names
                the file and the field).
        """
        path = Path(path)
        if not path.is_file():
            raise ConfigurationError(f"no policy file at {path}")
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{path} is not a policy (not JSON: {exc})") from None
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigurationError(f"{path} is not a policy: {problems}") from None
