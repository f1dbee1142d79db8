"""The GSM8K test set from the repository's data/, and its grading, for the benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "gsm8k_test.jsonl"
INSTRUCTION = "\nSolve step by step and end with 'The answer is N.'"


def problems(count: int) -> list[tuple[str, str]]:
    """The first ``count`` (question, gold answer) pairs; gold is the text after ``####``."""
    rows = [json.loads(line) for line in DATA.read_text().splitlines()[:count]]
    return [(r["question"], r["answer"].split("####")[-1].strip().replace(",", "")) for r in rows]


def same(answer: str | None, gold: str) -> bool:
    """Whether an extracted number equals the gold answer."""
    try:
        return answer is not None and abs(float(answer) - float(gold)) < 1e-6
    except ValueError:
        return False
