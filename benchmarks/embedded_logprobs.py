"""What logprobs cost on the embedded model, with llama-cpp-python's server as it comes
(``plain``) and with ttc-agent's lean logprobs (``lean``, what ``OpenAIChat`` starts).

Both servers run side by side; the requests are interleaved, round after round, each taking
the machine-wide CPU turn (``ttc_agent.models.turn.LOCAL_CPU``), so that other work slows both
alike (after a second's pause in the turn, so that the server that answered last has gone
idle). Two kinds of request:

- a verdict: a step judge's ~700-token prompt, one token, with no logprobs, with the top 10,
  and with the top 10 streamed (``plain`` only: the streaming path computes fewer rows);
  every prompt starts with its own number, so no request reuses another's KV cache;
- a generation: a short prompt, ``--tokens`` tokens, with and without the top 10 logprobs:
  seconds per generated token.

Then, on the lean server, the judge of ``ttc_agent.verifiers.verdict``: its reasoning without
logprobs, and the verdict token read by a one-token continuation of it.

    python benchmarks/embedded_logprobs.py [--models 0.5b 1.5b] [--rounds 5] [--tokens 32] [--raw]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import defaultdict
from typing import Any

import openai

from ttc_agent import OpenAIChat
from ttc_agent.models.continuation import chatml
from ttc_agent.models.embedded import EMBEDDED_MODELS, EmbeddedServer
from ttc_agent.models.turn import LOCAL_CPU
from ttc_agent.verifiers.step_judge import LLMStepJudge

NOWHERE = "http://127.0.0.1:9/v1"  # the judge is only asked for its messages
COUNTING = [{"role": "user", "content": "Count from 1 to 200, separated by commas."}]
TOP = 10
SETTLE = 1.0  # seconds in the turn before each request: the other server's threads go idle


def judge_prompt(number: int) -> list[dict[str, Any]]:
    """A step judge's prompt of about 700 tokens: a GSM8K problem, four steps of a solution."""
    from gsm8k_data import problems  # benchmarks/ is on the path when run as a script

    question, _ = problems(1)[0]
    steps = [
        "Janet's ducks lay 16 eggs per day. She eats 3 for breakfast and bakes muffins with 4, "
        "so she uses 3 + 4 = 7 eggs every day before she goes to the market. " * 2,
        "That leaves 16 - 7 = 9 eggs a day to sell. Each egg sells for $2 at the farmers' "
        "market, and she sells every one of the eggs that she has left. " * 2,
        "The eggs she sells earn 9 * 2 = 18 dollars a day. Checking: 7 eggs used plus 9 sold "
        "makes 16, which is every egg the ducks lay in a day. " * 2,
        "So Janet makes 18 dollars every day at the farmers' market. The answer is 18.",
    ]
    conversation = f"user: {question}"
    messages = LLMStepJudge(OpenAIChat("none", base_url=NOWHERE, api_key="none")).messages(
        conversation, steps
    )
    messages[0] = {**messages[0], "content": f"Judgement {number}. {messages[0]['content']}"}
    return messages


async def timed(
    client: openai.AsyncOpenAI, stream: bool = False, **request: Any
) -> tuple[float, Any]:
    """Seconds one request takes (in its CPU turn), and its reply (None for a stream)."""
    endpoint: Any = client.completions if "prompt" in request else client.chat.completions
    async with LOCAL_CPU.taken():
        await asyncio.sleep(SETTLE)
        start = time.monotonic()
        reply = await endpoint.create(**request, stream=stream)
        if stream:
            async for _ in reply:
                pass
            reply = None
        return time.monotonic() - start, reply


async def measure(name: str, rounds: int, tokens: int) -> dict[str, list[float]]:
    spec = EMBEDDED_MODELS[name]
    servers = {"plain": EmbeddedServer(spec, lean_logprobs=False), "lean": EmbeddedServer(spec)}
    for server in servers.values():
        server.start()
    clients = {
        k: openai.AsyncOpenAI(base_url=s.base_url, api_key="none", timeout=3600)
        for k, s in servers.items()
    }
    model = spec.alias
    lp = {"logprobs": True, "top_logprobs": TOP}
    verdicts = {
        "verdict, no logprobs": ({}, False, ("plain", "lean")),
        f"verdict, top {TOP} logprobs": (lp, False, ("plain", "lean")),
        f"verdict, top {TOP} logprobs, streamed": (lp, True, ("plain",)),
    }
    generations = {"generation, no logprobs": {}, f"generation, top {TOP} logprobs": lp}
    seconds: dict[str, list[float]] = defaultdict(list)
    number = 0
    for kind in ("plain", "lean"):  # warm up: page the weights in
        await timed(clients[kind], model=model, messages=judge_prompt(-1), max_tokens=1)
    for round_ in range(rounds):
        order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
        for label, (extra, stream, kinds) in verdicts.items():
            for kind in (k for k in order if k in kinds):
                number += 1
                request = {"model": model, "messages": judge_prompt(number), "max_tokens": 1}
                wall, reply = await timed(clients[kind], stream, **request, **extra, temperature=0)
                seconds[f"{label}|{kind}"].append(wall)
                if reply is not None:
                    seconds["prompt tokens"] = [reply.usage.prompt_tokens]
        for label, extra in generations.items():
            for kind in order:
                request = {"model": model, "messages": COUNTING, "max_tokens": tokens}
                wall, reply = await timed(clients[kind], **request, **extra, temperature=0.0)
                seconds[f"{label}|{kind}"].append(wall / reply.usage.completion_tokens)
        number += 1
        await reason_then_verdict(clients["lean"], model, number, seconds)
    for client in clients.values():
        await client.close()
    for server in servers.values():
        server.stop()
    return seconds


async def reason_then_verdict(
    client: openai.AsyncOpenAI, model: str, number: int, seconds: dict[str, list[float]]
) -> None:
    """The reasoning (no logprobs, up to 64 tokens), then the one-token verdict continued from
    it, as ``ttc_agent.verifiers.verdict`` asks for them."""
    messages = judge_prompt(number)
    wall, reply = await timed(client, model=model, messages=messages, max_tokens=64, temperature=0)
    seconds["reasoning, 64 tokens, no logprobs|lean"].append(wall)
    prefix = (reply.choices[0].message.content or "") + "\nVerdict: "
    prompt = chatml([*messages, {"role": "assistant", "content": prefix}])
    wall, _ = await timed(
        client, model=model, prompt=prompt, max_tokens=1, logprobs=TOP, temperature=0.0
    )
    seconds[f"verdict continued from it, top {TOP} logprobs|lean"].append(wall)


def report(name: str, seconds: dict[str, list[float]], raw: bool) -> None:
    """A table of medians (and minima: the least disturbed by other work on the machine)."""
    print(
        f"\n{name}: median (min) of {len(seconds['verdict, no logprobs|plain'])} rounds; "
        f"verdict prompts of {seconds['prompt tokens'][0]} tokens"
    )
    print(f"{'request':46} {'plain':>15} {'lean':>15} {'lean/plain':>10}")
    labels = dict.fromkeys(key.split("|")[0] for key in seconds if "|" in key)
    for label in labels:
        plain, lean = (seconds.get(f"{label}|{kind}") for kind in ("plain", "lean"))
        unit = " s/token" if label.startswith("generation") else " s"
        cells = [
            f"{statistics.median(v):7.3f} ({min(v):5.3f})" if v else f"{'-':>15}"
            for v in (plain, lean)
        ]
        ratio = (
            f"{statistics.median(lean) / statistics.median(plain):10.2f}" if plain and lean else ""
        )
        print(f"{label + unit:46} {cells[0]} {cells[1]} {ratio}")
        for kind, values in (("plain", plain), ("lean", lean)):
            if raw and values:
                print(f"    {kind}: {', '.join(f'{v:.3f}' for v in values)}")


async def main(models: list[str], rounds: int, tokens: int, raw: bool) -> None:
    for name in models:
        report(name, await measure(name, rounds, tokens), raw)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=["0.5b", "1.5b"], choices=list(EMBEDDED_MODELS)
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--tokens", type=int, default=32, help="tokens per generation")
    parser.add_argument("--raw", action="store_true", help="print every round's figure too")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.models, arguments.rounds, arguments.tokens, arguments.raw))
