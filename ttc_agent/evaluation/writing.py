"""Writing-quality experiments: does best-of-N (or revision) write better than one sample?

For each prompt, one run at the largest ``n`` gives every budget:

- ``best_of_n``: ``n`` samples scored by the *selection* judge; at budget ``k`` the choice is
  the best of the first ``k``;
- ``refine``: one revision chain of ``n`` drafts (``rounds = n - 1``, feedback from the
  selection judge); at budget ``k`` the choice is the best of its first ``k`` drafts (refine
  never keeps a worse draft).

With a ``tournament`` judge (``ttc writing --selection tournament``), the choice at budget ``k``
is instead the winner of a knockout among the first ``k`` drafts under that pairwise judge,
ties to the selection judge's scores (``tournaments``: every budget's bracket replays the
smaller ones' matches, kept in ``OUT/matches.jsonl``).

Each choice is compared with the baseline, the first plain sample (what ``n = 1`` gives), by a
separate *evaluation* judge, pairwise and in both orders (calibrated: a judge with no preference
once its position bias is averaged out gives a tie).
Reported per strategy and budget: the win rate (a win 1, a tie 1/2) with a 95 % bootstrap
interval, wins, ties and losses, mean lengths in words, and a length-controlled win rate (the
win rate a logistic fit on the length difference predicts at equal length, after AlpacaEval's
length-controlled win rate). ``OUT/report.md`` and ``OUT/win_rate.png`` hold the result;
candidates and comparisons are JSONL rows, so a rerun resumes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttc_agent.errors import ConfigurationError
from ttc_agent.evaluation.metrics import budgets
from ttc_agent.evaluation.tournaments import Matches
from ttc_agent.evaluation.win_rates import (
    WinRate,
    choice,
    rows_of,
    win_rate,
    write_report,
)
from ttc_agent.evaluation.win_rates import bootstrap_interval as bootstrap_interval
from ttc_agent.evaluation.win_rates import length_controlled as length_controlled
from ttc_agent.protocols import ChatModel, Verifier
from ttc_agent.strategies.refine import refine
from ttc_agent.types import Message, Score
from ttc_agent.verifiers.pairwise_judge import PairwiseJudge

ARMS = ("best_of_n", "refine")
"""The experiment's arms: samples read off by prefix, and one revision chain (see above); not
the strategies' registry, as each arm is read off one run at every budget in its own way."""
STRATEGIES = ARMS  # the old name, for one release
OUTCOMES = {"first": "win", "second": "loss", "tie": "tie"}


@dataclass(frozen=True)
class WritingPrompt:
    """One writing request."""

    id: str
    messages: list[Message]


def load_prompts(
    path: str | Path,
    format: str = "auto",
    *,
    field: str = "prompt",
    categories: Sequence[str] = ("writing", "roleplay"),
    limit: int | None = None,
) -> list[WritingPrompt]:
    """Writing prompts from Arena-Hard (``arena_hard``: ``uid``, ``prompt``), MT-Bench
    (``mt_bench``: first turns of the given ``categories``) or a JSONL with a ``field``.

    Example:
        >>> # load_prompts("data/mt_bench_questions.jsonl", limit=5)
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(f"no prompts file at {path}")
    if format == "auto":
        lowered = path.name.lower()
        format = "arena_hard" if "arena" in lowered else "mt_bench" if "mt_bench" in lowered else ""
        format = format or "jsonl"
    if format not in ("arena_hard", "mt_bench", "jsonl"):
        raise ConfigurationError(f"unknown format {format!r}; known: arena_hard, mt_bench, jsonl")
    prompts: list[WritingPrompt] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if limit is not None and len(prompts) >= limit:
            break
        if not line.strip():
            continue
        row = json.loads(line)
        if format == "mt_bench":
            if row.get("category") not in categories:
                continue
            text, identifier = row["turns"][0], row["question_id"]
        else:
            key = "prompt" if format == "arena_hard" else field
            if key not in row:
                raise ConfigurationError(f"{path.name} line {number + 1}: no field {key!r}")
            text, identifier = row[key], row.get("uid", row.get("id", number))
        prompts.append(WritingPrompt(str(identifier), [{"role": "user", "content": text}]))
    return prompts


async def writing_experiment(
    prompts: Sequence[WritingPrompt],
    model: ChatModel,
    *,
    selection: Verifier,
    evaluation: PairwiseJudge,
    n: int = 8,
    out: str | Path,
    strategies: Sequence[str] = ("best_of_n",),
    temperature: float = 0.8,
    max_tokens: int | None = None,
    concurrency: int = 2,
    on_prompt: Callable[[int, int], None] | None = None,
    tournament: PairwiseJudge | None = None,
) -> list[WinRate]:
    """Run the experiment (see the module's docstring) and write ``OUT/report.md``; with
    ``tournament``, each budget's draft is chosen by a knockout under that pairwise judge.

    Example:
        >>> # rates = await writing_experiment(prompts, model, n=4, out="runs/writing",
        >>> #     selection=RubricJudge("writing_quality", judge), evaluation=PairwiseJudge(
        >>> #     "writing_quality", judge))
    """
    if unknown := sorted(set(strategies) - set(ARMS)):
        raise ConfigurationError(f"unknown strategies {unknown}; known: {', '.join(ARMS)}")
    if n < 1:
        raise ConfigurationError(f"n must be at least 1, got {n}")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    drafts_path, comparisons_path = folder / "candidates.jsonl", folder / "comparisons.jsonl"
    drafts = _load(drafts_path, ("strategy", "prompt", "index"))
    compared = _load(comparisons_path, ("strategy", "prompt", "chosen"))
    matches = Matches(folder / "matches.jsonl", tournament) if tournament else None
    choices: dict[tuple[str, str, int], tuple[int, int]] = {}
    lock, gate = asyncio.Lock(), asyncio.Semaphore(concurrency)
    progress = {"done": 0}

    async def write(path: Path, rows: list[dict[str, Any]], into: dict) -> None:
        async with lock:
            with path.open("a", encoding="utf-8") as file:
                file.write("".join(json.dumps(row) + "\n" for row in rows))
            for row in rows:
                key = "index" if "index" in row else "chosen"
                into[(row["strategy"], row["prompt"], row[key])] = row

    async def one(prompt: WritingPrompt) -> None:
        async with gate:
            for strategy in strategies:
                if (strategy, prompt.id, 0) not in drafts:
                    sampling = (n, temperature, max_tokens)
                    rows = await _drafts(strategy, prompt, model, selection, *sampling)
                    await write(drafts_path, rows, drafts)
            baseline = drafts[("best_of_n", prompt.id, 0)] if "best_of_n" in strategies else None
            for strategy in strategies:
                base = baseline or drafts[(strategy, prompt.id, 0)]
                mine = rows_of(drafts, strategy, prompt.id)
                for k in budgets(n):
                    chosen = choice(mine[:k])
                    if matches is not None:
                        texts, scores = (
                            [r["text"] for r in mine[:k]],
                            [r["score"] for r in mine[:k]],
                        )
                        scope = f"{strategy}/{prompt.id}"
                        bracket = await matches.tournament(scope, prompt.messages, texts, scores)
                        chosen = bracket.champion
                        choices[(strategy, prompt.id, k)] = (chosen, bracket.usage.total_tokens)
                    same = mine[chosen] is base  # the baseline itself: an even draw
                    if same or (strategy, prompt.id, chosen) in compared:
                        continue
                    both = await evaluation.compare_both_orders(
                        prompt.messages, mine[chosen]["text"], base["text"]
                    )
                    row = {"strategy": strategy, "prompt": prompt.id, "chosen": chosen}
                    row |= {"outcome": OUTCOMES[both.outcome], "tokens": both.usage.total_tokens}
                    row |= {
                        "ab": both.ab.winner,
                        "ba": both.ba.winner,
                        "preference": both.preference,
                    }
                    row["reasons"] = [both.ab.reason, both.ba.reason]
                    await write(comparisons_path, [row], compared)
        async with lock:
            progress["done"] += 1
            if on_prompt is not None:
                on_prompt(progress["done"], len(prompts))

    await asyncio.gather(*(one(prompt) for prompt in prompts))
    rates = [
        win_rate(strategy, k, prompts, drafts, compared, strategies, choices)
        for strategy in strategies
        for k in budgets(n)
    ]
    judged_by = tournament.name if tournament else None
    write_report(
        folder, rates, model.name, selection.name, evaluation.name, len(prompts), judged_by
    )
    return rates


async def _drafts(
    strategy: str,
    prompt: WritingPrompt,
    model: ChatModel,
    selection: Verifier,
    n: int,
    temperature: float,
    max_tokens: int | None,
) -> list[dict[str, Any]]:
    if strategy == "best_of_n":
        completions = await model.sample(
            prompt.messages, n, temperature=temperature, max_tokens=max_tokens
        )
        texts = [c.text for c in completions]
        scores: list[Score | None] = list(await selection.score(prompt.messages, texts))
        generated = [c.usage.total_tokens for c in completions]
    else:
        chain = refine(
            model, selection, rounds=n - 1, temperature=temperature, max_tokens=max_tokens
        )
        result = await chain.ainvoke(prompt.messages)
        texts = [c.text for c in result.candidates]
        scores = [c.score for c in result.candidates]
        generated = [c.usage.total_tokens for c in result.candidates]
    rows = zip(texts, scores, generated, strict=True)
    return [
        {"strategy": strategy, "prompt": prompt.id, "index": i, "text": text}
        | {"score": score.value if score else None, "words": len(text.split())}
        | {"tokens": tokens, "verification_tokens": score.usage.total_tokens if score else 0}
        for i, (text, score, tokens) in enumerate(rows)
    ]


def _load(path: Path, key: tuple[str, str, str]) -> dict[tuple, dict[str, Any]]:
    rows: dict[tuple, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # cut by a crash: redone
                continue
            rows[tuple(row[k] for k in key)] = row
    return rows
