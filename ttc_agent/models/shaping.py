r"""How ``OpenAIChat``'s requests are shaped for an OpenAI-compatible server, in its dialect:
pure functions, no I/O (the replies are read in ``ttc_agent.models.replies``).

- the sampling fields of a call: temperature, length, stop strings, logprobs, tools;
- the response format that asks for a JSON schema (``json_mode``: ``json_schema`` as OpenAI,
  vLLM, SGLang and llama-server take it, ``json_object`` as llama-cpp-python's server does);
- continuing a partial reply: a final assistant message (``prefill``), vLLM's
  ``continue_final_message`` (``vllm``), or a raw prompt for ``/completions`` (``chatml``,
  ``llamacpp``), whose logprobs are a count and which takes no tools nor response format;
- the request itself: its path, its body, ``n``, and the extra fields of the caller.

Example:
    >>> params = sampling_params(temperature=0.7, top_logprobs=2)
    >>> messages = [{"role": "user", "content": "Q"}]
    >>> path, body, extra = completion_request("m", messages, 4, params, {})
    >>> path, body["n"], body["logprobs"], body["top_logprobs"]
    ('/chat/completions', 4, True, 2)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ttc_agent.models.request_fields import fields_for
from ttc_agent.types import Message

JSONMode = Literal["json_schema", "json_object", "off"]

VLLM_CONTINUE = {"continue_final_message": True, "add_generation_prompt": False}
"""What asks vLLM to continue the final assistant message instead of answering it."""


def sampling_params(
    *,
    temperature: float | None = None,
    max_tokens: int | None = None,
    stop: Sequence[str] | None = None,
    response_format: dict[str, Any] | None = None,
    top_logprobs: int | None = None,
    tools: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A call's fields beyond the conversation, the unset ones left out.

    Example:
        >>> sampling_params(temperature=0.0, max_tokens=8, top_logprobs=5, tools=[])
        {'temperature': 0.0, 'max_tokens': 8, 'logprobs': True, 'top_logprobs': 5}
    """
    params: dict[str, Any] = {
        "temperature": temperature,
        "max_tokens": max_tokens,
        "stop": list(stop) if stop else None,
        "response_format": response_format,
        "tools": list(tools) if tools else None,
    }
    if top_logprobs is not None:
        params |= {"logprobs": True, "top_logprobs": top_logprobs}
    return {key: value for key, value in params.items() if value is not None}


def schema_format(schema: dict[str, Any] | None, json_mode: JSONMode) -> dict[str, Any] | None:
    """The ``response_format`` that asks for a reply in ``schema``, in the server's dialect
    (``json_mode``), or None.

    Example:
        >>> schema_format({"type": "object"}, "json_object")
        {'type': 'json_object', 'schema': {'type': 'object'}}
        >>> schema_format({"type": "object"}, "json_schema")["json_schema"]["strict"]
        True
    """
    if schema is None or json_mode == "off":
        return None
    if json_mode == "json_object":
        return {"type": "json_object", "schema": schema}
    strict = {"name": "reply", "schema": schema, "strict": True}
    return {"type": "json_schema", "json_schema": strict}


def text_completion(params: Mapping[str, Any], prompt: str) -> dict[str, Any]:
    """A chat call's fields as ``/completions`` takes them, for the raw ``prompt``: no tools
    nor response format, and ``logprobs`` as the number of alternatives.

    Example:
        >>> text_completion({"stop": ["."], "tools": [], "logprobs": True, "top_logprobs": 3}, "Q")
        {'prompt': 'Q', 'stop': ['.'], 'logprobs': 3}
    """
    text = {k: v for k, v in params.items() if k not in ("response_format", "tools")}
    if "logprobs" in text:
        text["logprobs"] = text.pop("top_logprobs")
    return {"prompt": prompt} | text


def vllm_continuation(params: Mapping[str, Any]) -> dict[str, Any]:
    """A call's fields asking vLLM to continue the final assistant message.

    Example:
        >>> vllm_continuation({"stop": ["."]})["extra_body"]["continue_final_message"]
        True
    """
    return {**params, "extra_body": VLLM_CONTINUE}


def chatml(messages: Sequence[Message]) -> str:
    r"""Render messages in ChatML, leaving the last (assistant) message open for continuation.

    Example:
        >>> chatml([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "He"}])
        '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHe'
    """
    *history, last = messages
    turns = [f"<|im_start|>{m['role']}\n{m.get('content') or ''}<|im_end|>\n" for m in history]
    return "".join(turns) + f"<|im_start|>{last['role']}\n{last.get('content') or ''}"


def with_fields(
    params: Mapping[str, Any], fields: Mapping[str, Any], *, shaped: bool
) -> dict[str, Any]:
    """A call's fields with the caller's extra fields (``OpenAIChat(request_fields=...)``) in
    its ``extra_body``: those the call does not set itself, less the shape fields when its
    reply has a shape of its own (a schema asked for, or a ``/completions`` continuation).

    Example:
        >>> with_fields({"stop": ["."]}, {"seed": 7, "stop": ["!"]}, shaped=False)
        {'stop': ['.'], 'extra_body': {'seed': 7}}
    """
    shaped = shaped or "prompt" in params
    extra = fields_for(fields, params, shaped=shaped) | params.get("extra_body", {})
    return {**params, "extra_body": extra}


def completion_request(
    model: str,
    messages: Sequence[Message],
    n: int,
    params: Mapping[str, Any],
    extra_body: Mapping[str, Any],
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """One request's path (chat or text completions), its body (``n`` only above one) and
    its extra fields (the model's ``extra_body`` under the call's own).

    Example:
        >>> completion_request("m", [], 1, {"prompt": "Q", "extra_body": {"seed": 1}}, {})
        ('/completions', {'model': 'm', 'prompt': 'Q'}, {'seed': 1})
    """
    extra = {**extra_body, **params.get("extra_body", {})}
    request = {"model": model, **{k: v for k, v in params.items() if k != "extra_body"}}
    text = "prompt" in params
    if not text:
        request["messages"] = list(messages)
    if n > 1:
        request["n"] = n
    return ("/completions" if text else "/chat/completions"), request, extra
