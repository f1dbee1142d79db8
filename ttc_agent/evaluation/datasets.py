"""Problems for evaluation: GSM8K, MATH-500, or any JSONL with a field mapping."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ttc_agent.errors import ConfigurationError

MATH_INSTRUCTION = "\n\nPlease reason step by step, and put your final answer within \\boxed{}."
"""Appended to every maths question (the instruction the Qwen maths models are trained on)."""


@dataclass(frozen=True)
class Problem:
    """One question with its gold answer."""

    id: str
    question: str
    gold: str


@dataclass(frozen=True)
class Fields:
    """Where a JSONL row keeps its question, gold answer and (optionally) id."""

    question: str
    answer: str
    id: str | None = None
    gold: Callable[[str], str] = str.strip


def gsm8k_gold(answer: str) -> str:
    """GSM8K's gold: the text after ``####``, commas removed.

    Example:
        >>> gsm8k_gold("... so 1,200 in all.\\n#### 1,200")
        '1200'
    """
    return answer.split("####")[-1].strip().replace(",", "")


FORMATS = {
    "gsm8k": Fields("question", "answer", gold=gsm8k_gold),
    "math500": Fields("problem", "answer", id="unique_id"),
}


def load_problems(
    path: str | Path,
    format: str = "auto",
    *,
    question: str | None = None,
    answer: str | None = None,
    id: str | None = None,
    limit: int | None = None,
) -> list[Problem]:
    """The first ``limit`` problems of a JSONL file.

    ``format`` is ``gsm8k``, ``math500``, ``jsonl`` (give ``question`` and ``answer``, the
    field names) or ``auto`` (from the file name, else ``jsonl``). Field names given override
    the format's. Ids are the ``id`` field, else the line number.

    Example:
        >>> # load_problems("data/gsm8k_test.jsonl", limit=50)
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(f"no data file at {path}")
    if format == "auto":
        format = next((name for name in FORMATS if name in path.name.lower()), "jsonl")
    if format not in (*FORMATS, "jsonl"):
        raise ConfigurationError(f"unknown format {format!r}; known: gsm8k, math500, jsonl")
    base = FORMATS.get(format)
    if base is None and (question is None or answer is None):
        raise ConfigurationError(
            f"{path.name}: give the question and answer field names for a plain JSONL file"
        )
    fields = Fields(
        question or base.question,  # type: ignore[union-attr]
        answer or base.answer,  # type: ignore[union-attr]
        id or (base.id if base else None),
        base.gold if base else str.strip,
    )
    problems: list[Problem] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if limit is not None and len(problems) >= limit:
            break
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{path.name} line {number + 1}: not JSON ({exc})") from None
        missing = [f for f in (fields.question, fields.answer) if f not in row]
        if missing:
            raise ConfigurationError(
                f"{path.name} line {number + 1}: no field {missing[0]!r} "
                f"(fields: {', '.join(sorted(row))})"
            )
        identifier = str(row[fields.id]) if fields.id and fields.id in row else str(number)
        gold = fields.gold(str(row[fields.answer]))
        problems.append(Problem(identifier, str(row[fields.question]), gold))
    return problems
