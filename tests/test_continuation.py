"""Steps continue the assistant's text on the servers people run (vLLM, llama.cpp, OpenAI)."""

from __future__ import annotations

from ttc_agent import OpenAIChat


def steps(request):
    """A step generator: says how deep the text it continues already is."""
    depth = (request.prefix or "").count("\n\n")
    return f"step {depth + 1}"


async def test_vllm_flags_reach_every_request_when_n_is_split(loopback):
    """n over several requests (the server ignores n): every one must ask to continue."""
    server = loopback(steps, honour_n=False)
    async with OpenAIChat("m", base_url=server.base_url, api_key="k", continuation="vllm") as model:
        completions = await model.sample([{"role": "user", "content": "Q"}], 3, prefix="a\n\n")
        again = await model.sample([{"role": "user", "content": "Q"}], 2, prefix="a\n\n")
    flags = [r.body.get("continue_final_message") for r in server.requests]
    assert flags == [True] * 5
    assert [r.body.get("add_generation_prompt") for r in server.requests] == [False] * 5
    assert [c.text for c in completions + again] == ["step 2"] * 5
