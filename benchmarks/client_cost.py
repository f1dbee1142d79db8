"""The client's CPU per request: what each way of sending a judge request costs the caller.

Against the loopback server in another process, at zero latency, each way sends the same
judge request (a RubricJudge prompt, logprobs on) ``--requests`` times, ``--concurrency`` at
a time; ``time.process_time()`` in this process, divided by the requests, is the client's CPU
per request. Ways are interleaved over ``--repeats`` trials and the median is printed. On a
machine with few cores, and in any busy service, this CPU is latency: a round of n requests
costs n times it before the last request is on the wire.

    python benchmarks/client_cost.py [--requests 800] [--concurrency 16] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import openai
from loopback_process import loopback_process

from ttc_agent import OpenAIChat, RubricJudge
from ttc_agent.testing import fenced, judge_reply

CRITERIA = ["clarity", "style", "engagement", "relevance"]
PROMPT = [{"role": "user", "content": "Write a two-line poem about the sea."}]
CANDIDATE = "The sea, draft one,\nroars and sighs."

Send = Callable[[], Awaitable[str]]


def handler(request: Any) -> Any:
    candidate = fenced(request.last_user)
    return judge_reply(dict.fromkeys(CRITERIA, 1 + len(candidate or "") % 5))


def judge_body() -> dict[str, Any]:
    judge = RubricJudge("writing_quality", OpenAIChat("m", base_url="http://x/v1", api_key="k"))
    return {
        "model": "m",
        "messages": judge.messages(PROMPT, CANDIDATE),
        "temperature": 0.0,
        "max_tokens": judge.max_tokens,
        "logprobs": True,
        "top_logprobs": judge.top_logprobs,
    }


async def openai_typed(base_url: str, body: dict[str, Any], aiohttp_transport: bool) -> Any:
    http = {"http_client": openai.DefaultAioHttpClient()} if aiohttp_transport else {}
    client = openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0, **http)

    async def send() -> str:
        reply = await client.chat.completions.create(**body)
        return reply.choices[0].message.content or ""

    return send, client.close


async def openai_post(base_url: str, body: dict[str, Any], aiohttp_transport: bool) -> Any:
    http = {"http_client": openai.DefaultAioHttpClient()} if aiohttp_transport else {}
    client = openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0, **http)

    async def send() -> str:
        reply = json.loads(await client.post("/chat/completions", body=body, cast_to=bytes))
        return reply["choices"][0]["message"]["content"]

    return send, client.close


async def ttc_agent(base_url: str, body: dict[str, Any]) -> Any:
    model = OpenAIChat("m", base_url=base_url, api_key="k")
    options = {"temperature": 0.0, "max_tokens": body["max_tokens"]}

    async def send() -> str:
        [reply] = await model.sample(body["messages"], top_logprobs=body["top_logprobs"], **options)
        return reply.text

    return send, model.aclose


async def aiohttp_alone(base_url: str, body: dict[str, Any]) -> Any:
    session = aiohttp.ClientSession()
    headers = {"Authorization": "Bearer k"}

    async def send() -> str:
        async with session.post(f"{base_url}/chat/completions", json=body, headers=headers) as r:
            return (await r.json())["choices"][0]["message"]["content"]

    return send, session.close


WAYS = {
    "openai, httpx, typed reply (create)": lambda u, b: openai_typed(u, b, False),
    "openai, aiohttp, typed reply (create)": lambda u, b: openai_typed(u, b, True),
    "openai, httpx, post -> json.loads": lambda u, b: openai_post(u, b, False),
    "openai, aiohttp, post -> json.loads": lambda u, b: openai_post(u, b, True),
    "ttc-agent OpenAIChat.sample (default)": ttc_agent,
    "aiohttp alone (its_hub's way), reference": aiohttp_alone,
}


async def trial(send: Send, requests: int, concurrency: int) -> tuple[float, float]:
    """CPU and wall seconds per request over ``requests`` requests."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(requests // concurrency):
        texts = await asyncio.gather(*(send() for _ in range(concurrency)))
        assert all(texts), "an empty reply: the request failed to do its work"
    done = requests // concurrency * concurrency
    return (time.process_time() - cpu) / done, (time.perf_counter() - wall) / done


async def main(requests: int, concurrency: int, repeats: int) -> None:
    body = judge_body()
    cpu: dict[str, list[float]] = {name: [] for name in WAYS}
    wall: dict[str, list[float]] = {name: [] for name in WAYS}
    with loopback_process(handler, honour_n=True, latency=0.0) as server:
        senders = {name: await make(server.base_url, body) for name, make in WAYS.items()}
        for send, _ in senders.values():
            await trial(send, 2 * concurrency, concurrency)  # connections open, caches warm
        for _ in range(repeats):
            for name, (send, _) in senders.items():
                spent, took = await trial(send, requests, concurrency)
                cpu[name].append(spent)
                wall[name].append(took)
        for _, close in senders.values():
            await close()
    print(
        f"client CPU per judge request: {requests} requests, {concurrency} at a time, zero "
        f"latency, median of {repeats} interleaved trials"
    )
    print(f"  {'way':44} {'CPU ms':>7} {'wall ms':>8}")
    for name in WAYS:
        median_cpu, median_wall = statistics.median(cpu[name]), statistics.median(wall[name])
        print(f"  {name:44} {median_cpu * 1000:7.2f} {median_wall * 1000:8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency, args.repeats))
