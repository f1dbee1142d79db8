"""``ttc serve``'s answer to a client: a search's chosen candidate as an OpenAI
``chat.completion``, its tool calls as OpenAI writes them, with the search's whole usage and the
``ttc`` extension field."""

from __future__ import annotations

import time
import uuid
from typing import Any

from ttc_agent.serve_tools import content_of
from ttc_agent.types import Candidate, SearchResult


def chat_completion(result: SearchResult, model: str) -> dict[str, Any]:
    """The ``chat.completion`` of a search's answer.

    Example:
        >>> done = SearchResult(strategy="none", candidates=[Candidate(index=0, text="Hi")],
        ...                     chosen=0)
        >>> chat_completion(done, "m")["choices"][0]["message"]
        {'role': 'assistant', 'content': 'Hi'}
    """
    total = result.usage.total
    best = result.best
    message, finish = reply_message(best) if best else ({"role": "assistant", "content": ""}, None)
    return {
        "id": f"chatcmpl-ttc-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish or "stop"}],
        "usage": {
            "prompt_tokens": total.prompt_tokens,
            "completion_tokens": total.completion_tokens,
            "total_tokens": total.total_tokens,
        },
        "ttc": {
            "effort": result.settings.get("effort"),
            "strategy": result.strategy,
            "candidates": len(result.candidates),
            "selection": result.selection,
            "budget_limited": result.budget_limited,
            "usage": {
                "generation": result.usage.generation.model_dump()
                | {"total_tokens": result.usage.generation.total_tokens},
                "verification": result.usage.verification.model_dump()
                | {"total_tokens": result.usage.verification.total_tokens},
            },
        },
    }


def reply_message(candidate: Candidate) -> tuple[dict[str, Any], str | None]:
    """A candidate as an assistant message, and its finish reason (``tool_calls`` when it calls
    tools: then its content, if any, without the calls the judge was shown).

    Example:
        >>> from ttc_agent.types import ToolCall
        >>> call = ToolCall(id="c1", name="f", arguments="{}")
        >>> message, finish = reply_message(Candidate(index=0, text="Calls f with {}",
        ...                                           tool_calls=[call]))
        >>> message["content"], message["tool_calls"][0]["function"], finish
        (None, {'name': 'f', 'arguments': '{}'}, 'tool_calls')
    """
    if not candidate.tool_calls:
        return {"role": "assistant", "content": candidate.text}, candidate.finish_reason
    calls = [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        for call in candidate.tool_calls
    ]
    content = content_of(candidate.text, candidate.tool_calls) or None
    return {"role": "assistant", "content": content, "tool_calls": calls}, "tool_calls"
