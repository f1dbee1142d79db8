"""``OpenAIChat(request_fields=...)``: a caller's extra fields travel with every sampling request,
never over what ttc-agent sets itself, and never into requests whose reply has its own shape."""

from __future__ import annotations

import pytest

from ttc_agent import Budget, BudgetExhausted, ConfigurationError, OpenAIChat
from ttc_agent.budget import metered

PROMPT = [{"role": "user", "content": "Weather in Paris?"}]
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
FIELDS = {
    "seed": 7,
    "top_p": 0.9,
    "user": "user-42",
    "tools": [TOOL],
    "tool_choice": "required",
    "response_format": {"type": "json_object"},
    "top_k": 20,  # a server's own field (vLLM): not one the openai client knows
}


@pytest.mark.parametrize("honour_n", [True, False])
async def test_fields_reach_every_sampling_request(model_for, honour_n):
    server, model = model_for(lambda request: "sunny", honour_n=honour_n)
    await model.with_request_fields(FIELDS).sample(PROMPT, 3, temperature=0.5)
    assert len(server.requests) == (1 if honour_n else 3)
    for request in server.requests:
        assert {key: request.body.get(key) for key in FIELDS} == FIELDS
        assert request.body["temperature"] == 0.5


async def test_what_a_call_sets_itself_wins(model_for):
    server, model = model_for(lambda request: "sunny")
    sampler = model.with_request_fields({"stop": ["\n\n"], "seed": 1})
    await sampler.sample(PROMPT, stop=["Step 2"])
    assert server.requests[0].body["stop"] == ["Step 2"]
    assert server.requests[0].body["seed"] == 1


async def test_a_call_that_asks_for_a_schema_leaves_the_shape_fields_out(model_for):
    server, model = model_for(lambda request: '{"score": 3}')
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}}
    await model.with_request_fields(FIELDS).sample(PROMPT, json_schema=schema)
    body = server.requests[0].body
    assert not {"tools", "tool_choice"} & set(body)
    assert body["response_format"]["json_schema"]["schema"] == schema
    assert (body["seed"], body["top_k"]) == (7, 20)


async def test_the_model_itself_is_left_as_it_was(model_for):
    server, model = model_for(lambda request: "sunny")
    sampler = model.with_request_fields(FIELDS)
    assert sampler.endpoint is model.endpoint and model.request_fields == {}
    await model.sample(PROMPT)
    assert not set(FIELDS) & set(server.requests[0].body)


@pytest.mark.parametrize(
    "field", ["model", "messages", "n", "stream", "temperature", "max_tokens", "logprobs"]
)
def test_fields_ttc_agent_sets_itself_are_refused_by_name(field):
    with pytest.raises(ConfigurationError, match=f"request_fields cannot set '{field}'"):
        OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k", request_fields={field: 1})


async def test_the_budget_reserves_for_tools_given_as_fields(model_for):
    server, model = model_for(lambda request: "sunny", counting="bytes")
    big = {**TOOL, "function": {**TOOL["function"], "description": "x" * 4000}}
    sampler = model.with_request_fields({"tools": [big]})
    with metered(Budget(total_tokens=2000)), pytest.raises(BudgetExhausted):
        await sampler.sample(PROMPT, max_tokens=10)
    assert server.requests == []  # the tools' 4000 bytes cannot fit: nothing was sent


async def test_a_continuation_over_completions_leaves_the_shape_fields_out(model_for):
    server, model = model_for(lambda request: " then 4.", continuation="chatml")
    await model.with_request_fields(FIELDS).sample(PROMPT, prefix="2 + 2")
    [request] = server.requests
    assert request.prompt is not None and request.prompt.endswith("2 + 2")
    assert not {"tools", "tool_choice", "response_format"} & set(request.body)
    assert (request.body["seed"], request.body["user"]) == (7, "user-42")
