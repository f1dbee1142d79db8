"""An evaluation run: sample ``n`` candidates per problem once, score and grade them, and
compute every budget's metrics from prefixes (see ``metrics``).

Every candidate is one JSONL row in ``OUT/candidates.jsonl``, a problem's rows written together
once it is sampled, scored and graded; a rerun with the same folder skips the problems already
there, so an interrupted sweep loses at most the problems in flight. ``OUT/summary.json`` (the
metrics and the verifier's diagnostics), ``OUT/accuracy.png`` (the sweep) and ``OUT/scores.png``
(the verifier's scores of right and wrong candidates) are rewritten whole at the end of each run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ttc_agent.answers import Equivalence, equivalence
from ttc_agent.errors import ConfigurationError, TTCError
from ttc_agent.evaluation.datasets import MATH_INSTRUCTION, Problem
from ttc_agent.evaluation.grading import gold_answer, is_correct
from ttc_agent.evaluation.metrics import METHODS, budgets
from ttc_agent.evaluation.rows import SAMPLES, finished, written
from ttc_agent.evaluation.summary import Summary, summarise
from ttc_agent.files import write_atomically
from ttc_agent.protocols import ChatModel, Verifier
from ttc_agent.strategies import StrategyNode

OnProblem = Callable[[str, int, int], None]
"""Called after each problem with (its id, problems done, problems in all)."""

SearchFactory = Callable[[int], StrategyNode[Any]]
"""Builds a search strategy's node for a budget ``n``, e.g.
``lambda n: beam_search(model, judge, n=n, keep=min(4, n))``."""


async def evaluate(
    problems: Sequence[Problem],
    model: ChatModel,
    *,
    n: int,
    out: str | Path,
    verifier: Verifier | None = None,
    answer: str | Callable[[str], Any] | Equivalence = "math",
    instruction: str = MATH_INSTRUCTION,
    temperature: float = 0.8,
    max_tokens: int | None = None,
    concurrency: int = 4,
    on_problem: OnProblem | None = None,
    plot: bool = True,
    searches: Mapping[str, SearchFactory] | None = None,
) -> Summary:
    """Sample ``n`` candidates per problem, score them with ``verifier`` (if any), grade them
    with math-verify, and measure naive, weighted and majority selection and pass@k at every
    power of two up to ``n``.

    Args:
        problems: from ``load_problems``.
        model: samples the candidates.
        n: the largest budget; smaller ones come from prefixes.
        out: the run's folder (candidates.jsonl, summary.json, accuracy.png); reuse it to
            resume.
        verifier: scores candidates for naive and weighted selection; without one, only
            majority and pass@k are measured.
        answer: how answers are grouped for majority and weighted selection.
        instruction: appended to each question.
        concurrency: problems in flight at once.
        searches: strategies that cannot be read off prefixes (beam search, DVTS), by name:
            a function from a budget ``k`` to the node to run at that budget. Each runs once
            per problem and power of two up to ``n``; its answer is one row.

    Example:
        >>> # problems = load_problems("data/gsm8k_test.jsonl", limit=20)
        >>> # summary = await evaluate(problems, model, n=8, out="runs/gsm8k", verifier=judge)
        >>> # print(summary.table())
    """
    if n < 1:
        raise ConfigurationError(f"n must be at least 1, got {n}")
    if concurrency < 1:
        raise ConfigurationError(f"concurrency must be at least 1, got {concurrency}")
    groups = equivalence(answer)
    folder = Path(out)
    settings = {
        "model": model.name,
        "verifier": verifier.name if verifier else None,
        "n": n,
        "answer": groups.name,
        "instruction": instruction,
        "temperature": temperature,
        "max_tokens": max_tokens,
    }
    searches = dict(searches or {})
    if clash := set(searches) & {*METHODS, SAMPLES}:
        raise ConfigurationError(f"search names {sorted(clash)} are taken by the metrics")
    rows_path = folder / "candidates.jsonl"
    check_settings(folder / "run.json", settings)
    done = finished(rows_path, n, [(name, k) for name in searches for k in budgets(n)])
    todo = [p for p in problems if p.id not in done]
    failed: dict[str, str] = {}
    lock, gate = asyncio.Lock(), asyncio.Semaphore(concurrency)
    progress = {"done": len(problems) - len(todo)}
    finished_rows = written(rows_path)

    async def one(problem: Problem) -> None:
        async with gate:
            have = finished_rows.get(problem.id, set())
            try:
                rows = []
                if (SAMPLES, n) not in have:
                    rows += await _candidates(problem, model, verifier, groups, n, settings)
                missing = [
                    (name, k) for name in searches for k in budgets(n) if (name, k) not in have
                ]
                for name, k in missing:
                    rows.append(
                        await _search(problem, name, searches[name](k), k, groups, settings)
                    )
            except TTCError as exc:  # kept out of the file: a rerun tries it again
                failed[problem.id] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        async with lock:
            if rows:
                with rows_path.open("a", encoding="utf-8") as file:
                    file.write("".join(json.dumps(row) + "\n" for row in rows))
            progress["done"] += 1
            if on_problem is not None:
                on_problem(problem.id, progress["done"], len(problems))

    await asyncio.gather(*(one(problem) for problem in todo))
    wanted = {p.id for p in problems}
    return summarise(folder, settings, wanted, searches=list(searches), failed=failed, plot=plot)


async def _candidates(
    problem: Problem,
    model: ChatModel,
    verifier: Verifier | None,
    groups: Equivalence,
    n: int,
    settings: dict[str, Any],
) -> list[dict[str, Any]]:
    """One problem's rows: sampled, labelled, graded and scored."""
    prompt = [{"role": "user", "content": problem.question + settings["instruction"]}]
    started = time.monotonic()
    completions = await model.sample(
        prompt, n, temperature=settings["temperature"], max_tokens=settings["max_tokens"]
    )
    latency = time.monotonic() - started
    texts = [c.text for c in completions]
    scores = await verifier.score(prompt, texts) if verifier else [None] * len(texts)
    labels = await asyncio.to_thread(groups.labels, texts)
    gold = await asyncio.to_thread(gold_answer, problem.gold)
    right = [await asyncio.to_thread(is_correct, text, gold) for text in texts]
    return [
        {
            "problem": problem.id,
            "strategy": SAMPLES,
            "index": i,
            "n": n,
            "gold": problem.gold,
            "text": completion.text,
            "finish_reason": completion.finish_reason,
            "answer": label,
            "correct": correct,
            "score": score.normalized if score else None,
            "criteria": score.criteria if score else {},
            "tokens": completion.usage.total_tokens,
            "verification_tokens": score.usage.total_tokens if score else 0,
            "latency": round(latency, 3),
            "model": settings["model"],
            "verifier": settings["verifier"],
        }
        for i, (completion, label, correct, score) in enumerate(
            zip(completions, labels, right, scores, strict=True)
        )
    ]


def check_settings(path: Path, settings: dict[str, Any]) -> None:
    """Record the run's settings; refuse to mix candidates of different settings in one folder."""
    if path.is_file():
        before = json.loads(path.read_text())
        changed = sorted(k for k in settings if k in before and before[k] != settings[k])
        if changed:
            raise ConfigurationError(
                f"{path.parent} holds a run with other settings ({', '.join(changed)}: "
                f"{', '.join(repr(before[k]) for k in changed)}); use another folder"
            )
        return
    write_atomically(path, json.dumps(settings, indent=2) + "\n")


async def _search(
    problem: Problem,
    name: str,
    node: StrategyNode[Any],
    n: int,
    groups: Equivalence,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """One search strategy's answer to one problem at one budget, as a row."""
    started = time.monotonic()
    result = await node.ainvoke(problem.question + settings["instruction"])
    latency = time.monotonic() - started
    [label] = await asyncio.to_thread(groups.labels, [result.answer])
    gold = await asyncio.to_thread(gold_answer, problem.gold)
    best = result.best
    return {
        "problem": problem.id,
        "strategy": name,
        "index": 0,
        "n": n,
        "gold": problem.gold,
        "text": result.answer,
        "answer": label,
        "correct": await asyncio.to_thread(is_correct, result.answer, gold),
        "score": best.score.normalized if best and best.score else None,
        "tokens": result.usage.generation.total_tokens,
        "verification_tokens": result.usage.verification.total_tokens,
        "calls": result.usage.total.calls,
        "latency": round(latency, 3),
        "model": settings["model"],
        "verifier": result.settings.get("verifier"),
    }
