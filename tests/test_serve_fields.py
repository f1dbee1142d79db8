"""``ttc serve`` keeps every field of a client's request when it thinks harder: the candidates'
requests carry them, the judge's do not, and a field it cannot honour is a 400 naming it."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from serve_proxy import CRITERIA, HI, WEATHER, Proxy, client

from ttc_agent.serve import ProxyConfig
from ttc_agent.testing import LoopbackServer, Reply, fenced, judge_reply


def weather_handler(request):
    """Scores 4 for every candidate; calls the weather tool when the request requires a tool
    call (as a server honouring ``tool_choice`` does), and answers in text otherwise."""
    if fenced(request.last_user) is not None:
        return judge_reply(dict.fromkeys(CRITERIA, 4))
    if request.body.get("tools") and request.body.get("tool_choice") == "required":
        return Reply("", tool_calls=(("get_weather", {"city": "Paris"}),))
    return "Paris is usually mild."


@pytest.fixture
def weather() -> Iterator[tuple[LoopbackServer, Proxy]]:
    upstream = LoopbackServer(weather_handler)
    with upstream, Proxy(ProxyConfig(upstream=upstream.base_url, max_n=8)) as proxy:
        yield upstream, proxy


def candidates_requests(upstream: LoopbackServer) -> list:
    return [r for r in upstream.requests if fenced(r.last_user) is None]


def judge_requests(upstream: LoopbackServer) -> list:
    return [r for r in upstream.requests if fenced(r.last_user) is not None]


def test_tools_with_a_required_choice_and_low_effort_return_a_tool_call(weather):
    _, proxy = weather
    reply = client(proxy, "any").chat.completions.create(
        model="m", messages=HI, tools=[WEATHER], tool_choice="required", reasoning_effort="low"
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [(c.function.name, c.function.arguments) for c in choice.message.tool_calls] == [
        ("get_weather", '{"city": "Paris"}')
    ]
    assert not choice.message.content
    assert reply.model_extra["ttc"]["candidates"] == 4


CLIENT_FIELDS = {
    "tools": [WEATHER],
    "tool_choice": "required",
    "parallel_tool_calls": False,
    "response_format": {"type": "json_object"},
    "stop": ["\n\nEND"],
    "seed": 7,
    "top_p": 0.9,
    "presence_penalty": 0.5,
    "frequency_penalty": 0.25,
    "logit_bias": {"50256": -100},
    "user": "user-42",
    "metadata": {"team": "search"},
    "service_tier": "auto",
}
SERVER_FIELDS = {"top_k": 20, "chat_template_kwargs": {"enable_thinking": False}}  # vLLM's own


@pytest.mark.parametrize("effort", ["none", "low", "high"])
def test_every_field_reaches_each_candidates_request_and_none_the_judges(weather, effort):
    upstream, proxy = weather
    client(proxy, "any").chat.completions.create(
        model="m", messages=HI, reasoning_effort=effort, **CLIENT_FIELDS, extra_body=SERVER_FIELDS
    )
    sampling = candidates_requests(upstream)
    assert sampling
    for request in sampling:
        for name, value in (CLIENT_FIELDS | SERVER_FIELDS).items():
            assert request.body.get(name) == value, (name, request.body)
        assert request.body["model"] == "m" and "reasoning_effort" not in request.body
    judging = judge_requests(upstream)
    assert judging or effort == "none"
    for request in judging:  # the judge's own requests, with its own schema
        assert not set(request.body) & (set(CLIENT_FIELDS) - {"response_format"})
        assert not set(request.body) & set(SERVER_FIELDS)
        assert request.body["response_format"]["type"] == "json_schema"


def test_the_judge_reads_each_candidates_tool_call(weather):
    upstream, proxy = weather
    client(proxy, "any").chat.completions.create(
        model="m", messages=HI, tools=[WEATHER], tool_choice="required", reasoning_effort="low"
    )
    shown = [fenced(r.last_user) for r in judge_requests(upstream)]
    assert len(shown) == 4
    assert all("get_weather" in text and '{"city": "Paris"}' in text for text in shown), shown


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"logprobs": True}, "logprobs"),
        ({"logprobs": True, "top_logprobs": 3}, "logprobs"),
        ({"functions": [WEATHER["function"]]}, "functions"),
        ({"function_call": "auto", "functions": [WEATHER["function"]]}, "function"),
        ({"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"web_search_options": {}}, "web_search_options"),
    ],
)
def test_a_field_the_proxy_cannot_honour_is_a_400_naming_it(weather, fields, named):
    upstream, proxy = weather
    with pytest.raises(openai.BadRequestError) as caught:
        client(proxy, "any").chat.completions.create(
            model="m", messages=HI, reasoning_effort="low", **fields
        )
    assert f"'{named}" in caught.value.message
    assert upstream.requests == []  # refused before anything was spent


def test_harmless_values_of_those_fields_are_accepted(weather):
    upstream, proxy = weather
    reply = client(proxy, "any").chat.completions.create(
        model="m", messages=HI, reasoning_effort="none", logprobs=False, modalities=["text"]
    )
    assert reply.choices[0].message.content == "Paris is usually mild."
    assert "logprobs" not in upstream.requests[0].body


def test_without_effort_every_field_still_passes_through_as_sent(weather):
    upstream, proxy = weather
    client(proxy, "any").chat.completions.create(
        model="m", messages=HI, logprobs=True, top_logprobs=2, **CLIENT_FIELDS
    )
    [request] = upstream.requests
    assert request.body == {
        "model": "m",
        "messages": HI,
        "logprobs": True,
        "top_logprobs": 2,
        **CLIENT_FIELDS,
    }
