"""What best_of_n, beam_search and dvts add on top of the calls they must make.

Against the loopback server at a fixed latency per request, best_of_n with n=16 (16 samples, then
16 judge calls) is timed against:

- the critical path: two rounds of one request each (2 x latency);
- a raw reference measured in the same run: two rounds of ``asyncio.gather`` over plain
  ``AsyncOpenAI`` calls with the same payloads (n samples, then n judge calls).

Target: wall / reference <= 1.10. It also prints the prompt tokens billed for sampling when the
server honours ``n`` (target: one prompt's worth, not n).

beam_search (n=16, keep=4, 4 steps) and dvts (n=16, subtrees=4, 4 steps) with the logprob step
judge are timed the same way against 2 x steps rounds of plain calls (n step samples, then n
step judgements, per step); their critical path is 2 x steps x latency.

    python benchmarks/overhead.py [--n 16] [--latency 0.2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import statistics
import time
from collections.abc import Iterator

import openai

from ttc_agent import LLMStepJudge, OpenAIChat, RubricJudge, beam_search, best_of_n, dvts
from ttc_agent.testing import LoopbackServer, Reply, count_tokens, fenced, judge_reply
from ttc_agent.verifiers.rubric_judge import render_conversation

PROMPT = "Write a two-line poem about the sea."
CRITERIA = ["clarity", "style", "engagement", "relevance"]


def handler(request):
    candidate = fenced(request.last_user)
    if candidate is not None and "step" in candidate:  # the step judge: P(correct) from logprobs
        return Reply("1", alternatives={0: {"1": -0.1 - (request.index % 7) / 10, "0": -2.3}})
    if candidate is not None:
        return judge_reply(dict.fromkeys(CRITERIA, 1 + len(candidate) % 5))
    if request.prefix is not None or "steps" in request.last_user:
        return f"step {request.index}.{request.choice} of the solution\n\nnext"
    return f"The sea, draft {request.index}.{request.choice},\nroars and sighs."


def _serve(connection, honour_n: bool, latency: float) -> None:
    server = LoopbackServer(handler, honour_n=honour_n, latency=latency)
    server.start()
    connection.send(server.base_url)
    connection.recv()  # until the parent says stop
    server.stop()


@contextlib.contextmanager
def loopback_process(honour_n: bool, latency: float) -> Iterator[str]:
    """The loopback server in a process of its own, so that it does not share our GIL."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(
        target=_serve, args=(child, honour_n, latency), daemon=True
    )
    process.start()
    try:
        yield parent.recv()
    finally:
        parent.send("stop")
        process.join(5)


async def raw_reference(base_url: str, n: int, judge: RubricJudge) -> float:
    """Two rounds of plain AsyncOpenAI calls with the payloads best_of_n sends."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0)
    messages = [{"role": "user", "content": PROMPT}]
    judge_options = {
        "temperature": 0.0,
        "max_tokens": judge.max_tokens,
        "logprobs": True,
        "top_logprobs": judge.top_logprobs,
    }
    start = time.perf_counter()
    samples = await asyncio.gather(
        *(
            client.chat.completions.create(model="m", messages=messages, temperature=0.8)
            for _ in range(n)
        )
    )
    texts = [s.choices[0].message.content for s in samples]
    await asyncio.gather(
        *(
            client.chat.completions.create(
                model="m", messages=judge.messages(messages, text), **judge_options
            )
            for text in texts
        )
    )
    elapsed = time.perf_counter() - start
    await client.close()
    return elapsed


async def timed(node, prompt: str = PROMPT) -> float:
    start = time.perf_counter()
    await node.ainvoke(prompt)
    return time.perf_counter() - start


STEP_PROMPT = "Solve 12 x 13 in steps."


async def raw_step_reference(base_url: str, n: int, steps: int, judge: LLMStepJudge) -> float:
    """2 x steps rounds of plain calls: n step samples, then n step judgements, per step."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0)
    messages = [{"role": "user", "content": STEP_PROMPT}]
    conversation = render_conversation(messages)
    start = time.perf_counter()
    done: list[str] = []
    for _ in range(steps):
        prefix = [{"role": "assistant", "content": "\n\n".join(done) + "\n\n"}] if done else []
        samples = await asyncio.gather(
            *(
                client.chat.completions.create(
                    model="m",
                    messages=messages + prefix,
                    temperature=0.8,
                    stop=["\n\n"],
                    max_tokens=256,
                )
                for _ in range(n)
            )
        )
        texts = [s.choices[0].message.content for s in samples]
        await asyncio.gather(
            *(
                client.chat.completions.create(
                    model="m",
                    messages=judge.messages(conversation, [*done, text]),
                    temperature=0.0,
                    max_tokens=2,
                    logprobs=True,
                    top_logprobs=judge.top_logprobs,
                )
                for text in texts
            )
        )
        done.append(texts[0])
    elapsed = time.perf_counter() - start
    await client.close()
    return elapsed


async def step_strategies(n: int, latency: float, repeats: int, steps: int = 4) -> None:
    with loopback_process(honour_n=False, latency=latency) as base_url:
        model = OpenAIChat(  # the loopback server continues a final assistant message
            "m",
            base_url=base_url,
            api_key="k",
            max_concurrency=n,
            n_mode="parallel",
            continuation="prefill",
        )
        judge = LLMStepJudge(model)
        nodes = {
            "beam_search (keep=4)": lambda: beam_search(
                model, LLMStepJudge(model), n=n, keep=4, max_steps=steps
            ),
            "dvts (subtrees=4)": lambda: dvts(
                model, LLMStepJudge(model), n=n, subtrees=4, max_steps=steps
            ),
        }
        for name, make in nodes.items():
            walls, references = [], []
            await timed(make(), STEP_PROMPT)  # warm the connections
            for _ in range(repeats):
                references.append(await raw_step_reference(base_url, n, steps, judge))
                walls.append(await timed(make(), STEP_PROMPT))  # fresh judge: no cache carried over
            wall, reference = statistics.median(walls), statistics.median(references)
            critical = 2 * steps * latency
            print(f"{name}, n={n}, {steps} steps, latency {latency * 1000:.0f} ms")
            print(f"  wall {wall * 1000:8.1f} ms, raw reference {reference * 1000:8.1f} ms")
            print(f"  wall / critical path (2 x steps x latency): {wall / critical:6.3f}")
            print(f"  wall / raw reference: {wall / reference:6.3f}   (target <= 1.10)")
        await model.aclose()


async def main(n: int, latency: float, repeats: int) -> None:
    with loopback_process(honour_n=False, latency=latency) as base_url:
        model = OpenAIChat("m", base_url=base_url, api_key="k", max_concurrency=n, json_mode="off")
        judge = RubricJudge("writing_quality", model)
        node = best_of_n(model, judge, n=n)
        first = await timed(node)  # discovers that the server ignores n
        walls, references = [], []
        for _ in range(repeats):
            references.append(await raw_reference(base_url, n, judge))
            walls.append(await timed(node))
        await model.aclose()
    wall, reference = statistics.median(walls), statistics.median(references)
    critical = 2 * latency
    print(f"best_of_n n={n}, loopback latency {latency * 1000:.0f} ms, server ignores n")
    print(f"  best_of_n wall (median of {repeats}): {wall * 1000:8.1f} ms")
    print(f"  raw reference (median of {repeats}):  {reference * 1000:8.1f} ms")
    print(f"  wall / critical path (2 x latency): {wall / critical:6.3f}")
    print(f"  raw reference / critical path:      {reference / critical:6.3f}")
    print(f"  wall / raw reference:               {wall / reference:6.3f}   (target <= 1.10)")
    print(f"  first call, discovering that n is ignored: {first * 1000:.1f} ms")

    with loopback_process(honour_n=True, latency=latency) as base_url:
        async with OpenAIChat("m", base_url=base_url, api_key="k") as model:
            result = await best_of_n(model, RubricJudge("writing_quality", model), n=n).ainvoke(
                PROMPT
            )
    one_prompt = count_tokens(PROMPT)
    billed = result.usage.generation.prompt_tokens
    print(f"server honours n: {result.usage.generation.calls} sampling request(s)")
    print(
        f"  prompt tokens billed for sampling: {billed} (one prompt = {one_prompt}, n prompts = "
        f"{n * one_prompt})   target: {one_prompt}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.latency, args.repeats))
    asyncio.run(step_strategies(args.n, args.latency, args.repeats))
