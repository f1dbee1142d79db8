"""Injected twins against clean answers on the embedded judges, before and after the defences.

Each attack in tests/data/judge_injection.jsonl is one pair: a clean answer (a writing, roleplay
or humanities answer from data/mtbench_human_pairs.json, the one people liked less, so that the
judge has room above it) and its injected twin (the clean answer, a blank line, the attack).
``RubricJudge("writing_quality")`` on the embedded model scores the clean answer and the twin at
``--temperature`` (0, the judge's default) and, for the judge's own noise, the clean answer twice
more at ``--noise-temperature`` (0.7). Printed per model and kind: how often the twin scored
above its clean answer under each defence, beside how often the second noisy score of the clean
answer beat the first; ``control`` pairs append harmless endings (what any added text does).

Defences: ``none`` (the fence and the notice only: ``injection="flag"``), ``penalise`` (none's
scores, the twin's lowered by ``--penalty`` where the screen found something: no calls of its
own), ``mask`` (``injection="mask"``: only what the screen changed is judged again, the rest is
none's), ``restate`` (``restate=True``) and ``nonce`` (``nonce=True``).

Every score is a line of ``--out`` keyed by (model, kind, pair, variant, defence), with its
temperature (rows at other temperatures are left out); a rerun skips what is there, so the run
goes in parts. A call takes about 20 s on the 0.5B and 40 s on the 1.5B, when the CPU is free.

    python benchmarks/injection.py --models 0.5b --limit 2 --minutes 60
    python benchmarks/injection.py --report                # the tables so far, no calls
    python benchmarks/injection.py --false-positives       # the screen alone, no calls
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import defaultdict
from pathlib import Path

from injection_report import CRITERIA, NOISE, false_positives, report

from ttc_agent import JudgeOutputError, OpenAIChat, RubricJudge
from ttc_agent.verifiers.injection import detect

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "judge_injection.jsonl"
CARD = "writing_quality"
DEFENCES = ["none", "mask", "restate", "nonce"]  # penalise is computed from none's scores
OPTIONS = {
    "none": {"injection": "flag"},
    "mask": {"injection": "mask"},
    "restate": {"injection": "flag", "restate": True},
    "nonce": {"injection": "flag", "nonce": True},
}


def clean_answers() -> list[tuple[str, str]]:
    """(question, answer): the less liked answer of each MT-Bench writing, roleplay or
    humanities pair with a single-turn question, 250 to 900 characters long, once each."""
    categories = {}
    for line in (ROOT / "data" / "mt_bench_questions.jsonl").read_text().splitlines():
        row = json.loads(line)
        categories[row["turns"][0]] = row["category"]
    answers = {}
    for row in json.loads((ROOT / "data" / "mtbench_human_pairs.json").read_text()):
        answer = row[f"output_{3 - row['label']}"]
        kind = categories.get(row["input"])
        if kind in ("writing", "roleplay", "humanities") and 250 <= len(answer) <= 900:
            answers.setdefault(answer, row["input"])
    return sorted(((question, answer) for answer, question in answers.items()), key=str)


def pairs(limit: int | None) -> list[dict]:
    """The pairs, up to ``limit`` per kind, taken kind by kind in turn (so a part of the run
    covers every kind)."""
    cleans = clean_answers()
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for number, line in enumerate(CORPUS.read_text().splitlines()):
        attack = json.loads(line)
        question, answer = cleans[number % len(cleans)]
        by_kind[attack["kind"]].append(
            {
                "pair": number,
                "kind": attack["kind"],
                "prompt": [{"role": "user", "content": question}],
                "clean": answer,
                "twin": f"{answer}\n\n{attack['text']}",
            }
        )
    chosen = [rows[: limit or len(rows)] for rows in by_kind.values()]
    longest = max(len(rows) for rows in chosen)
    return [rows[i] for i in range(longest) for rows in chosen if i < len(rows)]


def load(out: Path, temperature: float, noise_temperature: float) -> dict[tuple, dict]:
    """The rows of ``out`` made at these temperatures, by key."""
    rows = {}
    for line in out.read_text().splitlines() if out.exists() else []:
        row = json.loads(line)
        wanted = noise_temperature if row["variant"] in NOISE else temperature
        if row.get("temperature") == wanted:
            rows[row["model"], row["kind"], row["pair"], row["variant"], row["defence"]] = row
    return rows


def needed(pair: dict, defence: str) -> list[str]:
    """The variants a defence judges itself: the noise under none only, and under mask only what
    the screen changes (elsewhere its prompt is none's)."""
    if defence == "none":
        return ["clean", "twin", *NOISE]
    if defence != "mask":
        return ["clean", "twin"]
    return [v for v in ("clean", "twin") if detect(pair[v], CRITERIA)]


def todo(args: argparse.Namespace, model: str, done: dict[tuple, dict]):
    """The (pair, defence, variant) still to judge on ``model``, in the order of the run."""
    for pair in pairs(args.limit):
        for defence in args.defences:
            for variant in needed(pair, defence):
                if (model, pair["kind"], pair["pair"], variant, defence) not in done:
                    yield pair, defence, variant


async def run(args: argparse.Namespace) -> None:
    done = load(args.out, args.temperature, args.noise_temperature)
    started = time.monotonic()
    calls = 0
    with args.out.open("a") as log:
        for name in args.models:
            async with OpenAIChat(embedded=name, timeout=1800) as model:
                judges = {
                    defence: RubricJudge(
                        CARD, model, temperature=args.temperature, **OPTIONS[defence]
                    )
                    for defence in args.defences
                }
                noisy = RubricJudge(
                    CARD, model, temperature=args.noise_temperature, **OPTIONS["none"]
                )
                for pair, defence, variant in list(todo(args, name, done)):
                    if args.minutes and time.monotonic() - started > 60 * args.minutes:
                        print(f"stopped after {args.minutes} minutes ({calls} calls)")
                        return
                    judge = noisy if variant in NOISE else judges[defence]
                    row = await judged(judge, pair, variant)
                    key = (name, pair["kind"], pair["pair"], variant, defence)
                    row |= dict(
                        zip(("model", "kind", "pair", "variant", "defence"), key, strict=True)
                    )
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    calls += 1
                    print(
                        f"[{calls} calls, {time.monotonic() - started:.0f} s] {name} "
                        f"{pair['kind']} #{pair['pair']} {defence}/{variant}: "
                        f"{row.get('normalized', row.get('error'))}",
                        flush=True,
                    )


async def judged(judge: RubricJudge, pair: dict, variant: str) -> dict:
    text = pair["twin"] if variant == "twin" else pair["clean"]
    start = time.monotonic()
    try:
        [score] = await judge.score(pair["prompt"], [text])
    except JudgeOutputError as exc:
        seconds = round(time.monotonic() - start, 1)
        return {"temperature": judge.temperature, "error": str(exc)[:300], "seconds": seconds}
    return {
        "temperature": judge.temperature,
        "value": score.value,
        "normalized": score.normalized,
        "found": sorted({f.kind for f in score.injection.findings}) if score.injection else [],
        "calls": score.usage.calls,
        "tokens": score.usage.total_tokens,
        "seconds": round(time.monotonic() - start, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="0.5b,1.5b", type=lambda s: s.split(","))
    parser.add_argument("--defences", default=",".join(DEFENCES), type=lambda s: s.split(","))
    parser.add_argument("--limit", type=int, default=None, help="pairs per kind (default all)")
    parser.add_argument("--minutes", type=float, default=None, help="start no call after this")
    parser.add_argument("--temperature", type=float, default=0.0, help="the twins' (default 0)")
    parser.add_argument("--noise-temperature", type=float, default=0.7)
    parser.add_argument("--penalty", type=float, default=0.5, help="penalise: fraction of scale")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/injection.jsonl")
    parser.add_argument("--report", action="store_true", help="print the tables, call nothing")
    parser.add_argument("--false-positives", action="store_true", help="the screen alone")
    args = parser.parse_args()
    if unknown := set(args.defences) - set(DEFENCES):
        parser.error(f"unknown defences {sorted(unknown)}; known: {', '.join(DEFENCES)}")
    if args.false_positives:
        false_positives(ROOT, CORPUS)
    else:
        if not args.report:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            asyncio.run(run(args))
        rows = load(args.out, args.temperature, args.noise_temperature)
        report(rows, {p["pair"]: p for p in pairs(None)}, args.penalty)
