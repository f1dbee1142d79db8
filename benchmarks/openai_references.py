"""The references ``benchmarks/overhead.py`` times best_of_n against: best_of_n's payloads sent
with plain openai clients and nothing of ttc-agent around them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import openai

from ttc_agent import RubricJudge

PROMPT = "Write a two-line poem about the sea."


async def raw_reference(client: openai.AsyncOpenAI, n: int, judge: RubricJudge) -> None:
    """Two rounds of plain AsyncOpenAI calls with the payloads best_of_n sends."""
    messages = [{"role": "user", "content": PROMPT}]
    judge_options: dict[str, Any] = {"temperature": 0.0, "max_tokens": judge.max_tokens}
    if judge.mode != "structured":  # as the judge asks
        judge_options |= {"logprobs": True, "top_logprobs": judge.top_logprobs}
    samples = await asyncio.gather(
        *(
            client.chat.completions.create(model="m", messages=messages, temperature=0.8)
            for _ in range(n)
        )
    )
    texts = [s.choices[0].message.content or "" for s in samples]
    await asyncio.gather(
        *(
            client.chat.completions.create(
                model="m", messages=judge.messages(messages, text), **judge_options
            )
            for text in texts
        )
    )


async def openai_floor(
    client: openai.AsyncOpenAI, n: int, judge_body: Callable[[str], dict[str, Any]]
) -> None:
    """One request for n samples, then one judge request per sample (``judge_body(sample)``),
    posted through the openai client on aiohttp and read with ``json.loads``: what any library
    sending these requests through the openai package pays at least."""
    messages = [{"role": "user", "content": PROMPT}]
    sampled = await client.post(
        "/chat/completions",
        body={"model": "m", "messages": messages, "n": n, "temperature": 0.8},
        cast_to=bytes,
    )
    texts = [choice["message"]["content"] for choice in json.loads(sampled)["choices"]]
    verdicts = await asyncio.gather(
        *(client.post("/chat/completions", body=judge_body(text), cast_to=bytes) for text in texts)
    )
    for verdict in verdicts:
        json.loads(verdict)


def rubric_judge_body(judge: RubricJudge) -> Callable[[str], dict[str, Any]]:
    """The body of ``judge``'s request for one candidate (without its JSON schema)."""
    messages = [{"role": "user", "content": PROMPT}]
    options: dict[str, Any] = {"temperature": 0.0, "max_tokens": judge.max_tokens}
    if judge.mode != "structured":  # as the judge asks
        options |= {"logprobs": True, "top_logprobs": judge.top_logprobs}
    return lambda text: {"model": "m", "messages": judge.messages(messages, text), **options}
