"""``ttc serve`` chooses among candidates that call tools as tool calls: the call most of them
agree on (name and arguments, whatever their key order), else the judge's best; and returns it
as OpenAI does, streaming included."""

from __future__ import annotations

import json

import httpx
import pytest
from serve_proxy import CRITERIA, HI, WEATHER, Proxy, client

from ttc_agent import Budget, Preset
from ttc_agent.serve import ProxyConfig
from ttc_agent.strategies.think_harder import DEFAULT_PRESETS
from ttc_agent.testing import LoopbackServer, Reply, fenced, judge_reply


def scripted(calls, best="London"):
    """Candidate k calls the weather tool, when offered, with ``calls[k]`` (a text answer where
    None); the judge scores 5 a candidate that names ``best``, 2 the others."""

    def handler(request):
        candidate = fenced(request.last_user)
        if candidate is not None:
            return judge_reply(dict.fromkeys(CRITERIA, 5 if best in candidate else 2))
        arguments = calls[request.choice]
        if arguments is None or not request.body.get("tools"):  # no tool it was not offered
            return f"It is sunny in {best}."
        return Reply("", tool_calls=(("get_weather", arguments),))

    return handler


def ask(calls, *, best="London", **fields):
    upstream = LoopbackServer(scripted(calls, best))
    with upstream, Proxy(ProxyConfig(upstream=upstream.base_url, max_n=8)) as proxy:
        reply = client(proxy, "any").chat.completions.create(
            model="m", messages=HI, tools=[WEATHER], **fields
        )
    return upstream, reply


def called(reply) -> list[tuple[str, dict]]:
    return [
        (call.function.name, json.loads(call.function.arguments))
        for call in reply.choices[0].message.tool_calls or []
    ]


PARIS, PARIS_REORDERED = {"city": "Paris", "unit": "C"}, {"unit": "C", "city": "Paris"}
LONDON, ROME = {"city": "London", "unit": "C"}, {"city": "Rome", "unit": "C"}


def test_the_call_most_candidates_agree_on_wins_over_the_judges_favourite():
    _, reply = ask([LONDON, PARIS, PARIS_REORDERED, ROME], reasoning_effort="low")
    assert called(reply) == [("get_weather", PARIS)]
    assert reply.choices[0].finish_reason == "tool_calls"
    assert reply.model_extra["ttc"]["selection"] == "tool_call_agreement"


def test_a_tie_goes_to_the_judge_which_was_shown_each_call():
    upstream, reply = ask([PARIS, LONDON, PARIS_REORDERED, LONDON], reasoning_effort="low")
    assert called(reply) == [("get_weather", LONDON)]
    assert reply.model_extra["ttc"]["selection"] == "tool_call_judge"
    shown = [fenced(r.last_user) for r in upstream.requests if fenced(r.last_user) is not None]
    assert sum("get_weather" in text and '"city": "London"' in text for text in shown) == 2


def test_no_agreement_goes_to_the_judge():
    _, reply = ask([PARIS, ROME, LONDON, {"city": "Oslo"}], reasoning_effort="low")
    assert called(reply) == [("get_weather", LONDON)]
    assert reply.model_extra["ttc"]["selection"] == "tool_call_judge"


def test_a_strategy_without_a_judge_asks_it_about_the_tied_calls_and_bills_it():
    upstream, reply = ask(
        [PARIS, LONDON, PARIS, LONDON],
        reasoning_effort="low",
        extra_body={"ttc": {"strategy": "majority_vote", "n": 4}},
    )
    assert called(reply) == [("get_weather", LONDON)]  # majority_vote alone takes the first
    judged = [r for r in upstream.requests if fenced(r.last_user) is not None]
    assert len(judged) == 4
    extension = reply.model_extra["ttc"]
    assert extension["usage"]["verification"]["calls"] == 4
    assert reply.usage.total_tokens == sum(r.usage["total_tokens"] for r in upstream.requests)


@pytest.mark.parametrize("stream", [False, True])
def test_judging_a_tie_after_the_search_keeps_to_the_presets_budget(stream):
    calls_budget = {"low": Preset(strategy="majority_vote", n=4, budget=Budget(calls=3))}
    upstream = LoopbackServer(scripted([PARIS, LONDON, PARIS, LONDON]))
    config = {"max_n": 8, "presets": DEFAULT_PRESETS | calls_budget}
    fields = {"tools": [WEATHER], "reasoning_effort": "low"}
    with upstream, Proxy(ProxyConfig(upstream=upstream.base_url, **config)) as proxy:
        chat = client(proxy, "any").chat.completions
        if stream:
            with chat.stream(model="m", messages=HI, **fields) as events:
                reply = events.get_final_completion()
        else:
            reply = chat.create(model="m", messages=HI, **fields)
            assert reply.model_extra["ttc"]["budget_limited"] is True
    assert len(upstream.requests) == 3  # one for the 4 candidates, two of the 4 judgements
    assert reply.choices[0].message.tool_calls


def test_the_content_beside_a_call_is_returned_without_what_the_judge_was_shown():
    def handler(request):
        if fenced(request.last_user) is not None:
            return judge_reply(dict.fromkeys(CRITERIA, 3))
        return Reply("Let me look that up.", tool_calls=(("get_weather", PARIS),))

    with LoopbackServer(handler) as upstream, Proxy(ProxyConfig(upstream=upstream.base_url)) as p:
        reply = client(p, "any").chat.completions.create(
            model="m", messages=HI, tools=[WEATHER], reasoning_effort="low"
        )
    assert reply.choices[0].message.content == "Let me look that up."
    assert called(reply) == [("get_weather", PARIS)]


def test_text_answers_stay_text_when_tools_are_offered():
    _, reply = ask([None, None, None, None], reasoning_effort="low")
    assert reply.choices[0].message.content == "It is sunny in London."
    assert reply.choices[0].message.tool_calls is None
    assert reply.choices[0].finish_reason == "stop"


def test_streamed_tool_calls_arrive_as_deltas_the_openai_client_assembles():
    upstream = LoopbackServer(scripted([PARIS, LONDON, PARIS, ROME]))
    fields = {"tools": [WEATHER], "reasoning_effort": "low"}
    with upstream, Proxy(ProxyConfig(upstream=upstream.base_url)) as proxy:
        with client(proxy, "any").chat.completions.stream(
            model="m", messages=HI, **fields
        ) as stream:
            events = [event.type for event in stream]
            final = stream.get_final_completion()
        body = {"model": "m", "messages": HI, "stream": True, **fields}
        with httpx.stream("POST", f"{proxy.url}/chat/completions", json=body) as raw:
            data = [line[6:] for line in raw.iter_lines() if line.startswith("data: {")]
    assert "tool_calls.function.arguments.done" in events
    assert called(final) == [("get_weather", PARIS)]
    assert final.choices[0].finish_reason == "tool_calls"
    deltas = [json.loads(item)["choices"] for item in data]
    calls = [c[0]["delta"]["tool_calls"] for c in deltas if c and "tool_calls" in c[0]["delta"]]
    assert calls and calls[0][0]["function"]["name"] == "get_weather"
    assert [c[0].get("finish_reason") for c in deltas if c][-1] == "tool_calls"
