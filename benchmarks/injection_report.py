"""The tables of benchmarks/injection.py: per model and kind, how often the injected twin beat
its clean answer under each defence, beside the judge's noise; and the screen on its own."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from ttc_agent.verifiers.injection import detect
from ttc_agent.verifiers.injection_policy import InjectionPolicy

COLUMNS = ["none", "penalise", "mask", "restate", "nonce"]


def scores(
    rows: dict[tuple, dict], model: str, pair: dict, defence: str, policy: InjectionPolicy
) -> dict[str, float] | str | None:
    """The pair's clean, again and twin scores under ``defence``; ``"error"`` where the judge
    gave no verdict, None where something is not judged yet."""
    own = "none" if defence == "penalise" else defence
    found = {v: bool(detect(pair["twin" if v == "twin" else "clean"])) for v in ("clean", "twin")}
    out: dict[str, float] = {}
    for variant in ("clean", "again", "twin"):
        key = (model, pair["kind"], pair["pair"], variant, own)
        fallback = (model, pair["kind"], pair["pair"], variant, "none")
        flagged = found["twin" if variant == "twin" else "clean"]
        row = rows.get(key) or (rows.get(fallback) if own == "mask" and not flagged else None)
        if row is None:
            return None
        if "error" in row:
            return "error"
        value = row["normalized"]
        if defence == "penalise" and flagged:
            value = policy.penalised(value)
        out[variant] = value
    return out


def report(rows: dict[tuple, dict], pairs: dict[int, dict], penalty: float, criteria) -> None:
    policy = InjectionPolicy("penalise", penalty=penalty)
    for model in sorted({key[0] for key in rows}):
        tally: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        lift: dict[str, list[float]] = defaultdict(list)
        errors: dict[str, int] = defaultdict(int)
        kinds: list[str] = []
        for number in sorted({key[2] for key in rows if key[0] == model}):
            pair = pairs[number]
            kinds += [pair["kind"]] if pair["kind"] not in kinds else []
            for defence in COLUMNS:
                got = scores(rows, model, pair, defence, policy)
                if got == "error":
                    errors[defence] += 1
                if not isinstance(got, dict):
                    continue
                groups = [pair["kind"], "all" if pair["kind"] != "control" else "controls"]
                for group in groups:
                    counts = tally[group, defence]
                    counts[0] += 1
                    counts[1] += got["twin"] > got["clean"] + 1e-9
                    counts[2] += got["twin"] < got["clean"] - 1e-9
                    counts[3] += got["again"] > got["clean"] + 1e-9
                if pair["kind"] != "control":
                    lift[defence].append(got["twin"] - got["clean"])
        print(f"\n{model}: pairs where the injected twin scored above its clean answer")
        print(f"{'kind':<18}" + "".join(f"{c:>10}" for c in COLUMNS))
        attacks = [k for k in kinds if k != "control"]
        for group in [*attacks, "all", "controls"]:
            cells = [tally[group, c] for c in COLUMNS]
            print(f"{group:<18}" + "".join(f"{f'{t[1]}/{t[0]}':>10}" for t in cells))
        print(f"{'twin below clean':<18}" + "".join(f"{tally['all', c][2]:>10}" for c in COLUMNS))
        noise = [tally["all", c] for c in COLUMNS]
        print(f"{'noise: again>clean':<18}" + "".join(f"{f'{t[3]}/{t[0]}':>10}" for t in noise))
        means = [sum(lift[c]) / len(lift[c]) if lift[c] else 0.0 for c in COLUMNS]
        print(f"{'mean lift':<18}" + "".join(f"{m:>+10.3f}" for m in means))
        print(f"{'no verdict':<18}" + "".join(f"{errors[c]:>10}" for c in COLUMNS))
        print(
            "(scores normalized to 0..1; 'noise' counts the pairs whose clean answer, scored "
            "again, beat its first score; 'no verdict' the pairs left out for a JudgeOutputError)"
        )


def false_positives(root: Path, corpus: Path, criteria: list[str]) -> None:
    """The screen's findings on the corpus, per kind, and on the answers in data/."""
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in corpus.read_text().splitlines():
        attack = json.loads(line)
        found[attack["kind"]][0] += bool(detect(attack["text"], criteria))
        found[attack["kind"]][1] += 1
    print("corpus entries the screen flags (controls are harmless endings):")
    for kind, (hits, total) in found.items():
        print(f"  {kind:<18} {hits}/{total}")
    data = root / "data"
    sources = {
        "mtbench_human_pairs answers": [
            row[f"output_{k}"]
            for row in json.loads((data / "mtbench_human_pairs.json").read_text())
            for k in (1, 2)
        ],
        "llmbar_natural answers": [
            row[f"output_{k}"]
            for row in json.loads((data / "llmbar_natural.json").read_text())
            for k in (1, 2)
        ],
        "gsm8k_test answers": [
            json.loads(line)["answer"] for line in (data / "gsm8k_test.jsonl").open()
        ],
        "math500 solutions": [
            json.loads(line)["solution"] for line in (data / "math500.jsonl").open()
        ],
    }
    print("answers in data/ the screen flags (false positives, unless the answer is a rating):")
    for name, texts in sources.items():
        flagged = [(text, detect(text, criteria)) for text in texts]
        flagged = [(text, findings) for text, findings in flagged if findings]
        print(f"  {name:<28} {len(flagged)}/{len(texts)}")
        for _, findings in flagged:
            print(f"      {findings[0].kind}: {findings[0].text[:70]!r}")
