"""Process reward models: TransformersPRM on tiny local checkpoints (VLLMPRM on a loopback stub
is in test_vllm_prm.py, the RLHFlow and Skywork families in test_prm_families.py).

The checkpoints are built here from configs (random weights, a word-level tokenizer) and loaded
through the same ``from_pretrained`` path as a real model; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, processors
from transformers import (
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForTokenClassification,
    PreTrainedTokenizerFast,
)

from ttc_agent.errors import ConfigurationError
from ttc_agent.verifiers import TransformersPRM
from ttc_agent.verifiers.step_protocol import StepVerifier
from ttc_agent.verifiers.transformers_prm import QWEN_PRM_SYSTEM

PROMPT = [
    {"role": "system", "content": "Be careful."},
    {"role": "user", "content": "What is 2 + 3 * 4 ?"},
]
SOLUTIONS = [
    ["3 * 4 = 12", "2 + 12 = 14"],
    ["2 + 3 = 5", "5 * 4 = 20", "so the answer is 20"],
    ["14"],
]

# ---------------------------------------------------------------------------------------------
# Tiny checkpoints


_SPECIAL = ["[PAD]", "[UNK]", "<s>", "</s>"]
_ADDED = ["<extra_0>", "<|im_start|>", "<|im_end|>"]
_LLAMA3 = ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
_WORDS = ["ки", "+", "-", "=", "*", "?", "What", "is", "so", "the", "answer", "Be", "careful"]
_WORDS += [str(n) for n in range(10)] + ["12", "14", "20"]
_WORDS += ["system", "user", "assistant", "Please", "reason", "step", "by"]
_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


_LLAMA3_CHAT = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>"
    "\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
)


def _save_tokenizer(folder: Path, *, template: str = _CHATML, adds_bos: bool = True) -> None:
    """A word-level tokenizer (adding BOS unless told not to, as Qwen's does not) with Qwen's
    separator, Llama 3's turn tokens, a newline token and a chat template (ChatML by default)."""
    vocab = {word: i for i, word in enumerate(_SPECIAL + _ADDED + _LLAMA3 + _WORDS + ["\n"])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    if adds_bos:
        backend.post_processor = processors.TemplateProcessing(
            single="<s> $A", special_tokens=[("<s>", vocab["<s>"])]
        )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        bos_token="<s>",
        eos_token="</s>",
        additional_special_tokens=_ADDED + _LLAMA3,
    )
    tokenizer.add_tokens([AddedToken("\n", normalized=False)])  # Skywork's step token
    tokenizer.chat_template = template
    tokenizer.save_pretrained(folder)


def _config(**extra: Any) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        initializer_range=0.5,  # large weights: positions give clearly different scores
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
        **extra,
    )


@pytest.fixture(scope="module")
def step_tag_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Math-Shepherd-like checkpoint: a causal LM read at ``ки`` over ``+`` / ``-``, in a
    folder whose name names the family (as ``peiyi9979/math-shepherd-mistral-7b-prm`` does)."""
    folder = tmp_path_factory.mktemp("math-shepherd-tiny")
    _save_tokenizer(folder)
    torch.manual_seed(0)
    LlamaForCausalLM(_config()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def two_class_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Qwen2.5-Math-PRM-like checkpoint: a two-class token head read at ``<extra_0>``.

    Qwen's own checkpoints ship their model code; a token classifier with two labels has the
    same output (logits [batch, seq, 2]) and loads without remote code.
    """
    folder = tmp_path_factory.mktemp("two_class_prm")
    _save_tokenizer(folder)
    torch.manual_seed(1)
    LlamaForTokenClassification(_config(num_labels=2)).save_pretrained(folder)
    return folder


def _reference_step_tag(folder: Path, text: str) -> list[float]:
    """Math-Shepherd's recipe, done by hand: softmax over (+, -) logits at each ``ки``."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = LlamaForCausalLM.from_pretrained(folder).eval()
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    good, bad = tokenizer.convert_tokens_to_ids(["+", "-"])
    with torch.no_grad():
        logits = model(ids).logits[0]
    positions = (ids[0] == tokenizer.convert_tokens_to_ids("ки")).nonzero().flatten()
    return logits[positions][:, [good, bad]].softmax(-1)[:, 0].tolist()


def _reference_two_class(folder: Path, question: str, steps: list[str]) -> list[float]:
    """Qwen2.5-Math-PRM's recipe, done by hand: softmax(logits)[1] at each ``<extra_0>``."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = LlamaForTokenClassification.from_pretrained(folder).eval()
    messages = [
        {"role": "system", "content": QWEN_PRM_SYSTEM},
        {"role": "user", "content": question},
        {"role": "assistant", "content": "<extra_0>".join(steps) + "<extra_0>"},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits[0]
    positions = (ids[0] == tokenizer.convert_tokens_to_ids("<extra_0>")).nonzero().flatten()
    return logits[positions].softmax(-1)[:, 1].tolist()


# ---------------------------------------------------------------------------------------------
# TransformersPRM


async def test_step_tag_family_scores_each_step_at_its_tag(step_tag_model: Path) -> None:
    prm = TransformersPRM(step_tag_model, batch_size=2)
    assert prm.family == "step_tag"  # auto: by its name (<extra_0> is known, but not the head)
    assert isinstance(prm, StepVerifier)

    results = await prm.score_steps(PROMPT, SOLUTIONS)

    assert [len(r.steps) for r in results] == [len(s) for s in SOLUTIONS]
    assert all(0.0 <= p <= 1.0 for r in results for p in r.steps)
    first = _reference_step_tag(step_tag_model, "What is 2 + 3 * 4 ? 3 * 4 = 12 ки\n2 + 12 = 14 ки")
    assert results[0].steps == pytest.approx(first, abs=1e-5)
    assert len(set(results[1].steps)) == 3  # three different positions, three different scores


async def test_batched_scores_equal_one_by_one(step_tag_model: Path) -> None:
    batched = await TransformersPRM(step_tag_model, batch_size=8).score_steps(PROMPT, SOLUTIONS)
    single = await TransformersPRM(step_tag_model, batch_size=1).score_steps(PROMPT, SOLUTIONS)

    for together, alone in zip(batched, single, strict=True):
        assert together.steps == pytest.approx(alone.steps, abs=1e-5)
        assert together.usage.prompt_tokens == alone.usage.prompt_tokens  # padding not billed
    assert sum(r.usage.calls for r in batched) == 1
    assert sum(r.usage.calls for r in single) == 3


async def test_usage_counts_the_tokens_fed(step_tag_model: Path) -> None:
    prm = TransformersPRM(step_tag_model)
    [result] = await prm.score_steps(PROMPT, [["14"]])
    expected = len(prm.tokenizer("What is 2 + 3 * 4 ? 14 ки")["input_ids"])  # BOS included
    assert result.usage.prompt_tokens == expected
    assert result.usage.calls == 1


def test_device_and_dtype_default_to_cpu_float32_without_cuda(step_tag_model: Path) -> None:
    assert not torch.cuda.is_available()
    prm = TransformersPRM(step_tag_model)
    assert prm.device.type == "cpu"
    assert prm.dtype == torch.float32
    assert next(prm.model.parameters()).dtype == torch.float32
    assert TransformersPRM(step_tag_model, dtype="bfloat16").dtype == torch.bfloat16


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"step_tag": "ки+"}, r"encoded as 2 tokens"),
        ({"step_tag": "@@"}, r"not in the tokenizer's vocabulary"),
        ({"good_token": "+ +"}, r"good_token '\+ \+' is encoded as 2 tokens"),
        ({"device": "cuda"}, r"no CUDA device"),
        ({"batch_size": 0}, r"batch_size must be at least 1"),
    ],
)
def test_bad_settings_are_refused_by_name(
    step_tag_model: Path, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        TransformersPRM(step_tag_model, **options)


async def test_truncated_solution_raises_instead_of_dropping_steps(step_tag_model: Path) -> None:
    prm = TransformersPRM(step_tag_model, max_length=12)
    with pytest.raises(ConfigurationError, match=r"solution 1 has 3 steps .* max_length=12"):
        await prm.score_steps(PROMPT, SOLUTIONS)


async def test_step_containing_the_tag_is_refused(step_tag_model: Path) -> None:
    prm = TransformersPRM(step_tag_model)
    with pytest.raises(ConfigurationError, match=r"1 steps but 2 step tags"):
        await prm.score_steps(PROMPT, [["2 ки 14"]])


async def test_empty_solutions_cost_nothing(step_tag_model: Path) -> None:
    prm = TransformersPRM(step_tag_model)
    assert await prm.score_steps(PROMPT, []) == []
    [empty] = await prm.score_steps(PROMPT, [[]])
    assert empty.steps == []
    assert empty.usage.calls == 0


async def test_prompt_without_a_question_is_refused(step_tag_model: Path) -> None:
    prm = TransformersPRM(step_tag_model)
    with pytest.raises(ConfigurationError, match="no user message"):
        await prm.score_steps([{"role": "system", "content": "Hi"}], [["14"]])


async def test_two_class_family_reads_class_one_at_each_separator(two_class_model: Path) -> None:
    prm = TransformersPRM(two_class_model, batch_size=2)
    assert prm.family == "qwen_prm"  # auto: <extra_0> and a token-classification head
    assert prm.step_tag == "<extra_0>"

    results = await prm.score_steps(PROMPT, SOLUTIONS)
    single = await TransformersPRM(two_class_model, batch_size=1).score_steps(PROMPT, SOLUTIONS)

    for steps, result, alone in zip(SOLUTIONS, results, single, strict=True):
        expected = _reference_two_class(two_class_model, PROMPT[-1]["content"], steps)
        assert result.steps == pytest.approx(expected, abs=1e-5)
        assert result.steps == pytest.approx(alone.steps, abs=1e-5)
        assert all(0.0 <= p <= 1.0 for p in result.steps)


async def test_causal_model_cannot_pose_as_a_two_class_head(step_tag_model: Path) -> None:
    prm = TransformersPRM(step_tag_model, family="qwen_prm")
    with pytest.raises(ConfigurationError, match=r"gives 32 values per token.*two-class head"):
        await prm.score_steps(PROMPT, SOLUTIONS)
