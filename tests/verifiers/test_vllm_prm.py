"""VLLMPRM against a loopback stand-in for vLLM's pooling server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pooling_server import TAG, TAG_ID, PoolingStub
from test_prm import PROMPT

from ttc_agent.errors import ConfigurationError, ModelError
from ttc_agent.models.retry import RetryPolicy
from ttc_agent.verifiers import VLLMPRM
from ttc_agent.verifiers.step_protocol import StepVerifier
from ttc_agent.verifiers.transformers_prm import QWEN_PRM_SYSTEM


@pytest.fixture
def pooling_server() -> Iterator[type[PoolingStub]]:
    """Start pooling stubs inside a test; all are stopped at its end."""
    started: list[PoolingStub] = []

    class Managed(PoolingStub):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            self.start()
            started.append(self)

    yield Managed
    for server in started:
        server.stop()


STEPS = [["2 + 3 = 5", "wrong 5 * 4 = 20", "so 20"], ["3 * 4 = 12", "2 + 12 = 14"]]
EXPECTED = [[0.9, 0.2, 0.9], [0.9, 0.9]]
FAST = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05)


async def test_vllm_step_pooling_scores_each_step(pooling_server: type[PoolingStub]) -> None:
    server = pooling_server(pooling="STEP")
    async with VLLMPRM("qwen-prm", base_url=f"{server.url}/v1", step_tag=TAG) as prm:
        assert isinstance(prm, StepVerifier)
        results = await prm.score_steps(PROMPT, STEPS)

    assert [r.steps for r in results] == [pytest.approx(e) for e in EXPECTED]
    assert server.paths() == ["/pooling", "/pooling"]  # /v1 dropped, no tokenize needed
    bodies = {body["messages"][-1]["content"]: body for _, body in server.requests}
    body = bodies[f"2 + 3 = 5{TAG}wrong 5 * 4 = 20{TAG}so 20{TAG}"]  # the requests run at once
    assert body["task"] == "token_classify"
    assert body["model"] == "qwen-prm"
    assert body["add_generation_prompt"] is False
    assert body["messages"][:2] == [
        {"role": "system", "content": QWEN_PRM_SYSTEM},
        {"role": "user", "content": "What is 2 + 3 * 4 ?"},
    ]
    assert sum(r.usage.calls for r in results) == 2
    assert results[0].usage.prompt_tokens == len(PoolingStub.tokens(body))


async def test_vllm_all_pooling_picks_rows_at_step_tag_id(
    pooling_server: type[PoolingStub],
) -> None:
    server = pooling_server(pooling="ALL", good_first=True)
    prm = VLLMPRM(
        "shepherd",
        base_url=server.url,
        step_tag=TAG,
        step_tag_id=TAG_ID,
        reward_token_ids=(0, 1),
        input_format="text",
    )
    results = await prm.score_steps(PROMPT, STEPS)
    await prm.aclose()

    assert [r.steps for r in results] == [pytest.approx(e) for e in EXPECTED]
    pooled = [body for path, body in server.requests if path == "/pooling"]
    tokenized = [body for path, body in server.requests if path == "/tokenize"]
    assert len(pooled) == len(tokenized) == 2
    text = f"What is 2 + 3 * 4 ? 3 * 4 = 12{TAG}2 + 12 = 14{TAG}"
    assert text in [body["input"] for body in pooled]
    assert {"model": "shepherd", "prompt": text} in tokenized


async def test_vllm_retries_503_then_scores(pooling_server: type[PoolingStub]) -> None:
    server = pooling_server(faults=(503,))
    prm = VLLMPRM("qwen-prm", base_url=server.url, step_tag=TAG, retry=FAST)
    [result] = await prm.score_steps(PROMPT, STEPS[:1])
    await prm.aclose()

    assert result.steps == pytest.approx(EXPECTED[0])
    assert server.paths() == ["/pooling", "/pooling"]


async def test_vllm_does_not_retry_400(pooling_server: type[PoolingStub]) -> None:
    server = pooling_server(faults=(400,))
    prm = VLLMPRM("qwen-prm", base_url=server.url, step_tag=TAG, retry=FAST)
    with pytest.raises(ModelError, match="answered 400") as caught:
        await prm.score_steps(PROMPT, STEPS[:1])
    await prm.aclose()

    assert caught.value.status_code == 400
    assert server.paths() == ["/pooling"]


async def test_vllm_gives_up_after_the_retry_budget(pooling_server: type[PoolingStub]) -> None:
    server = pooling_server(faults=(500, 500, 500))
    prm = VLLMPRM("qwen-prm", base_url=server.url, step_tag=TAG, retry=FAST)
    with pytest.raises(ModelError, match="answered 500"):
        await prm.score_steps(PROMPT, STEPS[:1])
    await prm.aclose()
    assert server.paths() == ["/pooling"] * 3


async def test_vllm_step_tag_the_server_does_not_pool_at_is_named(
    pooling_server: type[PoolingStub],
) -> None:
    server = pooling_server(pooling="STEP")
    prm = VLLMPRM("qwen-prm", base_url=server.url, step_tag="\n\n")  # the server pools at TAG
    with pytest.raises(ConfigurationError, match=r"scored 0 step tags for 3 steps.*step_tag_id"):
        await prm.score_steps(PROMPT, STEPS[:1])
    await prm.aclose()
