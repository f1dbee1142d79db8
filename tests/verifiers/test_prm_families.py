"""The RLHFlow and Skywork PRM families on tiny checkpoints built here, each scored against its
reference's rule done by hand; a checkpoint of no known family is refused until named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from test_prm import _LLAMA3_CHAT, PROMPT, SOLUTIONS, _config, _save_tokenizer
from transformers import AutoTokenizer, LlamaForCausalLM

from ttc_agent.errors import ConfigurationError
from ttc_agent.verifiers import TransformersPRM


@pytest.fixture(scope="module")
def plain_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A causal LM under a name that names no PRM family (a chat model passed by mistake)."""
    folder = tmp_path_factory.mktemp("tiny-causal-lm")
    _save_tokenizer(folder)
    torch.manual_seed(0)
    LlamaForCausalLM(_config()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def rlhflow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An RLHFlow-like checkpoint: a causal LM with a Llama 3 chat template, read at the
    position that predicts each assistant ``+``."""
    folder = tmp_path_factory.mktemp("tiny-llama-prm")
    _save_tokenizer(folder, template=_LLAMA3_CHAT)
    torch.manual_seed(2)
    LlamaForCausalLM(_config()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def skywork_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Skywork-o1-PRM-like checkpoint: a causal LM (with a tokenizer that adds no BOS, as
    Qwen's) whose safetensors also hold a value head ``v_head.summary`` (hidden size -> 1)."""
    folder = tmp_path_factory.mktemp("tiny-value-head-prm")
    _save_tokenizer(folder, adds_bos=False)
    torch.manual_seed(3)
    LlamaForCausalLM(_config()).save_pretrained(folder)
    weights = load_file(folder / "model.safetensors")
    weights["v_head.summary.weight"] = torch.randn(1, 32) * 0.5
    weights["v_head.summary.bias"] = torch.tensor([0.1])
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def _reference_rlhflow(folder: Path, question: str, steps: list[str]) -> list[float]:
    """RLHFlow's ``prm_evaluate.py``, done by hand: for each step, the conversation so far with a
    ``+`` turn after every step, and softmax over (+, -) of the logits at position -3."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = LlamaForCausalLM.from_pretrained(folder).eval()
    plus, minus = tokenizer.encode("+")[-1], tokenizer.encode("-")[-1]
    conversation, scores = [], []
    for k, step in enumerate(steps):
        conversation.append({"role": "user", "content": f"{question} {step}" if k == 0 else step})
        conversation.append({"role": "assistant", "content": "+"})
        text = tokenizer.apply_chat_template(conversation, tokenize=False)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logits = model(ids).logits[0, -3, [plus, minus]]
        scores.append(logits.softmax(-1)[0].item())
    return scores


def _reference_skywork(folder: Path, question: str, steps: list[str]) -> list[float]:
    """Skywork's ``prepare_input`` and ``derive_step_rewards``, done by hand: ids of BOS +
    question + newline, then of each step and a newline token; sigmoid(v_head(last hidden))
    at each step's newline."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = LlamaForCausalLM.from_pretrained(folder).eval()
    head = load_file(folder / "model.safetensors")
    newline = tokenizer.encode("\n")[-1]
    ids, flags = tokenizer.encode(tokenizer.bos_token + question + "\n"), []
    flags = [0] * len(ids)
    for step in "\n".join(steps).split("\n"):
        step_ids = [*tokenizer.encode(step), newline]
        ids += step_ids
        flags += [0] * (len(step_ids) - 1) + [1]
    with torch.no_grad():
        hidden = model(torch.tensor([ids]), output_hidden_states=True).hidden_states[-1][0]
    value = hidden @ head["v_head.summary.weight"].T + head["v_head.summary.bias"]
    return [value[i].sigmoid().item() for i, flag in enumerate(flags) if flag]


def test_a_checkpoint_of_no_known_family_is_refused_until_named(plain_model: Path) -> None:
    # the weights of test_prm.py's Math-Shepherd-like checkpoint, under a name naming no family
    with pytest.raises(ConfigurationError, match=r"cannot tell which PRM family.*family="):
        TransformersPRM(plain_model)
    assert TransformersPRM(plain_model, family="step_tag").family == "step_tag"
    with pytest.raises(ConfigurationError, match=r"family must be auto, step_tag, qwen_prm"):
        TransformersPRM(plain_model, family="shepherd")  # type: ignore[arg-type]


async def test_rlhflow_family_reads_plus_at_each_assistant_turn(rlhflow_model: Path) -> None:
    prm = TransformersPRM(rlhflow_model, family="rlhflow", batch_size=2)
    results = await prm.score_steps(PROMPT, SOLUTIONS)
    single = await TransformersPRM(rlhflow_model, family="rlhflow", batch_size=1).score_steps(
        PROMPT, SOLUTIONS
    )
    for steps, result, alone in zip(SOLUTIONS, results, single, strict=True):
        expected = _reference_rlhflow(rlhflow_model, PROMPT[-1]["content"], steps)
        assert result.steps == pytest.approx(expected, abs=1e-5)
        assert result.steps == pytest.approx(alone.steps, abs=1e-5)
    assert len(set(results[1].steps)) == 3
    assert results[0].usage.prompt_tokens == len(
        prm.format.encode("What is 2 + 3 * 4 ?", SOLUTIONS[0]).ids
    )


def test_rlhflow_checkpoints_are_recognised_by_name(rlhflow_model: Path, tmp_path: Path) -> None:
    named = tmp_path / "RLHFlow-Llama3.1-8B-PRM-Deepseek-Data"
    shutil.copytree(rlhflow_model, named)
    assert TransformersPRM(named).family == "rlhflow"


async def test_skywork_family_reads_the_value_head_at_each_step_token(skywork_model: Path) -> None:
    prm = TransformersPRM(skywork_model, batch_size=2)
    assert prm.family == "skywork"  # auto: the weights hold a value head
    assert prm.step_tag == "\n"
    results = await prm.score_steps(PROMPT, SOLUTIONS)
    single = await TransformersPRM(skywork_model, batch_size=1).score_steps(PROMPT, SOLUTIONS)
    for steps, result, alone in zip(SOLUTIONS, results, single, strict=True):
        expected = _reference_skywork(skywork_model, PROMPT[-1]["content"], steps)
        assert result.steps == pytest.approx(expected, abs=1e-5)
        assert result.steps == pytest.approx(alone.steps, abs=1e-5)
        assert all(0.0 < p < 1.0 for p in result.steps)
    assert len(set(results[1].steps)) == 3


def test_skywork_without_a_value_head_is_refused(plain_model: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"has no value head"):
        TransformersPRM(plain_model, family="skywork")
