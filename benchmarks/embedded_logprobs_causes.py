"""Where llama-cpp-python's logprob cost goes, measured in-process on an embedded model.

For the ~700-token step-judge prompt of ``embedded_logprobs.py``, interleaved over rounds,
each part in the machine-wide CPU turn:

1. evaluating the prompt with the logits of every row (its server's ``logits_all=True``) and
   with those of the last row only (what the lean server computes);
2. log-softmax of every row, as a request with logprobs does in the non-streaming path, and
   of the one row a one-token verdict reads;
3. the top 10 of one row, as done at every generated token: a Python sort of the whole
   vocabulary, and ``lean_logprobs.top_indices`` (a partition).

    python benchmarks/embedded_logprobs_causes.py [--model 0.5b] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from functools import partial

from embedded_logprobs import judge_prompt
from llama_cpp import Llama

from ttc_agent.models.continuation import chatml
from ttc_agent.models.embedded import EMBEDDED_MODELS, assemble
from ttc_agent.models.lean_logprobs import top_indices
from ttc_agent.models.turn import LOCAL_CPU


async def timed(part: Callable[[], object]) -> float:
    async with LOCAL_CPU.taken():
        start = time.perf_counter()
        part()
        return time.perf_counter() - start


def evaluate(llama: Llama, tokens: list[int], every_row: bool) -> None:
    """Evaluate ``tokens`` afresh, with the logits of every row or of the last one only."""
    llama.reset()
    llama._logits_all = every_row  # what llama-cpp-python's eval reads
    try:
        llama.eval(tokens)
    finally:
        llama._logits_all = True


async def one_round(
    llama: Llama, tokens: list[int], every_row_first: bool, seconds: dict[str, list[float]]
) -> None:
    for every_row in (every_row_first, not every_row_first):
        label = "every row (server default)" if every_row else "last row only (lean)"
        wall = await timed(partial(evaluate, llama, tokens, every_row))
        seconds[f"evaluate the prompt, logits of {label}"].append(wall)
    rows = llama.scores[: len(tokens)]
    seconds["log-softmax of every row"].append(await timed(lambda: Llama.logits_to_logprobs(rows)))
    seconds["log-softmax of one row"].append(
        await timed(lambda: Llama.logits_to_logprobs(rows[-1:]))
    )
    row = Llama.logits_to_logprobs(rows[-1])
    seconds["top 10 of one row, Python sort"].append(
        await timed(lambda: sorted(zip(row, range(len(row)), strict=True), reverse=True)[:10])
    )
    seconds["top 10 of one row, top_indices"].append(await timed(lambda: top_indices(row, 10)))


async def main(name: str, rounds: int) -> None:
    path = str(assemble(EMBEDDED_MODELS[name]))
    llama = Llama(path, n_ctx=2048, n_threads=os.cpu_count() or 1, logits_all=True, verbose=False)
    seconds: dict[str, list[float]] = defaultdict(list)
    for round_ in range(rounds):
        text = chatml([*judge_prompt(round_), {"role": "assistant", "content": ""}])
        tokens = llama.tokenize(text.encode(), add_bos=False, special=True)
        await one_round(llama, tokens, round_ % 2 == 0, seconds)
    print(f"{name}: {len(tokens)} prompt tokens; median (min) of {rounds} rounds")
    for label, values in seconds.items():
        print(f"  {label:58} {statistics.median(values):8.4f} s ({min(values):.4f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="0.5b", choices=list(EMBEDDED_MODELS))
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.model, arguments.rounds))
