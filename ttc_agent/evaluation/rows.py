"""An evaluation run's rows on disk (``OUT/candidates.jsonl``): what each problem already has,
the sampled candidates the prefix metrics read, and the search strategies' accuracy points."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ttc_agent.evaluation.metrics import Point, Sample

SAMPLES = "samples"
"""The strategy name of the sampled candidates' rows (the prefix methods are read off them)."""


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a crash: its problem is redone
            continue
    return rows


def written(path: Path) -> dict[str, set[tuple[str, int]]]:
    """What each problem already has: (``samples``, n) when its n candidates are all there,
    and (search, budget) for each search answer."""
    counts: dict[tuple[str, str, int], int] = {}
    for row in read_rows(path):
        key = (row["problem"], row.get("strategy", SAMPLES), row["n"])
        counts[key] = counts.get(key, 0) + 1
    written: dict[str, set[tuple[str, int]]] = {}
    for (problem, strategy, n), count in counts.items():
        if strategy != SAMPLES or count >= n:
            written.setdefault(problem, set()).add((strategy, n))
    return written


def finished(path: Path, n: int, searches: list[tuple[str, int]]) -> set[str]:
    needed = {(SAMPLES, n), *searches}
    return {problem for problem, have in written(path).items() if needed <= have}


def samples_in(path: Path) -> dict[str, list[Sample]]:
    samples: dict[str, dict[int, Sample]] = {}
    for row in read_rows(path):
        if row.get("strategy", SAMPLES) != SAMPLES:
            continue
        samples.setdefault(row["problem"], {})[row["index"]] = Sample(
            row["answer"], row["score"], row["correct"], row["tokens"], row["verification_tokens"]
        )
    return {pid: [by[i] for i in sorted(by)] for pid, by in samples.items()}


def search_points(path: Path, wanted: set[str], searches: list[str]) -> list[Point]:
    rows = [r for r in read_rows(path) if r.get("strategy") in searches and r["problem"] in wanted]
    points = []
    for name in searches:
        for n in sorted({r["n"] for r in rows if r["strategy"] == name}):
            mine = [r for r in rows if r["strategy"] == name and r["n"] == n]
            tokens = sum(r["tokens"] + r["verification_tokens"] for r in mine) / len(mine)
            accuracy = sum(r["correct"] for r in mine) / len(mine)
            points.append(Point(name, n, accuracy, tokens))
    return points
