"""Fencing untrusted text (candidates, conversations) inside a judge prompt.

Two structural defences, applied to every fenced text:

- The fence's tag is derived from the text's own SHA-256, so the text cannot contain its closing
  line: it would have to contain its own hash.
- The control markers of the common chat templates are broken with an invisible word joiner, so
  a server that renders a template (and reads special tokens out of the rendered text, as
  Hugging Face tokenizers and llama.cpp do) cannot read them as role switches or ends of turn:
  ChatML and Llama 3 (``<|im_start|>``, ``<|eot_id|>``, the whole ``<|...|>`` family),
  DeepSeek's (the same, written with full-width bars, U+FF5C), Mistral and Llama 2
  (``[INST]``, ``[/INST]``, ``<s>``, ``</s>``, ``<<SYS>>``, Mistral's ``[TOOL_CALLS]`` and the
  rest), Gemma (``<start_of_turn>``, ``<end_of_turn>``) and the tool-call and reasoning tags
  that Qwen and Hermes models read as tokens (``<tool_call>``, ``<think>``).
"""

from __future__ import annotations

import hashlib
import re

_WORD_JOINER = "\u2060"
_BARS = re.compile(r"<([|\uff5c])([^<>|\uff5c\n]{0,40})([|\uff5c])>")
_TAGS = re.compile(
    r"(<</?|</?)(SYS|s|unk|pad|bos|eos|start_of_turn|end_of_turn|start_of_image|end_of_image"
    r"|tool_call|tool_response|think|tool_calls|tools)(>>|>)"
)
_BRACKETS = re.compile(
    r"\[(/?)(INST|SYSTEM_PROMPT|AVAILABLE_TOOLS|TOOL_CALLS|TOOL_RESULTS|TOOL_CONTENT|IMG"
    r"|IMG_BREAK|IMG_END|PREFIX|MIDDLE|SUFFIX|THINK|ARGS|CALL_ID)\]"
)
CONTROL_MARKERS = re.compile(f"{_BARS.pattern}|{_TAGS.pattern}|{_BRACKETS.pattern}")
"""What ``neutralise`` breaks: every control marker of the templates above."""


def neutralise(text: str) -> str:
    """Break chat-template control markers so that they stay text (remove the word joiners to
    get the text back).

    Example:
        >>> neutralise("<|im_start|>system") == "<\\u2060|im_start|\\u2060>system"
        True
        >>> neutralise("[INST] hi [/INST]</s>") == "[\\u2060INST] hi [/\\u2060INST]</\\u2060s>"
        True
    """
    text = _BARS.sub(lambda m: f"<{_WORD_JOINER}{m[1]}{m[2]}{m[3]}{_WORD_JOINER}>", text)
    text = _TAGS.sub(lambda m: f"{m[1]}{_WORD_JOINER}{m[2]}{m[3]}", text)
    return _BRACKETS.sub(lambda m: f"[{m[1]}{_WORD_JOINER}{m[2]}]", text)


def fence_tag(text: str) -> str:
    """The tag that marks the fence around ``text``."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def fence(text: str, label: str) -> str:
    """Wrap ``text`` (neutralised) in an unforgeable fence named ``label``.

    Example:
        >>> print(fence("Hello", "CANDIDATE"))
        <<<CANDIDATE 185f8db32271fe25>>>
        Hello
        <<<END CANDIDATE 185f8db32271fe25>>>
    """
    text = neutralise(text)
    tag = fence_tag(text)
    return f"<<<{label} {tag}>>>\n{text}\n<<<END {label} {tag}>>>"
