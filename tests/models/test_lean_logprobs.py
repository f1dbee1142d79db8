"""The embedded server's lean logprobs: the same replies as llama-cpp-python's server, for the
rows a request reads only; and an upgrade that breaks the patch is caught at server start."""

from __future__ import annotations

import json
import os
import urllib.request
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttc_agent import OpenAIChat
from ttc_agent.models import _llama_server, lean_logprobs
from ttc_agent.models.embedded import QWEN_CODER_0_5B, UNPATCHED, EmbeddedServer, assemble
from ttc_agent.models.lean_logprobs import (
    LeanLogprobsLlama,
    PatchUnsupported,
    check_internals,
    difference,
    top_indices,
    verify,
)
from ttc_agent.models.turn import LOCAL_CPU

TIES = st.sampled_from([-np.inf, -3.5, -1.25, -0.0, 0.0, 0.5, 2.0])  # many equal values


@given(st.lists(TIES, min_size=1, max_size=40), st.integers(min_value=-1, max_value=45))
def test_the_top_tokens_come_in_llama_cpp_pythons_order_ties_included(values, k):
    row = np.array(values, dtype=np.float32)
    expected = [i for _, i in sorted(zip(row, range(len(row)), strict=True), reverse=True)[:k]]
    assert top_indices(row, k) == (expected if k > 0 else [])


def test_an_upgrade_without_what_the_patch_uses_is_named():
    class NoGenerate:
        eval = _create_completion = detokenize = logits_to_logprobs = staticmethod(print)

    with pytest.raises(PatchUnsupported, match=r"llama_cpp.Llama has no generate"):
        check_internals(NoGenerate)

    class NoEcho:
        eval = generate = detokenize = logits_to_logprobs = staticmethod(print)

        def _create_completion(self, prompt, logprobs=None, stream=False): ...

    with pytest.raises(PatchUnsupported, match=r"_create_completion\(echo=\)"):
        check_internals(NoEcho)


def test_the_launcher_serves_unpatched_and_says_so_when_the_patch_does_not_fit(monkeypatch, capsys):
    import llama_cpp

    original = llama_cpp.Llama

    def unsupported(llama_class: type = original) -> None:
        raise PatchUnsupported("llama_cpp.Llama has no generate")

    monkeypatch.setattr(lean_logprobs, "check_internals", unsupported)
    assert _llama_server.patch() is False
    assert llama_cpp.Llama is original
    assert f"{UNPATCHED} (logprobs cost as much as upstream): llama_cpp.Llama has no generate" in (
        capsys.readouterr().err
    )
    monkeypatch.undo()
    monkeypatch.setattr(llama_cpp, "Llama", original)  # restored after the test
    assert _llama_server.patch() is True
    assert issubclass(llama_cpp.Llama, LeanLogprobsLlama)


@pytest.mark.embedded
def test_a_model_that_fails_its_check_at_start_serves_unpatched_and_says_so(monkeypatch, capsys):
    import llama_cpp

    def mismatch(llama: LeanLogprobsLlama) -> None:
        raise PatchUnsupported("lean logprobs differ from llama-cpp-python's: text 'a' against 'b'")

    monkeypatch.setattr(llama_cpp, "Llama", llama_cpp.Llama)  # restored after the test
    monkeypatch.setattr(lean_logprobs, "verify", mismatch)
    assert _llama_server.patch() is True
    path = str(assemble(QWEN_CODER_0_5B))
    model = llama_cpp.Llama(path, n_ctx=256, logits_all=True, verbose=False)  # as served
    assert isinstance(model, LeanLogprobsLlama) and model.lean is False
    assert f"{UNPATCHED} (logprobs cost as much as upstream): lean logprobs differ" in (
        capsys.readouterr().err
    )


def test_the_embedded_server_turns_the_launchers_notice_into_a_warning(tmp_path):
    log = tmp_path / "server.log"
    log.write_text(f"INFO: started\nttc-agent: {UNPATCHED}: llama_cpp.Llama has no generate\n")
    with pytest.warns(RuntimeWarning, match="llama_cpp.Llama has no generate"):
        EmbeddedServer()._warn_if_unpatched(log)
    log.write_text("INFO: started\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EmbeddedServer()._warn_if_unpatched(log)  # no notice, no warning


def test_the_embedded_model_asks_for_logprobs_as_any_endpoint_does():
    """They used to be off on the embedded model, at a cost of about half a second per token."""
    assert OpenAIChat(embedded="0.5b").logprobs is True
    assert OpenAIChat(embedded="1.5b").logprobs is True
    assert OpenAIChat(embedded="0.5b", logprobs=False).logprobs is False


@pytest.fixture(scope="module")
def llama() -> LeanLogprobsLlama:
    return LeanLogprobsLlama(
        str(assemble(QWEN_CODER_0_5B)),
        n_ctx=1024,
        n_threads=os.cpu_count() or 1,
        logits_all=True,
        verbose=False,
    )


PROMPT = "<|im_start|>user\nWrite a haiku about the sea.<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.embedded
async def test_a_lean_request_computes_and_log_softmaxes_only_the_rows_it_reads(llama, monkeypatch):
    shapes = []
    upstream = LeanLogprobsLlama.logits_to_logprobs

    def spy(logits: Any, axis: int = -1) -> Any:
        shapes.append(np.shape(logits))
        return upstream(logits, axis)

    monkeypatch.setattr(LeanLogprobsLlama, "logits_to_logprobs", staticmethod(spy))
    async with LOCAL_CPU.taken():
        llama.reset()
        llama.scores[:64] = np.nan  # rows no evaluation writes stay NaN
        reply = llama.create_completion(PROMPT, max_tokens=4, temperature=0.0, logprobs=5)
    prompt = reply["usage"]["prompt_tokens"]
    written = [row for row in range(64) if not np.isnan(llama.scores[row, 0])]
    assert written == list(range(prompt - 1, prompt + 3))  # the rows that chose each token
    assert shapes == [(4, llama.n_vocab())]  # the completion's rows, not the prompt's


@pytest.mark.embedded
async def test_verify_catches_logprobs_read_from_the_wrong_rows(llama, monkeypatch):
    async with LOCAL_CPU.taken():
        verify(llama)  # the patch as it is passes
        shifted = LeanLogprobsLlama._logprobs
        monkeypatch.setattr(
            LeanLogprobsLlama,
            "_logprobs",
            lambda self, tokens, start, top, offset: shifted(self, tokens, start + 1, top, offset),
        )
        with pytest.raises(PatchUnsupported, match="lean logprobs differ"):
            verify(llama)


SCORE = {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}
ECHO = {"prompt": PROMPT, "max_tokens": 3, "logprobs": 3, "echo": True}
REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("completions", ECHO),  # first: both servers evaluate every prompt row afresh
    (
        "chat/completions",
        {
            "messages": [{"role": "user", "content": "Name a colour."}],
            "max_tokens": 6,
            "logprobs": True,
            "top_logprobs": 5,
        },
    ),
    (
        "chat/completions",  # as RubricJudge asks: JSON constrained by a grammar
        {
            "messages": [{"role": "user", "content": "Rate the sea from 1 to 5, in JSON."}],
            "response_format": {"type": "json_object", "schema": SCORE},
            "max_tokens": 12,
            "logprobs": True,
            "top_logprobs": 5,
        },
    ),
    ("completions", {"prompt": PROMPT, "max_tokens": 12, "logprobs": 10, "stop": ["\n"]}),
    ("completions", {"prompt": PROMPT + "Waves", "max_tokens": 1, "logprobs": 20}),  # a prefix
    ("completions", {"prompt": PROMPT, "max_tokens": 4, "logprobs": 0}),
    ("completions", {"prompt": PROMPT, "max_tokens": 4}),
    ("completions", {"prompt": PROMPT, "max_tokens": 6, "logprobs": 5, "stream": True}),
]


def _post(base_url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    data = json.dumps(body | {"temperature": 0.0}).encode()
    request = urllib.request.Request(
        f"{base_url}/{path}", data, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=600) as reply:
        if not body.get("stream"):
            return json.load(reply)
        lines = [line.decode().strip() for line in reply]
    chunks = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    return {"choices": [_joined([chunk["choices"][0] for chunk in chunks])]}


def _joined(pieces: list[dict[str, Any]]) -> dict[str, Any]:
    """A streamed completion's chunks as one choice."""
    logprobs: dict[str, list[Any]] = {}
    for piece in pieces:
        for key, values in (piece["logprobs"] or {}).items():
            logprobs.setdefault(key, []).extend(values)
    return {"text": "".join(piece["text"] for piece in pieces), "logprobs": logprobs or None}


@pytest.mark.embedded
async def test_the_lean_server_answers_as_llama_cpp_pythons_server_does():
    """Same requests, one after the other (so that each reuses what it can of the one before's
    KV cache), to the server as it comes and to the lean one: the same text, tokens and top
    tokens, and logprobs within 1e-4.

    Prompt logprobs (``echo``) come first: llama-cpp-python's own server gives different ones
    (by up to 0.13 on this prompt) when part of the prompt is in its KV cache, evaluated in
    another batch, and the lean server evaluates every prompt row afresh for them."""
    with EmbeddedServer(lean_logprobs=False) as plain, EmbeddedServer() as lean:
        for path, body in REQUESTS:
            async with LOCAL_CPU.taken():
                theirs, ours = (_post(s.base_url, path, body) for s in (plain, lean))
            [a], [b] = ours["choices"], theirs["choices"]
            assert (b["logprobs"] is not None) == ("logprobs" in body), body  # as asked
            assert (a["logprobs"] is not None) == ("logprobs" in body), body
            if path == "completions":
                assert a["text"] == b["text"], body
                assert b["logprobs"] is None or difference(a, b) is None, body
            else:
                assert a["message"] == b["message"]
                for x, y in zip(a["logprobs"]["content"], b["logprobs"]["content"], strict=True):
                    assert x["token"] == y["token"]
                    assert x["logprob"] == pytest.approx(y["logprob"], abs=1e-4)
                    assert [t["token"] for t in x["top_logprobs"]] == [
                        t["token"] for t in y["top_logprobs"]
                    ]
                    assert [t["logprob"] for t in x["top_logprobs"]] == pytest.approx(
                        [t["logprob"] for t in y["top_logprobs"]], abs=1e-4
                    )
