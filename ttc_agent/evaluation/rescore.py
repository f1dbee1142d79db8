"""Score an evaluation's stored candidates again, with another verifier: the cheap way to
compare verifiers, since sampling is paid once (``ttc eval DATA --rescore RUN --judge CARD``).

The earlier run's rows (``RUN/candidates.jsonl``) are copied to ``OUT/candidates.jsonl`` with the
new verifier's scores, a problem's rows together once they are scored, so a rerun skips the
problems already there; ``OUT/run.json`` records the earlier run's settings with the new
verifier and where the candidates came from. The summary, its verifier diagnostics and plots are
those of ``ttc eval``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ttc_agent.errors import ConfigurationError, TTCError
from ttc_agent.evaluation.datasets import Problem
from ttc_agent.evaluation.rows import SAMPLES, read_rows, written
from ttc_agent.evaluation.run import OnProblem, check_settings
from ttc_agent.evaluation.summary import Summary, summarise
from ttc_agent.protocols import Verifier


async def rescore(
    problems: Sequence[Problem],
    source: str | Path,
    verifier: Verifier,
    *,
    out: str | Path,
    concurrency: int = 1,
    on_problem: OnProblem | None = None,
    plot: bool = True,
) -> Summary:
    """Score the candidates an earlier evaluation in ``source`` sampled for ``problems`` with
    ``verifier``, into ``out`` (see the module's docstring).

    Raises:
        ConfigurationError: ``source`` holds no evaluation run, or ``out`` holds another one.

    Example:
        >>> # summary = await rescore(problems, "runs/gsm8k", resolve, out="runs/gsm8k_resolve")
    """
    source, folder = Path(source), Path(out)
    if not (source / "run.json").is_file():
        raise ConfigurationError(f"no evaluation run to re-score at {source} (no run.json)")
    before = json.loads((source / "run.json").read_text(encoding="utf-8"))
    settings = before | {"verifier": verifier.name, "rescored_from": str(source)}
    check_settings(folder / "run.json", settings)
    stored: dict[str, list[dict[str, Any]]] = {}
    for row in read_rows(source / "candidates.jsonl"):
        if row.get("strategy", SAMPLES) == SAMPLES:
            stored.setdefault(row["problem"], []).append(row)
    rows_path = folder / "candidates.jsonl"
    done = {pid for pid, have in written(rows_path).items() if (SAMPLES, before["n"]) in have}
    failed: dict[str, str] = {}
    lock, gate = asyncio.Lock(), asyncio.Semaphore(concurrency)
    progress = {"done": sum(p.id in done for p in problems)}

    async def one(problem: Problem) -> None:
        rows = sorted(stored.get(problem.id, []), key=lambda row: row["index"])
        if len(rows) < before["n"]:
            failed[problem.id] = f"{source} has no {before['n']} candidates for it"
            return
        prompt = [{"role": "user", "content": problem.question + before["instruction"]}]
        async with gate:
            try:
                scores = await verifier.score(prompt, [row["text"] for row in rows])
            except TTCError as exc:  # kept out of the file: a rerun tries it again
                failed[problem.id] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                return
        scored = [
            row
            | {"score": score.normalized, "criteria": score.criteria, "verifier": verifier.name}
            | {"verification_tokens": score.usage.total_tokens}
            for row, score in zip(rows, scores, strict=True)
        ]
        async with lock:
            with rows_path.open("a", encoding="utf-8") as file:
                file.write("".join(json.dumps(row) + "\n" for row in scored))
            progress["done"] += 1
            if on_problem is not None:
                on_problem(problem.id, progress["done"], len(problems))

    await asyncio.gather(*(one(p) for p in problems if p.id not in done))
    return summarise(folder, settings, {p.id for p in problems}, failed=failed, plot=plot)
