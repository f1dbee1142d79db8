"""benchmarks/small_beats_large.py end to end on the loopback server: the larger model's greedy
bar, the small model's samples judged by the one-token verdict, re-scored by the reasoning
``math_resolve`` verifier, and chosen by tournament; every selection's accuracy and every
verifier's AUROC; resumable."""

from __future__ import annotations

import json
import math
import re
import sys

from ttc_agent.testing import Reply, fenced

GOLD = {}  # question -> gold, filled from the data file's first problems


def gold_of(text: str) -> str:
    for question, gold in GOLD.items():
        if question[:60] in text:
            return gold
    raise AssertionError(f"no question in {text[:200]!r}")


def world(request):
    """Even samples are right; the one-token judge cannot tell (0.5 each), math_resolve can
    (0.9 for right, 0.1 for wrong); the pairwise judge prefers the right answer."""
    text = request.prompt or request.last_user
    first, candidate = fenced(text, "RESPONSE A"), fenced(text)
    if first is not None:
        if request.prefix is None:
            return "Response A is right.\n\nVerdict: A"
        a_right = f"The answer is {gold_of(text)}." in first
        return Reply(
            "A",
            alternatives={
                0: {"A": math.log(0.8 if a_right else 0.2), "B": math.log(0.2 if a_right else 0.8)}
            },
        )
    if candidate is not None:
        right = f"The answer is {gold_of(text)}." in candidate
        if "solve the problem yourself" in text and request.prefix is None:
            return f"I get {gold_of(text)}.\n\nVerdict: 1"
        p_one = (0.9 if right else 0.1) if "solve the problem yourself" in text else 0.5
        return Reply("1", alternatives={0: {"1": math.log(p_one), "0": math.log(1 - p_one)}})
    gold = gold_of(text)
    if request.body.get("temperature") == 0.0 or request.choice % 2 == 0:
        return f"Working. The answer is {gold}."
    return f"Working. The answer is {int(gold) + 1000}."


def test_the_benchmark_measures_every_selection_and_verifier(loopback, tmp_path):
    from test_cli import ROOT, run

    for line in (ROOT / "data" / "gsm8k_test.jsonl").read_text().splitlines()[:2]:
        row = json.loads(line)
        GOLD[row["question"]] = row["answer"].split("####")[-1].strip().replace(",", "")
    server = loopback(world, flavour="vllm")
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "small_beats_large.py"),
        "--problems",
        "2",
        "--n",
        "2",
        "--out",
        str(tmp_path / "out"),
        "--base-url",
        server.base_url,
        "--small",
        "small",
        "--large",
        "large",
    ]
    done = run(command, server)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "larger model greedy: 100.0%" in out
    assert re.search(r"verifier math_solution: AUROC 0\.50", out)
    assert re.search(r"verifier math_resolve:reasoning: AUROC 1\.00", out)
    header = next(line for line in out.splitlines() if line.strip().startswith("n "))
    for column in ("majority", "naive", "weighted", "naive:resolve", "tournament", "pass"):
        assert column in header
    row = next(line for line in out.splitlines() if line.strip().startswith("2 "))
    assert row.split()[header.split().index("tournament")] == "100.0%"
    assert row.split()[header.split().index("naive:resolve")] == "100.0%"
    assert (tmp_path / "out" / "small_beats_large.png").is_file()

    requests = len(server.requests)
    again = run(command, server)
    assert again.returncode == 0, again.stderr
    assert len(server.requests) == requests  # everything was in the folders
