"""A process reward model (PRM) run in this process with Hugging Face transformers, CPU or GPU.

Two families of open PRMs are read:

- ``step_tag`` (Math-Shepherd): a causal LM. The input is ``f"{question} {step_1} ки\\n{step_2}
  ки"``; the score of a step is the softmax over the logits of the good and bad tokens (``+`` and
  ``-``) at the position of its step tag, P(good).
- ``qwen_prm`` (Qwen2.5-Math-PRM): a two-class token head (logits of shape ``[batch, seq, 2]``,
  class 1 = correct). The input is the chat template of a system prompt, the question and
  ``"<extra_0>".join(steps) + "<extra_0>"`` as the assistant turn; the score of a step is
  softmax(logits)[1] at its ``<extra_0>``. Qwen's checkpoints ship their model code
  (``trust_remote_code=True``); a ``*ForTokenClassification`` checkpoint with two labels has the
  same head and loads without it.

Solutions are scored in batches (right-padded, one forward pass per ``batch_size`` solutions,
longest first), under ``torch.inference_mode()`` in a worker thread so that the event loop keeps
running. Step positions are found with one tensor mask per batch, never token by token.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from ttc_agent.errors import ConfigurationError
from ttc_agent.types import Message, StepScores, Usage
from ttc_agent.verifiers.fence import neutralise

Family = Literal["auto", "step_tag", "qwen_prm"]

QWEN_PRM_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
"""The system prompt Qwen2.5-Math-PRM was trained with."""

_DEFAULT_TAG = {"step_tag": "ки", "qwen_prm": "<extra_0>"}
_INSTALL = "pip install 'ttc-agent[prm]'"


class TransformersPRM:
    """Scores every step of partial solutions with a PRM loaded by transformers.

    Args:
        model: a Hugging Face model id or a local folder (anything ``from_pretrained`` takes).
        family: ``step_tag``, ``qwen_prm`` or ``auto``: ``qwen_prm`` when the tokenizer has the
            ``<extra_0>`` token and the model is a process reward model (its architecture names
            ``ProcessRewardModel``/``PRM``) or a token classifier, else ``step_tag``.
        device: ``auto`` (CUDA when available, else CPU), or a torch device such as ``cuda:1``.
        dtype: a torch dtype or its name; by default bfloat16 on CUDA, float32 elsewhere.
        batch_size: solutions per forward pass.
        step_tag: the step tag token; by default ``ки`` (step_tag) or ``<extra_0>`` (qwen_prm).
            It must be a single token of the model's tokenizer.
        good_token: the token whose probability means "correct" (step_tag family).
        bad_token: the token whose probability means "wrong" (step_tag family).
        trust_remote_code: run model code shipped with the checkpoint (Qwen2.5-Math-PRM needs it).
        max_length: cut inputs at this many tokens; a solution whose step tags were cut off
            raises ``ConfigurationError`` rather than returning too few scores.

    Raises:
        ConfigurationError: torch or transformers is missing, the step tag or a good/bad token is
            not one token, or the checkpoint has no head this class can read.

    Example:
        >>> # prm = TransformersPRM("peiyi9979/math-shepherd-mistral-7b-prm")
        >>> # prm = TransformersPRM("Qwen/Qwen2.5-Math-PRM-7B", trust_remote_code=True)
        >>> # [scores] = await prm.score_steps(
        >>> #     [{"role": "user", "content": "What is 2 + 3 * 4?"}],
        >>> #     [["3 * 4 = 12.", "2 + 12 = 14."]],
        >>> # )
        >>> # scores.steps  # one probability per step, e.g. [0.93, 0.88]
    """

    def __init__(
        self,
        model: str | Path,
        *,
        family: Family = "auto",
        device: str = "auto",
        dtype: Any = None,
        batch_size: int = 8,
        step_tag: str | None = None,
        good_token: str = "+",
        bad_token: str = "-",
        trust_remote_code: bool = False,
        max_length: int | None = None,
    ) -> None:
        if family not in ("auto", "step_tag", "qwen_prm"):
            raise ConfigurationError(f"family must be auto, step_tag or qwen_prm, got {family!r}")
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be at least 1, got {batch_size}")
        if max_length is not None and max_length < 1:
            raise ConfigurationError(f"max_length must be at least 1, got {max_length}")
        torch, transformers = _import_backend()
        self._torch = torch
        self.device = _pick_device(torch, device)
        self.dtype = _pick_dtype(torch, dtype, self.device)
        self.batch_size = batch_size
        self.max_length = max_length
        source = str(model)
        self.name = Path(source).name if Path(source).is_dir() else source

        self.tokenizer = transformers.AutoTokenizer.from_pretrained(
            source, trust_remote_code=trust_remote_code
        )
        config = transformers.AutoConfig.from_pretrained(
            source, trust_remote_code=trust_remote_code
        )
        self.family: Literal["step_tag", "qwen_prm"] = (
            _detect_family(self.tokenizer, config) if family == "auto" else family
        )
        self.step_tag = step_tag if step_tag is not None else _DEFAULT_TAG[self.family]
        self.tokenizer.padding_side = "right"  # causal attention: real tokens never see padding
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self._tag_id = _tag_token_id(self.tokenizer, self._format("1", ["2"]), self.step_tag)
        self._classes: list[int] = [1, 0]  # qwen_prm: [good, bad] columns of the two-class head
        if self.family == "step_tag":
            self._classes = [
                _single_token_id(self.tokenizer, good_token, "good_token"),
                _single_token_id(self.tokenizer, bad_token, "bad_token"),
            ]

        self.model = _load_model(
            transformers, source, self.family, config, self.dtype, trust_remote_code
        )
        self.model.to(self.device).eval()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"TransformersPRM({self.name!r}, family={self.family!r}, "
            f"device={str(self.device)!r}, dtype={self.dtype})"
        )

    async def score_steps(
        self, prompt: Sequence[Message], solutions: Sequence[Sequence[str]]
    ) -> list[StepScores]:
        """Score every step of each solution to the last user message of ``prompt``.

        Each ``StepScores`` carries the tokens fed for its solution and, on the first solution
        of each batch, the forward pass (so that the usages add up to what was run).
        """
        question = neutralise(question_of(prompt))  # quoted text: control markers stay text
        solutions = [[neutralise(step) for step in steps] for steps in solutions]
        texts = [self._format(question, steps) if steps else None for steps in solutions]
        counts = [len(steps) for steps in solutions]
        return await asyncio.to_thread(self._score_texts, texts, counts)

    def _format(self, question: str, steps: Sequence[str]) -> str:
        tag = self.step_tag
        if self.family == "step_tag":
            return f"{question} " + "\n".join(f"{step} {tag}" for step in steps)
        messages = [
            {"role": "system", "content": QWEN_PRM_SYSTEM},
            {"role": "user", "content": question},
            {"role": "assistant", "content": tag.join(steps) + tag},
        ]
        if not getattr(self.tokenizer, "chat_template", None):
            raise ConfigurationError(f"the tokenizer of {self.name} has no chat template")
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=False
        )

    def _score_texts(self, texts: list[str | None], counts: list[int]) -> list[StepScores]:
        results: list[StepScores] = [StepScores(steps=[]) for _ in texts]
        order = sorted(
            (i for i, text in enumerate(texts) if text is not None),
            key=lambda i: len(texts[i] or ""),
            reverse=True,
        )
        with self._lock:
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                scores, fed = self._forward([texts[i] or "" for i in batch])
                for k, i in enumerate(batch):
                    if len(scores[k]) != counts[i]:
                        message = self._mismatch(i, counts[i], len(scores[k]), fed[k])
                        raise ConfigurationError(message)
                    usage = Usage(prompt_tokens=fed[k], calls=1 if k == 0 else 0)
                    results[i] = StepScores(steps=scores[k], usage=usage)
        return results

    def _forward(self, texts: list[str]) -> tuple[list[list[float]], list[int]]:
        """One forward pass: the step scores of each text and the tokens fed for it."""
        torch = self._torch
        encoded = self.tokenizer(
            texts,
            padding=True,
            truncation=self.max_length is not None,
            max_length=self.max_length,
            add_special_tokens=self.family == "step_tag",  # a chat template brings its own
            return_tensors="pt",
        )
        input_ids = encoded["input_ids"].to(self.device)
        attention_mask = encoded["attention_mask"].to(self.device)
        with torch.inference_mode():
            extra = {"use_cache": False} if self.family == "step_tag" else {}
            output = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)
            logits = output.logits if hasattr(output, "logits") else output[0]
            if self.family == "qwen_prm" and logits.shape[-1] != 2:
                raise ConfigurationError(
                    f"{self.name} gives {logits.shape[-1]} values per token; the qwen_prm family "
                    "needs a two-class head (logits of shape [batch, seq, 2])"
                )
            tags = (input_ids == self._tag_id) & attention_mask.bool()
            pairs = logits[tags][:, self._classes].float()  # [tags in batch, (good, bad)]
            good = pairs.softmax(dim=-1)[:, 0]
            per_text = tags.sum(dim=1).tolist()
            fed = attention_mask.sum(dim=1).tolist()
            scores = [chunk.tolist() for chunk in good.cpu().split(per_text)]
        return scores, fed

    def _mismatch(self, index: int, steps: int, found: int, fed: int) -> str:
        reason = (
            f"it was cut at max_length={self.max_length} tokens"
            if self.max_length is not None and fed >= self.max_length
            else "the question or a step contains the tag, or it is not tokenized alone there"
        )
        return (
            f"solution {index} has {steps} steps but {found} step tags {self.step_tag!r} were "
            f"found in its {fed} tokens: {reason}"
        )


def question_of(prompt: Sequence[Message]) -> str:
    """The text of the last user message: the question a PRM judges the steps against.

    Example:
        >>> question_of([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "?"}])
        'Hi'
    """
    for message in reversed(prompt):
        if message.get("role") in ("user", "human"):
            content = message.get("content", "")
            if isinstance(content, str):
                return content
            return "".join(
                part.get("text", "")
                for part in content
                if isinstance(part, dict) and part.get("type") == "text"
            )
    raise ConfigurationError("a PRM needs the question: the prompt has no user message")


def _import_backend() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ConfigurationError(
            f"TransformersPRM needs torch and transformers ({exc.name} is missing): {_INSTALL}"
        ) from None
    return torch, transformers


def _pick_device(torch: Any, device: str) -> Any:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError as exc:
        raise ConfigurationError(f"device {device!r} is not a torch device: {exc}") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ConfigurationError(f"device {device!r} asked for, but torch sees no CUDA device")
    return chosen


def _pick_dtype(torch: Any, dtype: Any, device: Any) -> Any:
    if dtype is None or dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype, None)
        if not isinstance(resolved, torch.dtype):
            raise ConfigurationError(f"dtype {dtype!r} is not a torch dtype")
        return resolved
    return dtype


def _detect_family(tokenizer: Any, config: Any) -> Literal["step_tag", "qwen_prm"]:
    architectures = " ".join(getattr(config, "architectures", None) or [])
    two_class_head = any(
        mark in architectures for mark in ("ProcessRewardModel", "PRM", "ForTokenClassification")
    )
    has_separator = "<extra_0>" in tokenizer.get_vocab()
    return "qwen_prm" if has_separator and two_class_head else "step_tag"


def _tag_token_id(tokenizer: Any, probe: str, tag: str) -> int:
    """The id the step tag gets in context, checking that it is exactly one known token."""
    if not tag:
        raise ConfigurationError("step_tag must not be empty")
    if not getattr(tokenizer, "is_fast", False):  # no offsets: the tag on its own must do
        return _single_token_id(tokenizer, tag, "step_tag")
    start = probe.rfind(tag)
    end = start + len(tag)
    encoded = tokenizer(probe, add_special_tokens=False, return_offsets_mapping=True)
    covering = [
        (token_id, probe[s:e])
        for token_id, (s, e) in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True)
        if s < end and e > start
    ]
    if len(covering) != 1:
        pieces = [piece for _, piece in covering]
        raise ConfigurationError(
            f"step_tag {tag!r} is encoded as {len(covering)} tokens {pieces} by this tokenizer; "
            "a PRM reads its score at one tag token: pass the tag the model was trained with"
        )
    token_id, piece = covering[0]
    if token_id == tokenizer.unk_token_id:
        raise ConfigurationError(f"step_tag {tag!r} is not in the tokenizer's vocabulary")
    if piece.strip() != tag.strip():
        raise ConfigurationError(
            f"step_tag {tag!r} merges with the text around it into the token {piece!r}"
        )
    return int(token_id)


def _single_token_id(tokenizer: Any, text: str, what: str) -> int:
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        raise ConfigurationError(
            f"{what} {text!r} is encoded as {len(ids)} tokens {ids} by this tokenizer; "
            "it must be a single token"
        )
    if ids[0] == tokenizer.unk_token_id:
        raise ConfigurationError(f"{what} {text!r} is not in the tokenizer's vocabulary")
    return int(ids[0])


def _load_model(
    transformers: Any,
    source: str,
    family: str,
    config: Any,
    dtype: Any,
    trust_remote_code: bool,
) -> Any:
    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    dtype_key = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    options = {dtype_key: dtype, "trust_remote_code": trust_remote_code}
    if family == "step_tag":
        return transformers.AutoModelForCausalLM.from_pretrained(source, **options)
    architectures = getattr(config, "architectures", None) or []
    if any(name.endswith("ForTokenClassification") for name in architectures):
        return transformers.AutoModelForTokenClassification.from_pretrained(source, **options)
    if not trust_remote_code and "AutoModel" in (getattr(config, "auto_map", None) or {}):
        raise ConfigurationError(
            f"{source} ships its own model code ({', '.join(architectures)}): review it, then "
            "pass trust_remote_code=True"
        )
    return transformers.AutoModel.from_pretrained(source, **options)
