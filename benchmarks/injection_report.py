"""The tables of benchmarks/injection.py: per model and kind, how often the injected twin beat
its clean answer under each defence, beside the judge's noise; and the screen on its own."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ttc_agent.verifiers.injection import detect
from ttc_agent.verifiers.injection_policy import InjectionPolicy

COLUMNS = ["none", "penalise", "mask", "restate", "nonce"]
CRITERIA = ["clarity", "style", "engagement", "relevance"]  # the writing_quality card's
NOISE = ["noise1", "noise2"]  # the clean answer scored twice at the noise temperature


def scores(
    rows: dict[tuple, dict], model: str, pair: dict, defence: str, policy: InjectionPolicy
) -> dict[str, float] | str | None:
    """The pair's scores under ``defence`` (clean and twin; and the noise, under none);
    ``"error"`` where the judge gave no verdict, None where something is not judged yet.
    Penalise reads none's scores; mask reads none's where the screen left the text as it was."""
    own = "none" if defence == "penalise" else defence
    flagged = {v: bool(detect(pair[v], CRITERIA)) for v in ("clean", "twin")}
    out: dict[str, float] = {}
    for variant in ("clean", "twin", *NOISE) if own == "none" else ("clean", "twin"):
        text = "twin" if variant == "twin" else "clean"
        row = rows.get((model, pair["kind"], pair["pair"], variant, own))
        if row is None and own == "mask" and not flagged[text]:
            row = rows.get((model, pair["kind"], pair["pair"], variant, "none"))
        if row is None:
            return None
        if "error" in row:
            return "error"
        value = row["normalized"]
        out[variant] = policy.penalised(value) if defence == "penalise" and flagged[text] else value
    return out


@dataclass
class Tally:
    """Pairs, twin above clean, twin below clean, and the twin's mean lift, of one cell."""

    pairs: int = 0
    above: int = 0
    below: int = 0
    lift: float = 0.0

    def add(self, twin: float, clean: float) -> None:
        self.pairs += 1
        self.above += twin > clean + 1e-9
        self.below += twin < clean - 1e-9
        self.lift += twin - clean

    def __str__(self) -> str:
        return f"{self.above}/{self.pairs}"


def report(rows: dict[tuple, dict], pairs: dict[int, dict], penalty: float) -> None:
    """Per model, per kind: noise and how often the twin beat its clean answer, per defence."""
    policy = InjectionPolicy("penalise", penalty=penalty)
    for model in sorted({key[0] for key in rows}):
        tally: dict[tuple[str, str], Tally] = defaultdict(Tally)
        errors: dict[str, int] = defaultdict(int)
        kinds: list[str] = []
        for number in sorted({key[2] for key in rows if key[0] == model}):
            pair = pairs[number]
            kinds += [pair["kind"]] if pair["kind"] not in kinds else []
            groups = [pair["kind"], "all attacks" if pair["kind"] != "control" else "controls"]
            for defence in COLUMNS:
                got = scores(rows, model, pair, defence, policy)
                errors[defence] += got == "error"
                if not isinstance(got, dict):
                    continue
                for group in groups:
                    tally[group, defence].add(got["twin"], got["clean"])
                    if defence == "none":
                        tally[group, "noise"].add(got["noise2"], got["noise1"])
        columns = ["noise", *COLUMNS]
        print(f"\n{model}: pairs where the injected twin scored above its clean answer")
        print(f"{'kind':<18}" + "".join(f"{c:>10}" for c in columns))
        for group in [*(k for k in kinds if k != "control"), "all attacks", "controls"]:
            print(f"{group:<18}" + "".join(f"{tally[group, c]!s:>10}" for c in columns))
        cells = [tally["all attacks", c] for c in columns]
        print(f"{'  below clean':<18}" + "".join(f"{t.below:>10}" for t in cells))
        means = [t.lift / t.pairs if t.pairs else 0.0 for t in cells]
        print(f"{'  mean lift':<18}" + "".join(f"{m:>+10.3f}" for m in means))
        print(f"{'  no verdict':<18}" + "".join(f"{errors.get(c, 0):>10}" for c in columns))
        print(
            "(noise: the clean answer's second score at the noise temperature beat its first; "
            "lift: the twin's score minus the clean one's, normalized 0..1; no verdict: pairs "
            "left out for a JudgeOutputError)"
        )


def false_positives(root: Path, corpus: Path, criteria: list[str] = CRITERIA) -> None:
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
