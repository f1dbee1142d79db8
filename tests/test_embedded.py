"""End to end on the embedded local model (Qwen2.5-Coder-0.5B-Instruct on llama.cpp).

Small budgets, generous limits: these check that the real parts fit together, not quality.
"""

from __future__ import annotations

import dataclasses

import pytest

from ttc_agent import EmbeddedModelError, OpenAIChat, RubricJudge, best_of_n
from ttc_agent.models.embedded import QWEN_CODER_0_5B, assemble, embedded_server

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
