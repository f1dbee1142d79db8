"""Judge cards: TOML files that define one rubric judge (criteria, scale, prompt, scoring mode).

A card, abridged::

    name = "helpfulness"
    description = "Does the answer help the user?"
    mode = "auto"                     # auto | logprobs | structured

    [scale]
    min = 1
    max = 5

    [[criteria]]
    name = "accuracy"
    weight = 2.0
    description = "Statements are correct."
    anchors = { 1 = "Mostly wrong.", 2 = "...", 3 = "...", 4 = "...", 5 = "All correct." }

    [prompt]
    system = "You are a strict grader..."
    user = "Grade the answer below.\n$conversation\n$candidate\n$rubric\n$output_format"

A 0..1 card may ask its judge to work before the verdict (read then after the reasoning)::

    [reasoning]
    instruction = "First solve the problem yourself, then compare final answers."
    max_tokens = 400

Cards load by name from ``judges/`` (a checkout) or from the installed package, or by path.
"""

from __future__ import annotations

import string
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ttc_agent.errors import JudgeCardError

PLACEHOLDERS = frozenset({"conversation", "candidate", "rubric", "output_format"})


class Scale(BaseModel):
    """The integer score points, ``min`` to ``max`` inclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int = 1
    max: int = 5

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        if self.max <= self.min:
            raise ValueError(f"scale max ({self.max}) must be above min ({self.min})")
        return self

    @property
    def points(self) -> list[int]:
        return list(range(self.min, self.max + 1))


class Criterion(BaseModel):
    """One named criterion with a positive weight and an anchor text for every score point."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    weight: float = 1.0
    description: str
    anchors: dict[int, str]

    @field_validator("weight")
    @classmethod
    def _positive(cls, weight: float) -> float:
        if not weight > 0:
            raise ValueError(f"weight must be positive, got {weight}")
        return weight


class Prompt(BaseModel):
    """The judge's system prompt and user template (``$placeholders``, see PLACEHOLDERS)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str
    user: str

    @field_validator("user")
    @classmethod
    def _placeholders(cls, user: str) -> str:
        used = {
            match.group("named") or match.group("braced")
            for match in string.Template.pattern.finditer(user)
            if match.group("named") or match.group("braced")
        }
        if unknown := used - PLACEHOLDERS:
            raise ValueError(
                f"unknown placeholders {sorted(unknown)}; known: {sorted(PLACEHOLDERS)}"
            )
        if "candidate" not in used:
            raise ValueError("the user template must contain $candidate")
        return user


class Reasoning(BaseModel):
    """What a judge writes before its verdict: an ``instruction`` (the verdict's cue and digit
    follow it) and the longest reasoning, in tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instruction: str = Field(min_length=1)
    max_tokens: int = Field(default=256, ge=1)


class JudgeCard(BaseModel):
    """A validated judge card.

    Example:
        >>> card = load_card("writing_quality")
        >>> card.scale.points
        [1, 2, 3, 4, 5]
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    mode: Literal["auto", "logprobs", "structured"] = "auto"
    scale: Scale = Scale()
    criteria: list[Criterion]
    prompt: Prompt
    reasoning: Reasoning | None = None
    """A step judge reasons before its verdict when the card says how (None: the digit alone)."""

    @model_validator(mode="after")
    def _consistent(self) -> JudgeCard:
        if not self.criteria:
            raise ValueError("a judge card needs at least one criterion")
        names = [criterion.name for criterion in self.criteria]
        if len(set(names)) != len(names):
            raise ValueError(f"criterion names must be unique, got {names}")
        for criterion in self.criteria:
            if sorted(criterion.anchors) != self.scale.points:
                raise ValueError(
                    f"criterion {criterion.name!r} must anchor every scale point "
                    f"{self.scale.points}, got {sorted(criterion.anchors)}"
                )
        return self

    def weighted_total(self, scores: dict[str, float]) -> float:
        """The weight-averaged score over all criteria, on the card's scale."""
        weights = sum(criterion.weight for criterion in self.criteria)
        return (
            sum(criterion.weight * scores[criterion.name] for criterion in self.criteria) / weights
        )

    def normalize(self, value: float) -> float:
        """Map a value on the scale to [0, 1]."""
        return (value - self.scale.min) / (self.scale.max - self.scale.min)


def card_directories() -> list[Path]:
    """Where cards are looked up by name: a checkout's judges/, then the installed copy."""
    checkout = Path(__file__).resolve().parents[2] / "judges"
    installed = Path(str(resources.files("ttc_agent").joinpath("_judges")))
    return [path for path in (checkout, installed) if path.is_dir()]


def available_cards() -> list[str]:
    """The names of the cards that can be loaded by name.

    Example:
        >>> "helpfulness" in available_cards()
        True
    """
    return sorted({path.stem for folder in card_directories() for path in folder.glob("*.toml")})


def load_card(card: str | Path) -> JudgeCard:
    """Load a judge card by name (``"writing_quality"``) or by path (``"my/judge.toml"``).

    Raises:
        JudgeCardError: the card is not found or does not validate; the message says why.
    """
    path = Path(card)
    if path.suffix != ".toml" and "/" not in str(card):
        found = [folder / f"{card}.toml" for folder in card_directories()]
        found = [candidate for candidate in found if candidate.is_file()]
        if not found:
            raise JudgeCardError(
                f"unknown judge card {str(card)!r}; available: {', '.join(available_cards())}"
            )
        path = found[0]
    if not path.is_file():
        raise JudgeCardError(f"judge card file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise JudgeCardError(f"judge card {path}: invalid TOML: {exc}") from None
    if isinstance(data.get("criteria"), list):  # TOML keys are strings; anchors are points
        for criterion in data["criteria"]:
            if isinstance(criterion, dict) and isinstance(criterion.get("anchors"), dict):
                criterion["anchors"] = _int_keys(criterion["anchors"], path)
    try:
        return JudgeCard.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'card'}: {error['msg']}"
            for error in exc.errors()
        )
        raise JudgeCardError(f"judge card {path}: {problems}") from None


def _int_keys(anchors: dict[str, str], path: Path) -> dict[int, str]:
    try:
        return {int(point): text for point, text in anchors.items()}
    except ValueError:
        raise JudgeCardError(
            f"judge card {path}: anchor keys must be score points (integers), got {list(anchors)}"
        ) from None
