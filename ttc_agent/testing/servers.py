"""What the loopback server (``ttc_agent.testing``) imitates of the servers people run: the
``owned_by`` they list, and what each does with a partial assistant reply.

- no flavour: continues any final assistant message (a ``prefill`` server) and lists
  ``owned_by: "loopback"``;
- ``vllm``: continues a final assistant message only with ``continue_final_message: true`` and
  ``add_generation_prompt: false`` (both true is a 400, as in vLLM), else answers afresh;
- ``openai``: never continues one: a final assistant message gets a fresh reply;
- ``llamacpp`` (llama.cpp's llama-server): continues a final assistant message (its prefill),
  and renders its (ChatML) template at ``/apply-template`` for ``/completions``.

Every flavour continues the raw prompt of a ``/completions`` request, which ends in the open
assistant turn of a ChatML rendering.
"""

from __future__ import annotations

from typing import Any, Literal

Flavour = Literal["vllm", "openai", "llamacpp"]

OWNED_BY: dict[str | None, str] = {
    None: "loopback",
    "vllm": "vllm",
    "openai": "system",
    "llamacpp": "llamacpp",
}

_ASSISTANT = "<|im_start|>assistant\n"


def continued(body: dict[str, Any], flavour: str | None) -> str | None:
    """The partial assistant reply a server of this flavour continues for a request (None: it
    answers afresh).

    Example:
        >>> body = {"messages": [{"role": "user", "content": "Q"},
        ...                      {"role": "assistant", "content": "Step 1"}]}
        >>> continued(body, None), continued(body, "vllm"), continued(body, "openai")
        ('Step 1', None, None)
    """
    prompt = body.get("prompt")
    if prompt is not None:
        start = prompt.rfind(_ASSISTANT)
        return None if start < 0 else prompt[start + len(_ASSISTANT) :]
    messages = body.get("messages") or []
    if not messages or messages[-1].get("role") != "assistant" or flavour == "openai":
        return None
    if flavour == "vllm" and not body.get("continue_final_message"):
        return None
    return messages[-1].get("content") or ""


def refusal(body: dict[str, Any], flavour: str | None) -> str | None:
    """Why a server of this flavour answers a request with 400, if it does."""
    if flavour != "vllm" or not body.get("continue_final_message"):
        return None
    if body.get("add_generation_prompt", True):
        return "Cannot set both `continue_final_message` and `add_generation_prompt` to True."
    messages = body.get("messages") or []
    if not messages or messages[-1].get("role") != "assistant":
        return "continue_final_message needs a final message from the assistant"
    return None


def apply_template(messages: list[dict[str, Any]]) -> str:
    r"""llama-server's ``/apply-template`` for a ChatML model: the conversation, then the open
    assistant turn (a final assistant message is prefilled, as llama-server does).

    Example:
        >>> apply_template([{"role": "user", "content": "Hi"}])
        '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n'
    """
    last = messages[-1] if messages else {}
    prefill = (last.get("content") or "") if last.get("role") == "assistant" else None
    history = messages if prefill is None else messages[:-1]
    turns = [f"<|im_start|>{m['role']}\n{m.get('content') or ''}<|im_end|>\n" for m in history]
    return "".join(turns) + _ASSISTANT + (prefill or "")
