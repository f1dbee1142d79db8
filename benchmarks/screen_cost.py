"""What the injection screen costs a judge per candidate, by the candidate's length.

Each judge call screens its candidate (``ttc_agent.verifiers.injection.detect``); this times it
on ordinary prose (no findings: the common case) of a few lengths, in English and with one
accented letter (which takes the character-by-character Unicode reading), median of
``--repeats`` runs of ``--calls`` calls each.

    python benchmarks/screen_cost.py [--calls 50] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from ttc_agent.verifiers.injection import detect

CRITERIA = ["clarity", "style", "engagement", "relevance"]  # writing_quality's
SENTENCE = "The tide came in slowly, and the gulls argued over what it left behind. "


def per_call_ms(text: str, calls: int, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            detect(text, CRITERIA)
        runs.append((time.perf_counter() - start) / calls)
    return statistics.median(runs) * 1000


def main(args: argparse.Namespace) -> None:
    print(f"detect() per candidate, ms (median of {args.repeats} x {args.calls} calls)")
    print(f"  {'characters':>10} {'ASCII':>8} {'accented':>9}")
    for sentences in (1, 4, 16, 64):
        text = SENTENCE * sentences
        accented = text.replace("slowly", "slówly", 1)
        ascii_ms = per_call_ms(text, args.calls, args.repeats)
        accented_ms = per_call_ms(accented, args.calls, args.repeats)
        print(f"  {len(text):>10} {ascii_ms:>8.2f} {accented_ms:>9.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    main(parser.parse_args())
