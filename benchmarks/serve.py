"""What ``ttc serve`` adds: time to first progress event, time to first answer token, and the
proxy's own latency in pass-through mode, against a loopback upstream with a fixed latency.

    python benchmarks/serve.py [--latency 0.1] [--requests 50]

Target: pass-through adds under 5 ms per request (median of direct vs proxied, same run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_serve import Proxy, handler

from ttc_agent.serve import ProxyConfig
from ttc_agent.testing import LoopbackServer

BODY = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}


def timed_posts(url: str, count: int) -> list[float]:
    times = []
    with httpx.Client() as client:
        client.post(f"{url}/chat/completions", json=BODY)  # warm the connection
        for _ in range(count):
            start = time.perf_counter()
            client.post(f"{url}/chat/completions", json=BODY).raise_for_status()
            times.append(time.perf_counter() - start)
    return times


def streamed(url: str, effort: str) -> tuple[float, float, float]:
    """Seconds to the first progress comment, to the first answer token, and to [DONE]."""
    body = BODY | {"reasoning_effort": effort, "stream": True}
    start = time.perf_counter()
    first_progress = first_token = None
    with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=60) as reply:
        for line in reply.iter_lines():
            now = time.perf_counter() - start
            if line.startswith(": ttc ") and first_progress is None:
                first_progress = now
            if line.startswith("data: {") and first_token is None:
                chunk = json.loads(line.removeprefix("data: "))
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    first_token = now
    return first_progress or float("nan"), first_token or float("nan"), time.perf_counter() - start


def main(latency: float, count: int) -> None:
    upstream = LoopbackServer(handler, honour_n=True, latency=latency)
    with upstream, Proxy(ProxyConfig(upstream=upstream.base_url)) as proxy:
        direct = timed_posts(upstream.base_url, count)
        proxied = timed_posts(proxy.url, count)
        added = statistics.median(proxied) - statistics.median(direct)
        print(f"upstream latency {latency * 1000:.0f} ms, {count} requests each, medians:")
        print(f"  direct {statistics.median(direct) * 1000:7.1f} ms, "
              f"through ttc serve {statistics.median(proxied) * 1000:7.1f} ms")  # fmt: skip
        print(f"  pass-through adds {added * 1000:.2f} ms per request   (target < 5 ms)")
        for effort in ("low", "medium"):
            progress, token, done = streamed(proxy.url, effort)
            print(
                f"  effort {effort:<6}: first progress event {progress * 1000:7.1f} ms, "
                f"first answer token {token * 1000:7.1f} ms, done {done * 1000:7.1f} ms"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    main(args.latency, args.requests)
