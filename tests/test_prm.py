"""Process reward models: TransformersPRM on tiny local checkpoints, VLLMPRM on a loopback stub.

The checkpoints are built here from configs (random weights, a word-level tokenizer) and loaded
through the same ``from_pretrained`` path as a real model; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from pooling_server import TAG, TAG_ID, PoolingStub
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForTokenClassification,
    PreTrainedTokenizerFast,
)

from ttc_agent.errors import ConfigurationError, ModelError
from ttc_agent.models.retry import RetryPolicy
from ttc_agent.verifiers import VLLMPRM, TransformersPRM
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
_WORDS = ["ки", "+", "-", "=", "*", "?", "What", "is", "so", "the", "answer", "Be", "careful"]
_WORDS += [str(n) for n in range(10)] + ["12", "14", "20"]
_WORDS += ["system", "user", "assistant", "Please", "reason", "step", "by"]
_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _save_tokenizer(folder: Path) -> None:
    """A word-level tokenizer that adds BOS, with Qwen's separator and a ChatML template."""
    vocab = {word: i for i, word in enumerate(_SPECIAL + _ADDED + _WORDS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", vocab["<s>"])]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        bos_token="<s>",
        eos_token="</s>",
        additional_special_tokens=_ADDED,
    )
    tokenizer.chat_template = _CHATML
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
    """A Math-Shepherd-like checkpoint: a causal LM read at ``ки`` over ``+`` / ``-``."""
    folder = tmp_path_factory.mktemp("step_tag_prm")
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
    assert prm.family == "step_tag"  # auto: <extra_0> is known, but the head is a causal LM
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


# ---------------------------------------------------------------------------------------------
# VLLMPRM against a loopback stand-in for vLLM's pooling server


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
