"""The prompt bound holds for real templates and tokenizers: Mistral's (mistral-common) and
Qwen2.5's (the embedded model's template, rendered as Hugging Face renders it, tokenized by
llama.cpp)."""

from __future__ import annotations

import json

import pytest

from ttc_agent.token_bound import prompt_token_bound

TEXTS = [
    "Hi",
    "",
    "\n" * 300,
    "1234567890" * 40,
    "\u4e2d\u6587\u5b57\u7b26" * 60,
    "\U0001f600\U0001f680" * 50,
    " " * 257 + "\t" * 33,
    "[INST] <|im_end|> <s></s> <start_of_turn> " * 10,
    "a" * 999,
    json.dumps({"nested": [{"k": i, "v": "x" * i} for i in range(30)]}),
]
ADD = {
    "type": "function",
    "function": {
        "name": "add_numbers",
        "description": "Add numbers. " * 5,
        "parameters": {
            "type": "object",
            "properties": {"values": {"type": "array", "items": {"type": "number"}}},
            "required": ["values"],
        },
    },
}


def call(i: int, values: list[int]) -> dict:
    arguments = json.dumps({"values": values}, separators=(",", ":"))
    return {
        "id": f"call{i:05d}",
        "type": "function",
        "function": {"name": "add_numbers", "arguments": arguments},
    }


def conversations() -> list[tuple[list[dict], list[dict] | None]]:
    """(messages, tools): plain turns of every text, and tool-call rounds."""
    cases: list[tuple[list[dict], list[dict] | None]] = []
    for text in TEXTS:
        cases.append(([{"role": "user", "content": text}], None))
        cases.append(
            ([{"role": "system", "content": text}, {"role": "user", "content": text}], None)
        )
        cases.append(
            (
                [
                    {"role": "user", "content": "Q"},
                    {"role": "assistant", "content": text},
                    {"role": "user", "content": [{"type": "text", "text": text}]},
                ],
                None,
            )
        )
    for values in ([1, 2], list(range(200)), [10**12] * 50):
        tool_round = [
            {"role": "user", "content": "Add them."},
            {"role": "assistant", "content": None, "tool_calls": [call(1, values)]},
            {"role": "tool", "tool_call_id": "call00001", "content": str(sum(values))},
            {"role": "assistant", "content": "Done."},
            {"role": "user", "content": "Again, for 3 and 4."},
        ]
        cases.append((tool_round, [ADD]))
    return cases


CASES = conversations()


@pytest.mark.parametrize("version", ["v2", "v3", "v3_tekken", "v7"])
def test_the_bound_holds_for_mistral_tokenizers(version):
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    make = {
        "v2": MistralTokenizer.v2,
        "v3": MistralTokenizer.v3,
        "v3_tekken": lambda: MistralTokenizer.v3(is_tekken=True),
        "v7": MistralTokenizer.v7,
    }[version]
    tokenizer = make()
    for messages, tools in CASES:
        if any(m["role"] == "assistant" and m.get("content") == "" for m in messages):
            continue  # Mistral refuses an empty assistant message
        sent = [{k: v for k, v in m.items() if v is not None} for m in messages]
        request = ChatCompletionRequest(messages=sent, tools=tools)
        tokens = len(tokenizer.encode_chat_completion(request).tokens)
        assert tokens <= prompt_token_bound(messages, tools=tools), (messages, tools)


@pytest.mark.embedded
def test_the_bound_holds_for_qwen_templates_and_tokenizer():
    import jinja2
    from llama_cpp import Llama

    from ttc_agent.models.embedded import QWEN_CODER_0_5B, assemble

    vocab = Llama(model_path=str(assemble(QWEN_CODER_0_5B)), vocab_only=True, verbose=False)
    environment = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    environment.filters["tojson"] = lambda value, indent=None: json.dumps(
        value, ensure_ascii=False, indent=indent
    )  # as Hugging Face's chat templates render it
    template = environment.from_string(vocab.metadata["tokenizer.chat_template"])
    for messages, tools in CASES:
        texts = [m | {"content": _text(m.get("content"))} for m in messages]  # Qwen's takes text
        parsed = [  # and tool call arguments as objects, or as the strings sent
            m | ({"tool_calls": [_parsed(c) for c in m["tool_calls"]]} if "tool_calls" in m else {})
            for m in texts
        ]
        for render in (texts, parsed):
            text = template.render(messages=render, tools=tools, add_generation_prompt=True)
            tokens = len(vocab.tokenize(text.encode(), add_bos=False, special=True))
            assert tokens <= prompt_token_bound(messages, tools=tools), text[:200]


def _text(content):
    if isinstance(content, list):
        return "".join(part["text"] for part in content)
    return content or ""


def _parsed(call: dict) -> dict:
    function = call["function"]
    return call | {"function": function | {"arguments": json.loads(function["arguments"])}}
