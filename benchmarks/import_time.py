"""What importing ttc-agent costs: each statement in a fresh interpreter, the median of
``--runs`` runs, and the heavy dependencies each one loads.

    python benchmarks/import_time.py --runs 7

``import ttc_agent`` loads none of openai, langgraph and langchain-core: each exported name is
imported when first read (``ttc_agent/_lazy.py``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

STATEMENTS = [
    "import ttc_agent",
    "from ttc_agent import OpenAIChat",
    "from ttc_agent import best_of_n",
    "from ttc_agent import OpenAIChat, RubricJudge, best_of_n",
    "import ttc_agent.cli",
]
HEAVY = ("openai", "langgraph", "langchain_core", "pydantic", "httpx")
PROBE = """
import sys, time
start = time.perf_counter()
{statement}
took = time.perf_counter() - start
heavy = [name for name in {heavy!r} if name in sys.modules]
print(took, ",".join(heavy))
"""


def measure(statement: str, runs: int) -> tuple[float, str]:
    """Median seconds of ``statement`` in fresh interpreters, and the heavy modules it loaded."""
    times, loaded = [], ""
    for _ in range(runs):
        code = PROBE.format(statement=statement, heavy=HEAVY)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        out.check_returncode()
        took, loaded = out.stdout.split(" ", 1)
        times.append(float(took))
    return statistics.median(times), loaded.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"{'statement':<56} {'median s':>9}  loads")
    for statement in STATEMENTS:
        seconds, loaded = measure(statement, args.runs)
        print(f"{statement:<56} {seconds:>9.3f}  {loaded or '-'}")


if __name__ == "__main__":
    main()
