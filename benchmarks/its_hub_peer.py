"""its_hub's best-of-N with its LLM judge, run as a peer in ``benchmarks/overhead.py``.

its_hub is a dependency of the benchmarks only: ``pip install "ttc-agent[bench]"``. Its
orchestrator is left unbounded (its default, 32 requests at once, would split N = 64 into two
rounds): the peer runs at its best.
"""

from __future__ import annotations

import json
from typing import Any

ITS_HUB_JUDGE = "Score the following conversation"
"""How its_hub's LLMJudge prompt opens (``LLMJudge.DEFAULT_JUDGE_PROMPT``)."""


def its_hub_verdict(index: int) -> str:
    """A reply to its_hub's judge: the JSON its ``SCORE_RESPONSE_FORMAT`` asks for."""
    return json.dumps({"score": 1 + index % 9, "reasoning": f"draft {index} reads well"})


def its_hub_judge_body(prompt: str, answer: str) -> dict[str, Any]:
    """The body of its_hub's judge request for ``answer`` to ``prompt``: its own prompt and
    response format, the conversation written as its ``LLMJudge`` writes it."""
    from its_hub import LLMJudge

    conversation = f"user: {prompt}\nassistant: {answer}"
    content = LLMJudge.DEFAULT_JUDGE_PROMPT.format(conversation=conversation)
    return {
        "model": "m",
        "messages": [{"role": "user", "content": content}],
        "response_format": LLMJudge.SCORE_RESPONSE_FORMAT,
    }


class ItsHubBestOfN:
    """its_hub 1.2's ``BestOfN`` with ``LLMJudge``, over its own aiohttp client."""

    def __init__(self, base_url: str) -> None:
        try:
            from its_hub import BestOfN, LLMJudge, LMOrchestrator, OpenAICompatibleLanguageModel
        except ImportError:
            raise SystemExit(
                "its_hub is not installed: pip install 'ttc-agent[bench]' (its-hub[lm]==1.2.0)"
            ) from None

        def model(temperature: float) -> Any:
            return OpenAICompatibleLanguageModel(
                endpoint=base_url, api_key="k", model_name="m", temperature=temperature
            )

        self.generator, self.judge = model(0.8), model(0.0)
        orchestrator = LMOrchestrator(max_concurrency=-1)
        self.best_of_n = BestOfN(LLMJudge(self.judge), orchestrator=orchestrator)

    async def run(self, prompt: str, n: int) -> None:
        result = await self.best_of_n.ainfer(
            self.generator, prompt, budget=n, return_response_only=False
        )
        if len(set(result.scores)) < 2 or not result.the_one.get("content"):
            raise RuntimeError(f"its_hub did not judge its {n} candidates: {result.scores}")

    async def aclose(self) -> None:
        await self.generator.close()
        await self.judge.close()
