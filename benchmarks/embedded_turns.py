"""Two embedded servers on one CPU: why their requests take turns.

The 0.5B generator and the 1.5B judge each run a llama.cpp server that computes with every
core. This sends one request to each: alone, both at once, and both at once taking turns
(``ttc_agent.models.turn.LOCAL_CPU``, what ``OpenAIChat(embedded=...)`` uses), and prints the
wall time of each pair and its ratio to the requests run alone.

    python benchmarks/embedded_turns.py [--tokens 120]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from ttc_agent import OpenAIChat
from ttc_agent.models.embedded import EMBEDDED_MODELS, embedded_server
from ttc_agent.models.endpoint import Endpoint
from ttc_agent.models.turn import SharedTurn

STORY = "A lighthouse keeper counts the ships that pass at night and writes each one down. "
PROMPT = [{"role": "user", "content": STORY * 30 + "\nContinue this story."}]  # judge-sized


async def pair(urls: list[str], tokens: int, turn: SharedTurn | None, together: bool) -> float:
    models = [
        OpenAIChat(base_url=url, endpoint=Endpoint(url, None, timeout=1800, turn=turn))
        for url in urls
    ]
    calls = [model.sample(PROMPT, temperature=0.0, max_tokens=tokens) for model in models]
    start = time.monotonic()
    if together:
        await asyncio.gather(*calls)
    else:
        for call in calls:
            await call
    for model in models:
        await model.aclose()
    return time.monotonic() - start


async def main(tokens: int) -> None:
    urls = [embedded_server(EMBEDDED_MODELS[name]).base_url for name in ("0.5b", "1.5b")]
    await pair(urls, 4, None, together=False)  # warm up: load both models' weights
    alone = await pair(urls, tokens, None, together=False)
    print(f"one request to each, one after the other: {alone:6.1f} s")
    for label, turn in (("at once", None), ("at once, taking turns", SharedTurn())):
        seconds = await pair(urls, tokens, turn, together=True)
        print(f"one request to each, {label + ':':22} {seconds:6.1f} s ({seconds / alone:.1f}x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=120, help="tokens per request")
    asyncio.run(main(parser.parse_args().tokens))
