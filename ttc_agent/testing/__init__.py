"""Scripted OpenAI-compatible servers for tests (yours too): deterministic replies, faults, and
the flavours of real servers (vLLM, OpenAI, llama.cpp).

- ``core``: what the server answers (``ScriptedServer``), with no sockets; ``faults``
  (``Fault``, ``FaultPlan``) and ``chat_request`` (``ChatRequest``, as a handler sees it);
- ``loopback``: ``LoopbackServer``, the script over real HTTP on 127.0.0.1 (faults, timeouts,
  dropped connections, streams closed early);
- ``transport``: ``TransportServer``, the script as an ``httpx.MockTransport`` for
  ``OpenAIChat(http_client=...)`` (logic tests: no socket, no thread);
- ``wire``, ``stream``, ``servers``: how replies are written, billed and streamed, and what each
  server flavour does.

Example:
    >>> with LoopbackServer(lambda request: "Hello!") as server:
    ...     print(server.base_url.startswith("http://127.0.0.1:"))
    True
"""

from ttc_agent.testing.chat_request import ChatRequest, Handler, fenced
from ttc_agent.testing.core import Answer, ScriptedServer
from ttc_agent.testing.faults import FAULT_KINDS, Fault, FaultPlan
from ttc_agent.testing.loopback import LoopbackServer
from ttc_agent.testing.servers import OWNED_BY, Flavour, apply_template, continued, refusal
from ttc_agent.testing.stream import billed_until, chunks, send
from ttc_agent.testing.transport import TransportServer
from ttc_agent.testing.wire import (
    Counting,
    Reply,
    chat_message,
    confident_reply,
    count_tokens,
    judge_reply,
    limit,
    logprobs,
    prompt_tokens,
    text_logprobs,
)

__all__ = [
    "FAULT_KINDS",
    "OWNED_BY",
    "Answer",
    "ChatRequest",
    "Counting",
    "Fault",
    "FaultPlan",
    "Flavour",
    "Handler",
    "LoopbackServer",
    "Reply",
    "ScriptedServer",
    "TransportServer",
    "apply_template",
    "billed_until",
    "chat_message",
    "chunks",
    "confident_reply",
    "continued",
    "count_tokens",
    "fenced",
    "judge_reply",
    "limit",
    "logprobs",
    "prompt_tokens",
    "refusal",
    "send",
    "text_logprobs",
]
