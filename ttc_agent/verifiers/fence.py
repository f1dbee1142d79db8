"""Fencing untrusted text (candidates, conversations) inside a judge prompt.

The fence's tag is derived from the fenced text's own SHA-256, so the text cannot contain its
closing line: it would have to contain its own hash.
"""

from __future__ import annotations

import hashlib


def fence_tag(text: str) -> str:
    """The tag that marks the fence around ``text``."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def fence(text: str, label: str) -> str:
    """Wrap ``text`` in an unforgeable fence named ``label``.

    Example:
        >>> print(fence("Hello", "CANDIDATE"))
        <<<CANDIDATE 185f8db32271fe25>>>
        Hello
        <<<END CANDIDATE 185f8db32271fe25>>>
    """
    tag = fence_tag(text)
    return f"<<<{label} {tag}>>>\n{text}\n<<<END {label} {tag}>>>"
