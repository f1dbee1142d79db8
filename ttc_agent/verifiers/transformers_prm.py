"""A process reward model (PRM) run in this process with Hugging Face transformers, CPU or GPU.

Four families of open PRMs are read (see ``prm_families`` for each one's input and scoring rule
and where the rule comes from): ``step_tag`` (Math-Shepherd), ``qwen_prm``
(Qwen2.5-Math-PRM), ``rlhflow`` (RLHFlow's Llama-3.1 PRMs) and ``skywork``
(Skywork-o1-Open-PRM). A checkpoint's family is recognised by its value head (Skywork), its
two-class head and ``<extra_0>`` token (Qwen), or its name; any other checkpoint must be given
its family, rather than be read at the wrong place.

Each solution is encoded alone (its ids, and the position of each step's score); solutions are
scored in batches (right-padded, one forward pass per ``batch_size`` solutions, longest first),
under ``torch.inference_mode()`` in a worker thread so that the event loop keeps running.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from ttc_agent.errors import ConfigurationError
from ttc_agent.types import Aggregate, Message, StepScores, Usage
from ttc_agent.verifiers.fence import neutralise
from ttc_agent.verifiers.prm_checkpoints import detect_family, load_model, value_head
from ttc_agent.verifiers.prm_families import (
    DEFAULT_TAG,
    FAMILIES,
    QWEN_PRM_SYSTEM,
    Encoded,
    Family,
    make_format,
)

__all__ = ["QWEN_PRM_SYSTEM", "TransformersPRM", "question_of"]

_INSTALL = "pip install 'ttc-agent[prm]'"


class TransformersPRM:
    """Scores every step of partial solutions with a PRM loaded by transformers.

    Args:
        model: a Hugging Face model id or a local folder (anything ``from_pretrained`` takes).
        family: ``step_tag`` (Math-Shepherd), ``qwen_prm``, ``rlhflow``, ``skywork``, or
            ``auto``: ``skywork`` when the weights hold a value head (``v_head.summary``),
            ``qwen_prm`` when the tokenizer has ``<extra_0>`` and the model is a process reward
            model or a token classifier, else the family the checkpoint's name names
            (``math-shepherd``, ``rlhflow``, ``qwen2.5-math-prm``); otherwise
            ``ConfigurationError``.
        device: ``auto`` (CUDA when available, else CPU), or a torch device such as ``cuda:1``.
        dtype: a torch dtype or its name; by default bfloat16 on CUDA, float32 elsewhere.
        batch_size: solutions per forward pass.
        step_tag: the token that marks a step: by default ``ки`` (step_tag; rlhflow's
            placeholder for its ``+`` turns), ``<extra_0>`` (qwen_prm) or ``\n`` (skywork). It
            must be a single token of the model's tokenizer.
        good_token: the token whose probability means "correct" (step_tag, rlhflow).
        bad_token: the token whose probability means "wrong" (step_tag, rlhflow).
        trust_remote_code: run model code shipped with the checkpoint (Qwen2.5-Math-PRM needs it).
        max_length: cut inputs at this many tokens; a solution whose step tags were cut off
            raises ``ConfigurationError`` rather than returning too few scores.

    Raises:
        ConfigurationError: torch or transformers is missing, the family is unknown or cannot be
            told, the step tag or a good/bad token is not one token, or the checkpoint has no
            head this class can read.

    Example:
        >>> # prm = TransformersPRM("peiyi9979/math-shepherd-mistral-7b-prm")
        >>> # prm = TransformersPRM("Qwen/Qwen2.5-Math-PRM-7B", trust_remote_code=True)
        >>> # prm = TransformersPRM("RLHFlow/Llama3.1-8B-PRM-Deepseek-Data")
        >>> # prm = TransformersPRM("Skywork/Skywork-o1-Open-PRM-Qwen-2.5-7B")
        >>> # [scores] = await prm.score_steps(
        >>> #     [{"role": "user", "content": "What is 2 + 3 * 4?"}],
        >>> #     [["3 * 4 = 12.", "2 + 12 = 14."]],
        >>> # )
        >>> # scores.steps  # one probability per step, e.g. [0.93, 0.88]
    """

    preferred_aggregate: Aggregate = "last"  # trained to value the whole prefix at each step

    def __init__(
        self,
        model: str | Path,
        *,
        family: Family | Literal["auto"] = "auto",
        device: str = "auto",
        dtype: Any = None,
        batch_size: int = 8,
        step_tag: str | None = None,
        good_token: str = "+",
        bad_token: str = "-",
        trust_remote_code: bool = False,
        max_length: int | None = None,
    ) -> None:
        if family != "auto" and family not in FAMILIES:
            raise ConfigurationError(f"family must be auto, {', '.join(FAMILIES)}, got {family!r}")
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be at least 1, got {batch_size}")
        if max_length is not None and max_length < 1:
            raise ConfigurationError(f"max_length must be at least 1, got {max_length}")
        self._torch, transformers = _import_backend()
        self.device = _pick_device(self._torch, device)
        self.dtype = _pick_dtype(self._torch, dtype, self.device)
        self.batch_size, self.max_length = batch_size, max_length
        source, trust = str(model), trust_remote_code
        self.name = Path(source).name if Path(source).is_dir() else source
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(source, trust_remote_code=trust)
        config = transformers.AutoConfig.from_pretrained(source, trust_remote_code=trust)
        self.family: Family = (
            detect_family(source, self.tokenizer, config) if family == "auto" else family
        )
        self.step_tag = step_tag if step_tag is not None else DEFAULT_TAG[self.family]
        self.tokenizer.padding_side = "right"  # causal attention: real tokens never see padding
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        head = value_head(source) if self.family == "skywork" else None
        self.format = make_format(
            self.family, self.tokenizer, self.step_tag, good_token, bad_token, head
        )
        self.model = load_model(transformers, source, self.family, config, self.dtype, trust)
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
        steps = [[neutralise(step) for step in solution] for solution in solutions]
        return await asyncio.to_thread(self._score, question, steps)

    def _score(self, question: str, solutions: list[list[str]]) -> list[StepScores]:
        results: list[StepScores] = [StepScores(steps=[]) for _ in solutions]
        encoded = {i: self._encode(question, steps) for i, steps in enumerate(solutions) if steps}
        longest = {i: (len(encoded[i].ids), len("".join(solutions[i]))) for i in encoded}
        order = sorted(encoded, key=longest.__getitem__, reverse=True)
        for i in order:  # every solution is checked before any forward pass is paid for
            if len(encoded[i].reads) != len(solutions[i]):
                found, fed = len(encoded[i].reads), len(encoded[i].ids)
                raise ConfigurationError(_mismatch(self, i, len(solutions[i]), found, fed))
        with self._lock:
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                scores = self._forward([encoded[i] for i in batch])
                for k, i in enumerate(batch):
                    usage = Usage(prompt_tokens=len(encoded[i].ids), calls=1 if k == 0 else 0)
                    results[i] = StepScores(steps=scores[k], usage=usage)
        return results

    def _encode(self, question: str, steps: Sequence[str]) -> Encoded:
        ids, reads = self.format.encode(question, steps)
        if self.max_length is not None and len(ids) > self.max_length:
            ids = ids[: self.max_length]
            reads = [r for r in reads if r < self.max_length]
        return Encoded(ids, reads)

    def _forward(self, batch: list[Encoded]) -> list[list[float]]:
        """One forward pass: the step scores of each solution in ``batch``."""
        torch = self._torch
        input_ids, attention_mask, rows, columns = padded(torch, batch, self.tokenizer.pad_token_id)
        with torch.inference_mode():
            output = self.model(
                input_ids=input_ids.to(self.device),
                attention_mask=attention_mask.to(self.device),
                **self.format.forward_options,
            )
            where = (
                torch.tensor(rows, device=self.device),
                torch.tensor(columns, device=self.device),
            )
            good = self.format.probabilities(output, *where)
        return [chunk.tolist() for chunk in good.cpu().split([len(s.reads) for s in batch])]


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


def _mismatch(prm: TransformersPRM, index: int, steps: int, found: int, fed: int) -> str:
    """Why a solution's steps and the step tags found in its tokens do not match."""
    reason = (
        f"it was cut at max_length={prm.max_length} tokens"
        if prm.max_length is not None and fed >= prm.max_length
        else "the question or a step contains the tag, or it is not tokenized alone there"
    )
    return (
        f"solution {index} has {steps} steps but {found} step tags {prm.step_tag!r} were "
        f"found in its {fed} tokens: {reason}"
    )


def padded(torch: Any, batch: list[Encoded], pad_id: int) -> tuple[Any, Any, list[int], list[int]]:
    """A batch as right-padded input ids and their attention mask, with the (row, column) of
    every position whose score is read."""
    width = max(len(solution.ids) for solution in batch)
    input_ids = torch.full((len(batch), width), pad_id)
    attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
    rows: list[int] = []
    columns: list[int] = []
    for i, solution in enumerate(batch):
        input_ids[i, : len(solution.ids)] = torch.tensor(solution.ids)
        attention_mask[i, : len(solution.ids)] = 1
        rows += [i] * len(solution.reads)
        columns += solution.reads
    return input_ids, attention_mask, rows, columns
