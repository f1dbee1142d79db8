"""A request as a scripted server (``ttc_agent.testing.core``) records it and hands it to its
handler, and what a handler answers."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ttc_agent.testing.faults import Fault
from ttc_agent.testing.servers import continued
from ttc_agent.testing.wire import Reply


@dataclass
class ChatRequest:
    """A recorded chat-completions request."""

    index: int
    body: dict[str, Any]
    headers: dict[str, str]  # names in lower case
    choice: int = 0  # which of the n choices a handler call is for
    usage: dict[str, int] = field(default_factory=dict)  # what the reply billed (200 only)
    flavour: str | None = None  # the server's (see ttc_agent.testing.servers)
    closed_early: bool = False  # the client closed the stream before its end
    streamed: int | None = None  # tokens sent before the close was seen (usage bills them)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])

    @property
    def prompt(self) -> str | None:
        """The raw prompt of a ``/completions`` request (None for chat requests)."""
        return self.body.get("prompt")

    @property
    def prefix(self) -> str | None:
        """The partial assistant reply the server continues, if any (as its flavour would)."""
        return continued(self.body, self.flavour)

    @property
    def system(self) -> str:
        return "\n".join(m.get("content") or "" for m in self.messages if m.get("role") == "system")

    @property
    def last_user(self) -> str:
        """The last user message's text (its text parts joined, for content parts)."""
        if self.prompt is not None:
            users = re.findall(r"<\|im_start\|>user\n(.*?)<\|im_end\|>", self.prompt, re.DOTALL)
        else:
            users = [_text(m.get("content")) for m in self.messages if m.get("role") == "user"]
        return users[-1] if users else ""


Handler = Callable[[ChatRequest], "str | Reply | Fault"]


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(part.get("text") or "" for part in content if isinstance(part, dict))
    return content or ""


def fenced(text: str, label: str = "CANDIDATE") -> str | None:
    """The text inside the first ``label`` fence of a judge prompt (see verifiers.fence).

    Example:
        >>> fenced("Rate:\\n<<<CANDIDATE a1>>>\\nx = 4\\n<<<END CANDIDATE a1>>>")
        'x = 4'
    """
    match = re.search(rf"<<<{label} (\w+)>>>\n(.*?)\n<<<END {label} \1>>>", text, re.DOTALL)
    return None if match is None else match.group(2)
