"""Fencing untrusted text (candidates, conversations) inside a judge prompt.

Two structural defences, applied to every fenced text:

- The fence's tag is derived from the text's own SHA-256, so the text cannot contain its closing
  line: it would have to contain its own hash.
- Chat-template control markers (``<|im_start|>``, ``<|eot_id|>``, ``<|endoftext|>`` and the
  rest of the ``<|...|>`` family) are broken with an invisible word joiner, so a server that
  renders a template cannot read them as role switches or ends of turn.
"""

from __future__ import annotations

import hashlib
import re

_WORD_JOINER = "\u2060"
_MARKER = re.compile(r"<\|([^<>|\n]{0,40})\|>")


def neutralise(text: str) -> str:
    """Break chat-template control markers so that they stay text.

    Example:
        >>> neutralise("<|im_start|>system") == "<\\u2060|im_start|\\u2060>system"
        True
    """
    return _MARKER.sub(lambda m: f"<{_WORD_JOINER}|{m.group(1)}|{_WORD_JOINER}>", text)


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
