"""llama-cpp-python's ``Llama`` with logprobs that cost what they should on a CPU.

llama-cpp-python 0.3.36 (the version the ``local`` extra pins) makes logprobs dear in three
ways, measured by ``benchmarks/embedded_logprobs.py``:

1. its server builds every model with ``logits_all=True``, so every request, logprobs or not,
   computes the 151,936 logits of Qwen2.5's vocabulary at every prompt token and copies them;
2. a request with logprobs log-softmaxes every one of those rows, prompt and completion, to
   keep the completion's;
3. at every generated token it sorts the whole vocabulary in Python to take the top few.

``LeanLogprobsLlama`` keeps the model's ``logits_all=True`` (what its server checks before
logprobs) but computes, at each evaluation, only the logits of the last token, the one row a
sample or a logprob reads. A request with logprobs is generated as one without; then the rows of
the generated tokens alone are log-softmaxed and their top tokens taken with a partition, not a
sort. What the request returns is what llama-cpp-python returns, within float rounding
(``verify`` checks it on the loaded model; ``tests/models/test_lean_logprobs.py`` pins it). Prompt
logprobs (``echo``) and streams are left to llama-cpp-python; an echo evaluates every row
afresh. Only the embedded server's own process imports this module (``_llama_server``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import llama_cpp
import numpy as np
import numpy.typing as npt

UPSTREAM = llama_cpp.Llama
"""The class patched, as llama-cpp-python defines it."""

INTERNALS = ("eval", "generate", "_create_completion", "detokenize", "logits_to_logprobs")
"""The methods of ``Llama`` the patch overrides or calls."""

PARAMETERS = ("prompt", "logprobs", "echo", "stream")
"""The parameters of ``Llama._create_completion`` the patch reads."""

PROBE = "The three primary colours are"
TOLERANCE = 1e-4


class PatchUnsupported(RuntimeError):
    """The installed llama-cpp-python is not one the lean logprobs were built for."""


def check_internals(llama_class: Any = UPSTREAM) -> None:
    """Raise ``PatchUnsupported`` naming what ``llama_class`` lacks of what the patch uses.

    Example:
        >>> check_internals()
    """
    missing = [name for name in INTERNALS if not callable(getattr(llama_class, name, None))]
    if not missing:
        parameters = inspect.signature(llama_class._create_completion).parameters
        missing = [f"_create_completion({name}=)" for name in PARAMETERS if name not in parameters]
    if missing:
        raise PatchUnsupported(
            f"llama_cpp.Llama has no {', '.join(missing)}: this llama-cpp-python is not one "
            "the lean logprobs of ttc-agent were built for"
        )


def top_indices(row: npt.NDArray[np.float32], k: int) -> list[int]:
    """The indexes of the ``k`` largest values of ``row``, in llama-cpp-python's order: largest
    first, equal values by the larger index first (``sorted(zip(row, range(len(row))),
    reverse=True)``), found with a partition rather than a sort of the whole row.

    Example:
        >>> top_indices(np.array([0.1, 0.7, 0.1, 0.5], dtype=np.float32), 3)
        [1, 3, 2]
    """
    if k <= 0:
        return []
    if k >= len(row):
        candidates = np.arange(len(row))
    else:
        threshold = np.partition(row, len(row) - k)[len(row) - k]
        candidates = np.flatnonzero(row >= threshold)  # every tie at the threshold too
    order = np.lexsort((-candidates, -row[candidates]))
    return [int(i) for i in candidates[order][:k]]


@dataclass
class _Generated:
    """The tokens one request's generation read and wrote."""

    prompt: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)


class LeanLogprobsLlama(UPSTREAM):  # type: ignore[misc,valid-type]
    """``llama_cpp.Llama`` that computes logits and logprobs only for the rows a request reads.

    ``lean`` False (a draft model, ``logits_all=False``, or a failed ``verify``) makes it
    behave as ``llama_cpp.Llama`` does, row for row.

    Example:
        >>> # llama = LeanLogprobsLlama("model.gguf", logits_all=True); verify(llama)
    """

    _logits_all: bool  # llama_cpp's own attributes, typed here as the patch reads them
    cache: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lean: bool = bool(self._logits_all) and self.draft_model is None
        self._every_row = False
        self._generated: _Generated | None = None

    def eval(self, tokens: Sequence[int]) -> None:
        """Evaluate ``tokens``, keeping the logits of the last one only (unless every row is
        wanted)."""
        if self._every_row or not self.lean:
            super().eval(tokens)
            return
        self._logits_all = False  # llama.cpp computes the logits of each batch's last token
        try:
            super().eval(tokens)
        finally:
            self._logits_all = True
        if len(tokens) > 0:
            last = self._ctx.get_logits_ith(-1)
            self.scores[self.n_tokens - 1, :] = np.ctypeslib.as_array(last, (self._n_vocab,))

    def generate(self, tokens: Sequence[int], *args: Any, **kwargs: Any) -> Iterator[int]:
        """llama-cpp-python's generation, noting the prompt and tokens of a lean request."""
        inner = super().generate(tokens, *args, **kwargs)
        record = self._generated
        if record is not None:
            record.prompt = list(tokens)
        sent = None
        try:
            while True:
                try:
                    token = inner.send(sent)
                except StopIteration:
                    return
                if record is not None:
                    record.tokens.append(token)
                sent = yield token
        finally:
            inner.close()

    def _create_completion(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        call = inspect.signature(UPSTREAM._create_completion).bind(self, *args, **kwargs)
        call.apply_defaults()
        given = call.arguments
        upstream = UPSTREAM._create_completion
        if not self.lean or given["logprobs"] is None or given["stream"]:
            yield from upstream(*call.args, **call.kwargs)  # the rows a stream reads are kept
            return
        if given["echo"] or len(given["prompt"]) == 0:  # logprobs of the prompt: every row
            self._every_row, cache, self.cache = True, self.cache, None
            self.reset()  # rows skipped before (in memory or cached) are evaluated again
            try:
                yield from upstream(*call.args, **call.kwargs)
            finally:
                self._every_row, self.cache = False, cache
            return
        top, given["logprobs"] = given["logprobs"], None
        self._generated = generated = _Generated()
        try:
            [response] = list(upstream(*call.args, **call.kwargs))
        finally:
            self._generated = None
        completion = generated.tokens[: response["usage"]["completion_tokens"]]
        start = len(generated.prompt) - 1  # the row whose logits chose the first token
        choice = response["choices"][0]
        choice["logprobs"] = self._logprobs(completion, start, top, len(given["prompt"]))
        yield response

    def _logprobs(
        self, tokens: list[int], start: int, top: int, text_offset: int
    ) -> dict[str, list[Any]]:
        """The completion's logprobs as llama-cpp-python reports them (tokens, text offsets,
        token logprobs, top logprobs), from the rows ``start`` on."""
        rows = self.logits_to_logprobs(self.scores[start : start + len(tokens)])
        texts = [self._text([t], tokens[:i]) for i, t in enumerate(tokens)]
        report: dict[str, list[Any]] = {
            "tokens": [],
            "text_offset": [],
            "token_logprobs": [],
            "top_logprobs": [],
        }
        for i, (token, text, row) in enumerate(zip(tokens, texts, rows, strict=False)):
            if token == self.token_bos():
                continue
            best = top_indices(row, top)
            alternatives = {self._text([j], tokens[:i]): float(row[j]) for j in best}
            alternatives[text] = float(row[token])
            report["tokens"].append(text)
            report["text_offset"].append(text_offset + len(self._text(tokens[:i])))
            report["token_logprobs"].append(float(row[token]))
            report["top_logprobs"].append(alternatives)
        return report

    def _text(self, tokens: list[int], before: list[int] | None = None) -> str:
        return self.detokenize(tokens, prev_tokens=before).decode("utf-8", errors="ignore")


def verify(llama: LeanLogprobsLlama) -> None:
    """Compare a greedy request with logprobs, lean and as llama-cpp-python answers it, on the
    loaded model; raise ``PatchUnsupported`` where they differ. Leaves the model reset."""
    request = {"max_tokens": 4, "temperature": 0.0, "logprobs": 5}
    try:
        lean = llama.create_completion(PROBE, **request)
        llama.lean = False
        llama.reset()
        plain = llama.create_completion(PROBE, **request)
    finally:
        llama.lean = True
        llama.reset()
    problem = difference(lean["choices"][0], plain["choices"][0])
    if problem is not None:
        raise PatchUnsupported(f"lean logprobs differ from llama-cpp-python's: {problem}")


def difference(
    lean: dict[str, Any], plain: dict[str, Any], tolerance: float = TOLERANCE
) -> str | None:
    """What differs between two text-completion choices with logprobs (None: the same text,
    tokens, offsets and top tokens, and logprobs within ``tolerance``).

    Example:
        >>> a = {"text": "x", "logprobs": {"tokens": ["x"], "text_offset": [0],
        ...      "token_logprobs": [-0.1], "top_logprobs": [{"x": -0.1, "y": -2.5}]}}
        >>> b = {"text": "x", "logprobs": {"tokens": ["x"], "text_offset": [0],
        ...      "token_logprobs": [-0.1], "top_logprobs": [{"x": -0.1, "y": -2.6}]}}
        >>> difference(a, a), difference(a, b)
        (None, "top logprob of 'y' at token 0: -2.5 against -2.6")
    """
    if lean["text"] != plain["text"]:
        return f"text {lean['text']!r} against {plain['text']!r}"
    ours, theirs = lean["logprobs"], plain["logprobs"]
    for key in ("tokens", "text_offset"):
        if ours[key] != theirs[key]:
            return f"{key} {ours[key]} against {theirs[key]}"
    pairs = zip(ours["token_logprobs"], theirs["token_logprobs"], strict=True)
    for i, (a, b) in enumerate(pairs):
        if not _close(a, b, tolerance):
            return f"logprob of token {i}: {a} against {b}"
    for i, (a, b) in enumerate(zip(ours["top_logprobs"], theirs["top_logprobs"], strict=True)):
        if a is None or b is None or list(a) != list(b):
            return None if a is b is None else f"top tokens at token {i}: {a} against {b}"
        for token in a:
            if not _close(a[token], b[token], tolerance):
                return f"top logprob of {token!r} at token {i}: {a[token]} against {b[token]}"
    return None


def _close(a: float | None, b: float | None, tolerance: float) -> bool:
    if a is None or b is None:  # an echo's first token has none
        return a is b
    return math.isclose(a, b, rel_tol=0.0, abs_tol=tolerance)
