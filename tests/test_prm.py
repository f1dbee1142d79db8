"""Process reward models: TransformersPRM on tiny local checkpoints, VLLMPRM on a loopback stub.

The checkpoints are built here from configs (random weights, a word-level tokenizer) and loaded
through the same ``from_pretrained`` path as a real model; nothing is downloaded.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import zlib
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, processors
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


# ---------------------------------------------------------------------------------------------
# VLLMPRM against a loopback stand-in for vLLM's pooling server

TAG = "<extra_0>"
TAG_ID = 7


class PoolingStub:
    """vLLM's ``/pooling`` and ``/tokenize`` over real HTTP, with a toy tokenizer and head.

    The head gives P(correct) = 0.2 at a step tag whose step says "wrong", 0.9 at other step
    tags and 0.5 at every other token. ``pooling="STEP"`` returns the step-tag rows only (vLLM's
    STEP pooler), ``"ALL"`` one row per token. Rows are [P(wrong), P(correct)] (a two-class
    head), or [P(correct), P(wrong)] with ``good_first`` (``returned_token_ids`` [good, bad]).
    ``faults`` are statuses to answer the next pooling requests with, in order.
    """

    def __init__(
        self, *, pooling: str = "STEP", good_first: bool = False, faults: tuple[int, ...] = ()
    ) -> None:
        self.pooling = pooling
        self.good_first = good_first
        self.faults = deque(faults)
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def start(self) -> PoolingStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @staticmethod
    def tokens(body: dict[str, Any]) -> list[str]:
        if "messages" in body:
            text = "".join(f"<|{m['role']}|>{m['content']}\n" for m in body["messages"])
        else:
            text = body.get("input") or body.get("prompt") or ""
        return re.findall(rf"{re.escape(TAG)}|\w+|[^\w\s]|\s+", text)

    @staticmethod
    def token_id(token: str) -> int:
        return TAG_ID if token == TAG else 100 + zlib.crc32(token.encode()) % 900

    def rows(self, tokens: list[str]) -> list[list[float]]:
        rows, step = [], []
        for token in tokens:
            good = 0.5
            if token == TAG:
                good = 0.2 if "wrong" in step else 0.9
                step = []
            else:
                step.append(token)
            if token == TAG or self.pooling == "ALL":
                rows.append([good, 1 - good] if self.good_first else [1 - good, good])
        return rows

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.requests.append((path, body))
        tokens = self.tokens(body)
        if path == "/tokenize":
            ids = [self.token_id(token) for token in tokens]
            return 200, {"count": len(ids), "max_model_len": 4096, "tokens": ids}
        if path != "/pooling":
            return 404, {"object": "error", "message": f"no route {path}", "code": 404}
        if self.faults:
            status = self.faults.popleft()
            return status, {"object": "error", "message": f"injected {status}", "code": status}
        usage = {"prompt_tokens": len(tokens), "total_tokens": len(tokens), "completion_tokens": 0}
        return 200, {
            "id": "pool-1",
            "object": "list",
            "created": 0,
            "model": body.get("model"),
            "data": [{"index": 0, "object": "pooling", "data": self.rows(tokens)}],
            "usage": usage,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                status, reply = stub.answer(self.path, json.loads(self.rfile.read(length)))
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                """Quiet."""

        return Handler


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


# ---------------------------------------------------------------------------------------------
# More families: RLHFlow and Skywork; a checkpoint of no known family


def test_a_checkpoint_of_no_known_family_is_refused_until_named(
    step_tag_model: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "tiny-causal-lm"  # the same causal LM under a name that names no family
    shutil.copytree(step_tag_model, plain)
    with pytest.raises(ConfigurationError, match=r"cannot tell which PRM family.*family="):
        TransformersPRM(plain)
    assert TransformersPRM(plain, family="step_tag").family == "step_tag"
    with pytest.raises(ConfigurationError, match=r"family must be auto, step_tag, qwen_prm"):
        TransformersPRM(plain, family="shepherd")  # type: ignore[arg-type]


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


def test_skywork_without_a_value_head_is_refused(step_tag_model: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"has no value head"):
        TransformersPRM(step_tag_model, family="skywork")
