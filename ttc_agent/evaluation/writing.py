"""Writing-quality experiments: does best-of-N (or revision) write better than one sample?

For each prompt, one run at the largest ``n`` gives every budget:

- ``best_of_n``: ``n`` samples scored by the *selection* judge; at budget ``k`` the choice is
  the best of the first ``k``;
- ``refine``: one revision chain of ``n`` drafts (``rounds = n - 1``, feedback from the
  selection judge); at budget ``k`` the choice is the best of its first ``k`` drafts (refine
  never keeps a worse draft).

Each choice is compared with the baseline, the first plain sample (what ``n = 1`` gives), by a
separate *evaluation* judge, pairwise and in both orders; when the orders disagree it is a tie.
Reported per strategy and budget: the win rate (a win 1, a tie 1/2) with a 95 % bootstrap
interval, wins, ties and losses, mean lengths in words, and a length-controlled win rate (the
win rate a logistic fit on the length difference predicts at equal length, after AlpacaEval's
length-controlled win rate). ``OUT/report.md`` and ``OUT/win_rate.png`` hold the result;
candidates and comparisons are JSONL rows, so a rerun resumes.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ttc_agent.errors import ConfigurationError
from ttc_agent.evaluation.metrics import budgets
from ttc_agent.evaluation.plots import pyplot
from ttc_agent.files import write_atomically
from ttc_agent.protocols import ChatModel, Verifier
from ttc_agent.strategies.refine import refine
from ttc_agent.types import Message, Score
from ttc_agent.verifiers.pairwise_judge import PairwiseJudge

STRATEGIES = ("best_of_n", "refine")


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
) -> list[WinRate]:
    """Run the experiment (see the module's docstring) and write ``OUT/report.md``.

    Example:
        >>> # rates = await writing_experiment(prompts, model, n=4, out="runs/writing",
        >>> #     selection=RubricJudge("writing_quality", judge), evaluation=PairwiseJudge(
        >>> #     "writing_quality", judge))
    """
    if unknown := sorted(set(strategies) - set(STRATEGIES)):
        raise ConfigurationError(f"unknown strategies {unknown}; known: {', '.join(STRATEGIES)}")
    if n < 1:
        raise ConfigurationError(f"n must be at least 1, got {n}")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    drafts_path, comparisons_path = folder / "candidates.jsonl", folder / "comparisons.jsonl"
    drafts = _load(drafts_path, ("strategy", "prompt", "index"))
    compared = _load(comparisons_path, ("strategy", "prompt", "chosen"))
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
                    rows = await _drafts(strategy, prompt, model, selection, n, temperature,
                                         max_tokens)  # fmt: skip
                    await write(drafts_path, rows, drafts)
            baseline = drafts[("best_of_n", prompt.id, 0)] if "best_of_n" in strategies else None
            for strategy in strategies:
                base = baseline or drafts[(strategy, prompt.id, 0)]
                mine = _rows_of(drafts, strategy, prompt.id)
                for k in budgets(n):
                    chosen = _choice(mine[:k])
                    same = mine[chosen] is base  # the baseline itself: an even draw
                    if same or (strategy, prompt.id, chosen) in compared:
                        continue
                    both = await evaluation.compare_both_orders(
                        prompt.messages, mine[chosen]["text"], base["text"]
                    )
                    row = {"strategy": strategy, "prompt": prompt.id, "chosen": chosen,
                           "outcome": {"first": "win", "second": "loss", "tie": "tie"}[
                               both.outcome], "ab": both.ab.winner, "ba": both.ba.winner,
                           "reasons": [both.ab.reason, both.ba.reason],
                           "tokens": both.usage.total_tokens}  # fmt: skip
                    await write(comparisons_path, [row], compared)
        async with lock:
            progress["done"] += 1
            if on_prompt is not None:
                on_prompt(progress["done"], len(prompts))

    await asyncio.gather(*(one(prompt) for prompt in prompts))
    rates = [
        _win_rate(strategy, k, prompts, drafts, compared, strategies)
        for strategy in strategies
        for k in budgets(n)
    ]
    _report(folder, rates, model.name, selection.name, evaluation.name, len(prompts))
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
        node = refine(model, selection, rounds=n - 1, temperature=temperature,
                      max_tokens=max_tokens)  # fmt: skip
        result = await node.ainvoke(prompt.messages)
        texts = [c.text for c in result.candidates]
        scores = [c.score for c in result.candidates]
        generated = [c.usage.total_tokens for c in result.candidates]
    return [
        {"strategy": strategy, "prompt": prompt.id, "index": i, "text": text,
         "score": score.value if score else None, "words": len(text.split()),
         "tokens": tokens, "verification_tokens": score.usage.total_tokens if score else 0}
        for i, (text, score, tokens) in enumerate(zip(texts, scores, generated, strict=True))
    ]  # fmt: skip


def _choice(rows: Sequence[dict[str, Any]]) -> int:
    """The best-scored of these drafts (the earliest on ties; unscored never wins)."""
    values = [(r["score"] if r["score"] is not None else -math.inf, -i) for i, r in enumerate(rows)]
    return -max(values)[1]


def _rows_of(drafts: dict, strategy: str, prompt: str) -> list[dict[str, Any]]:
    mine = [row for (s, p, _), row in drafts.items() if s == strategy and p == prompt]
    return sorted(mine, key=lambda row: row["index"])


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


def _win_rate(
    strategy: str,
    k: int,
    prompts: Sequence[WritingPrompt],
    drafts: dict,
    compared: dict,
    strategies: Sequence[str],
) -> WinRate:
    outcomes: list[float] = []
    differences: list[float] = []
    words: list[int] = []
    base_words: list[int] = []
    tokens: list[int] = []
    for prompt in prompts:
        mine = _rows_of(drafts, strategy, prompt.id)[:k]
        base_strategy = "best_of_n" if "best_of_n" in strategies else strategy
        base = drafts.get((base_strategy, prompt.id, 0))
        if not mine or base is None:
            continue
        chosen = _choice(mine)
        if mine[chosen] is base:
            outcome = 0.5  # the baseline itself
        elif (row := compared.get((strategy, prompt.id, chosen))) is not None:
            outcome = {"win": 1.0, "tie": 0.5, "loss": 0.0}[row["outcome"]]
        else:
            continue  # not compared (a judge failure): left out, a rerun asks again
        outcomes.append(outcome)
        words.append(mine[chosen]["words"])
        base_words.append(base["words"])
        differences.append(mine[chosen]["words"] - base["words"])
        tokens.append(sum(r["tokens"] + r["verification_tokens"] for r in mine))
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


def _report(
    folder: Path, rates: Sequence[WinRate], model: str, selection: str, judge: str, prompts: int
) -> None:
    lines = [
        "# Writing-quality experiment",
        "",
        f"{prompts} prompts; generator `{model}`; selection judge `{selection}`; evaluation "
        f"judge `{judge}` (pairwise against the first plain sample, both orders, "
        "disagreement = tie).",
        "",
        "| strategy | n | win rate | 95 % interval | W / T / L | LC win rate | words | "
        "baseline words | tokens |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rates:
        lines.append(
            f"| {r.strategy} | {r.n} | {r.win_rate:.1%} | {r.low:.1%} to {r.high:.1%} | "
            f"{r.wins} / {r.ties} / {r.losses} | {r.length_controlled:.1%} | {r.words:.0f} | "
            f"{r.baseline_words:.0f} | {r.tokens:.0f} |"
        )
    lines += ["", "![win rate against n](win_rate.png)", ""]
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
        axes.errorbar([r.n for r in mine], [r.win_rate for r in mine], yerr=errors,
                      marker="o", capsize=3, label=f"{strategy} win rate")  # fmt: skip
        axes.plot([r.n for r in mine], [r.length_controlled for r in mine], ":", marker="x",
                  label=f"{strategy} length-controlled")  # fmt: skip
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
