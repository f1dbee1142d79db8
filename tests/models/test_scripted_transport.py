"""The transport seam: ``OpenAIChat(http_client=...)`` on ``TransportServer`` (no socket, no
thread) for strategy logic, answering a script exactly as the loopback server does over HTTP."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from ttc_agent import RubricJudge, best_of_n
from ttc_agent.confidence import GroupWatch
from ttc_agent.models.endpoint import Endpoint
from ttc_agent.strategies.beam_search import beam_search
from ttc_agent.strategies.majority_vote import majority_vote
from ttc_agent.testing import Fault, Reply, TransportServer, confident_reply, fenced, judge_reply
from ttc_agent.verifiers.step_judge import LLMStepJudge

PROMPT = [{"role": "user", "content": "Count."}]
HELPFULNESS = ["correctness", "completeness", "specificity", "clarity"]
CHAT = {"model": "m", "messages": [{"role": "user", "content": "What is 2 + 2?"}]}
REQUESTS = {
    "chat": ("POST", "/v1/chat/completions", CHAT),
    "n, stop and max_tokens": (
        "POST",
        "/v1/chat/completions",
        CHAT | {"n": 3, "stop": ["."], "max_tokens": 4},
    ),
    "logprobs": ("POST", "/v1/chat/completions", CHAT | {"logprobs": True, "top_logprobs": 2}),
    "text completion": (
        "POST",
        "/v1/completions",
        {"model": "m", "prompt": "2 + 2 =", "logprobs": 1},
    ),
    "stream": (
        "POST",
        "/v1/chat/completions",
        CHAT | {"stream": True, "stream_options": {"include_usage": True}},
    ),
    "models": ("GET", "/v1/models", None),
    "apply-template": ("POST", "/apply-template", {"messages": CHAT["messages"]}),
    "unknown path": ("POST", "/chat/completions", CHAT),
    "injected fault": ("POST", "/v1/chat/completions", CHAT | {"fault": True}),
    "vllm refusal": (
        "POST",
        "/v1/chat/completions",
        CHAT | {"continue_final_message": True, "add_generation_prompt": True},
    ),
    "handler failure": ("POST", "/v1/chat/completions", CHAT | {"break": True}),
}


def script(request):
    if request.body.get("break"):
        raise RuntimeError("a broken script")
    if request.body.get("fault"):
        return Fault.rate_limit(0.0)
    tools = (("add", {"a": 2, "b": 2}),) if request.choice == 1 else ()
    return Reply(
        f"It is 4. Choice {request.choice}.",
        alternatives={6: {"4": -0.1, "5": -2.4}},
        tool_calls=tools,
    )


async def exchange(client: httpx.AsyncClient, base: str, case: str) -> tuple[int, dict, str]:
    method, path, body = REQUESTS[case]
    root = base.removesuffix("/v1")
    headers = {"Authorization": "Bearer k"}
    response = await client.request(method, root + path, json=body, headers=headers)
    return response.status_code, dict(response.headers), response.text


@pytest.mark.parametrize("case", list(REQUESTS))
async def test_the_transport_answers_a_script_as_the_loopback_server_does(loopback, case):
    options = {"api_key": "k", "flavour": "llamacpp" if case == "apply-template" else "vllm"}
    options |= {"stop_reason": True, "honour_n": True}
    over_http = loopback(script, **options)
    scripted = TransportServer(script, **options)
    async with httpx.AsyncClient() as client, scripted.http_client() as seam:
        status, headers, text = await exchange(client, over_http.base_url, case)
        seam_status, seam_headers, seam_text = await exchange(seam, scripted.base_url, case)
    assert (seam_status, seam_text) == (status, text)
    assert seam_headers.get("retry-after") == headers.get("retry-after")
    assert seam_headers["content-type"].split(";")[0] == headers["content-type"].split(";")[0]
    recorded = [(r.body, r.usage) for r in scripted.requests]
    assert recorded == [(r.body, r.usage) for r in over_http.requests]
    assert scripted.lookups == over_http.lookups
    assert [repr(e) for e in scripted.errors] == [repr(e) for e in over_http.errors]


async def test_a_key_left_out_is_refused_alike(loopback):
    over_http, scripted = loopback(script, api_key="k"), TransportServer(script, api_key="k")
    async with httpx.AsyncClient() as client, scripted.http_client() as seam:
        plain = await client.post(over_http.base_url + "/chat/completions", json=CHAT)
        seamed = await seam.post(scripted.base_url + "/chat/completions", json=CHAT)
    assert (seamed.status_code, seamed.json()) == (plain.status_code, plain.json()) != (200,)


async def test_an_endpoint_sends_through_the_http_client_it_is_given():
    server = TransportServer(lambda request: "through the seam")
    endpoint = Endpoint(server.base_url, "k", http_client=server.http_client())
    client, _ = await endpoint.client()
    assert isinstance(client._client, httpx.AsyncClient)
    assert not isinstance(client._client, openai.DefaultAioHttpClient)  # replaced, not wrapped
    reply = await endpoint.post("/chat/completions", CHAT, read=json.loads)
    await endpoint.aclose()
    assert reply["choices"][0]["message"]["content"] == "through the seam"
    assert server.requests[0].headers["authorization"] == "Bearer k"


async def test_an_endpoint_without_one_keeps_the_aiohttp_transport():
    endpoint = Endpoint("http://127.0.0.1:9/v1", "k")
    client, _ = await endpoint.client()
    assert isinstance(client._client, openai.DefaultAioHttpClient)
    await endpoint.aclose()


async def test_majority_vote_logic_on_the_transport(scripted_model):
    answers = iter(
        [r"\boxed{4}", r"\boxed{5}", r"so \boxed{4}", r"\boxed{3}", r"\boxed{4.0}", "", ""]
    )
    server, model = scripted_model(lambda request: next(answers), honour_n=False)
    result = await majority_vote(model, n=5).ainvoke("What is 2 + 2?")
    assert result.chosen == 0
    assert sorted(result.group_scores.values()) == [1.0, 1.0, 3.0]
    assert len(server.requests) == 5 and server.requests[0].body["n"] == 5
    assert "n" not in server.requests[1].body  # one choice for n=5: the rest one by one
    await model.sample([{"role": "user", "content": "Again"}], 2)
    assert [r.body.get("n") for r in server.requests[5:]] == [None, None]  # remembered


async def test_best_of_n_picks_the_judges_favourite_on_the_transport(scripted_model):
    quality = {"Paris.": 5, "Lyon.": 2, "Marseille.": 1}
    answers = iter(quality)

    def handler(request):
        candidate = fenced(request.last_user)
        if candidate is not None:
            return judge_reply(dict.fromkeys(HELPFULNESS, quality[candidate]))
        return next(answers)

    _, model = scripted_model(handler, honour_n=False)
    judge = RubricJudge("helpfulness", model, mode="structured")
    result = await best_of_n(model, judge, n=3).ainvoke("Capital of France?")
    assert result.answer == "Paris."
    assert [c.score.value for c in result.candidates] == [5.0, 2.0, 1.0]


async def test_beam_search_continues_steps_on_the_transport(scripted_model):
    def handler(request):
        if fenced(request.last_user) is not None:  # the step judge: sure the step is right
            return Reply("1", alternatives={0: {"1": -0.1, "0": -2.4}})
        depth = (request.prefix or "").count("\n\n") + 1
        return r"so \boxed{4}" if depth == 2 else f"step {depth}\n\nthe rest"

    server, model = scripted_model(handler, flavour="vllm")
    result = await beam_search(model, LLMStepJudge(model), n=2, keep=1, max_steps=3).ainvoke(
        "What is 2 + 2?"
    )
    assert result.answer.endswith(r"so \boxed{4}")
    continued = [r for r in server.requests if r.body.get("continue_final_message")]
    assert continued and all(r.prefix is not None for r in continued)  # vLLM's dialect


async def test_a_stream_cancelled_on_the_transport_is_seen_closed_early(scripted_model):
    long = " ".join(["step"] * 60)  # 119 tokens, sure for 30, then unsure
    server, model = scripted_model(lambda request: confident_reply(long, set(range(30, 119))))
    completion = await model.stream_sample(
        PROMPT, top_logprobs=2, cancel_when=lambda: GroupWatch(window=8, threshold=2.0).add
    )
    assert completion.finish_reason == "cancelled" and len(completion.logprobs) == 32
    request = server.requests[0]
    assert request.closed_early and 32 <= request.streamed < 119
    assert request.usage["completion_tokens"] == request.streamed  # billed what was sent


async def test_a_stream_read_to_the_end_on_the_transport_is_not_closed_early(scripted_model):
    server, model = scripted_model(lambda request: confident_reply("x = 4"))
    completion = await model.stream_sample(PROMPT, top_logprobs=2)
    assert completion.text == "x = 4" and completion.finish_reason == "stop"
    assert not server.requests[0].closed_early
