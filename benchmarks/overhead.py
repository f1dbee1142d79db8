"""What best_of_n, beam_search and dvts add on top of the calls they must make, beside its_hub.

Against the loopback server (in a process of its own) at a fixed latency per request, best_of_n
with an LLM judge (n samples, then n judge calls) is timed for N = 4, 8, 16, 32 and 64 beside:

- its_hub 1.2's ``BestOfN`` with its ``LLMJudge`` (the ``bench`` extra), on the same server;
- a raw reference: two rounds of ``asyncio.gather`` over plain ``AsyncOpenAI`` calls with the
  payloads best_of_n sends (n samples, then n judge calls);
- the floor of any library going through the openai package: best_of_n's own requests (one
  with n, then n judge calls) posted through the openai client on aiohttp and read with
  ``json.loads``, with nothing else done; and the same with its_hub's judge requests (its short
  prompt and one-score reply) in place of best_of_n's.

The five run interleaved (median of ``--repeats``); the table gives wall / critical path, where
the critical path is two rounds (2 x latency), and the requests each sent. Once every system has
run once, the objects left by the imports (of all five) are frozen out of the garbage
collector's sweeps: a full sweep of them takes over 100 ms here, and which system it lands in
is chance. The server honours ``n`` as vLLM and OpenAI do (``--ignore-n``: one choice per
request, as llama.cpp). It also prints the prompt tokens billed for sampling when the server
honours ``n`` (target: one prompt's worth, not n).

beam_search (n=16, keep=4, 4 steps) and dvts (n=16, subtrees=4, 4 steps) with the logprob step
judge are timed against 2 x steps rounds of plain calls (n step samples, then n step
judgements, per step); their critical path is 2 x steps x latency.

    python benchmarks/overhead.py [--ns 4,8,16,32,64] [--latency 0.2] [--repeats 5] [--ignore-n]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from functools import partial

import openai
from its_hub_peer import ITS_HUB_JUDGE, ItsHubBestOfN, its_hub_judge_body, its_hub_verdict
from loopback_process import loopback_process
from openai_references import PROMPT, openai_floor, raw_reference, rubric_judge_body

from ttc_agent import LLMStepJudge, OpenAIChat, RubricJudge, beam_search, best_of_n, dvts
from ttc_agent.testing import Reply, count_tokens, fenced, judge_reply
from ttc_agent.verifiers.judge_prompt import render_conversation

CRITERIA = ["clarity", "style", "engagement", "relevance"]


def handler(request):
    candidate = fenced(request.last_user)
    if candidate is not None and "step" in candidate:  # the step judge: P(correct) from logprobs
        return Reply("1", alternatives={0: {"1": -0.1 - (request.index % 7) / 10, "0": -2.3}})
    if candidate is not None:
        return judge_reply(dict.fromkeys(CRITERIA, 1 + len(candidate) % 5))
    if request.last_user.startswith(ITS_HUB_JUDGE):
        return its_hub_verdict(request.index)
    if request.prefix is not None or "steps" in request.last_user:
        return f"step {request.index}.{request.choice} of the solution\n\nnext"
    return f"The sea, draft {request.index}.{request.choice},\nroars and sighs."


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
    with loopback_process(handler, honour_n=False, latency=latency) as server:
        base_url = server.base_url
        model = OpenAIChat(  # the loopback server continues a final assistant message
            "m",
            base_url=base_url,
            api_key="k",
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


SYSTEMS = (
    "ttc-agent best_of_n + RubricJudge",
    "its_hub 1.2.0 BestOfN + LLMJudge",
    "raw AsyncOpenAI, two gather rounds",
    "floor: openai+aiohttp, same requests",
    "floor with its_hub's judge requests",
)


async def peers(
    ns: list[int], latency: float, repeats: int, honour_n: bool, judge_mode: str | None = None
) -> bool:
    """The side-by-side table; whether ttc-agent's wall was at or below its_hub's at every N."""
    walls: dict[tuple[str, int], list[float]] = {}
    requests: dict[tuple[str, int], int] = {}
    with loopback_process(handler, honour_n=honour_n, latency=latency) as server:
        model = OpenAIChat("m", base_url=server.base_url, api_key="k")  # the defaults
        judge = RubricJudge("writing_quality", model, mode=judge_mode)
        its_hub = ItsHubBestOfN(server.base_url)
        raw = openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        floor = openai.AsyncOpenAI(
            base_url=server.base_url,
            api_key="k",
            max_retries=0,
            http_client=openai.DefaultAioHttpClient(),
        )
        its_hub_body = partial(its_hub_judge_body, PROMPT)
        for n in ns:
            node = best_of_n(model, judge, n=n)
            runs: dict[str, Callable[[], Awaitable[object]]] = {
                SYSTEMS[0]: lambda node=node: node.ainvoke(PROMPT),
                SYSTEMS[1]: lambda n=n: its_hub.run(PROMPT, n),
                SYSTEMS[2]: lambda n=n: raw_reference(raw, n, judge),
                SYSTEMS[3]: lambda n=n: openai_floor(floor, n, rubric_judge_body(judge)),
                SYSTEMS[4]: lambda n=n: openai_floor(floor, n, its_hub_body),
            }
            for run in runs.values():  # connections open, and ttc-agent learns about n
                await run()
                server.take_count()
            gc.collect()
            gc.freeze()  # the imports' objects (all three systems') out of the collector's sweeps
            for repeat in range(repeats):
                order = list(runs)[repeat % len(runs) :] + list(runs)[: repeat % len(runs)]
                for name in order:
                    gc.collect()  # no system pays for the garbage another left
                    start = time.perf_counter()
                    await runs[name]()
                    walls.setdefault((name, n), []).append(time.perf_counter() - start)
                    requests[name, n] = server.take_count()
        await model.aclose()
        await its_hub.aclose()
        await raw.close()
        await floor.close()
    critical = 2 * latency
    print(
        f"best_of_n with an LLM judge, loopback at {latency * 1000:.0f} ms per request, server "
        f"{'honours' if honour_n else 'ignores'} n; median of {repeats}, interleaved"
    )
    print(f"wall / critical path (2 rounds = {critical * 1000:.0f} ms), (requests per run)")
    print(f"  {'system':36}" + "".join(f"{f'N={n}':>13}" for n in ns))
    for name in SYSTEMS:
        cells = [
            f"{statistics.median(walls[name, n]) / critical:.2f} ({requests[name, n]})" for n in ns
        ]
        print(f"  {name:36}" + "".join(f"{cell:>13}" for cell in cells))
    ahead = [
        statistics.median(walls[SYSTEMS[0], n]) <= statistics.median(walls[SYSTEMS[1], n])
        for n in ns
    ]
    print(f"ttc-agent at or below its_hub's wall at every N: {'yes' if all(ahead) else 'no'}")
    return all(ahead)


async def billing(n: int) -> None:
    """The prompt tokens billed for sampling n candidates on a server that honours n."""
    with loopback_process(handler, honour_n=True, latency=0.0) as server:
        async with OpenAIChat("m", base_url=server.base_url, api_key="k") as model:
            node = best_of_n(model, RubricJudge("writing_quality", model), n=n)
            result = await node.ainvoke(PROMPT)
    one_prompt = count_tokens(PROMPT)
    billed = result.usage.generation.prompt_tokens
    print(f"server honours n: {result.usage.generation.calls} sampling request(s)")
    print(
        f"  prompt tokens billed for sampling: {billed} (one prompt = {one_prompt}, n prompts = "
        f"{n * one_prompt})   target: {one_prompt}"
    )


async def main(args: argparse.Namespace) -> None:
    ns = [int(n) for n in args.ns.split(",")]
    await peers(ns, args.latency, args.repeats, not args.ignore_n, args.judge_mode)
    if not args.table_only:
        await billing(args.step_n)
        await step_strategies(args.step_n, args.latency, args.repeats)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ns", default="4,8,16,32,64", help="the N of the table, comma-separated")
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ignore-n", action="store_true", help="a server that ignores n")
    parser.add_argument("--step-n", type=int, default=16, help="n of beam_search and dvts")
    parser.add_argument(
        "--judge-mode", choices=["auto", "logprobs", "structured"], help="RubricJudge's mode"
    )
    parser.add_argument("--table-only", action="store_true", help="only the table")
    asyncio.run(main(parser.parse_args()))
