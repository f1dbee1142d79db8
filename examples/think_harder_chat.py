"""A terminal chat with a "think harder" toggle.

Type to chat; ``/effort none|low|medium|high`` switches how hard the assistant thinks from the
next turn on (the conversation and the graph stay the same); ``/quit`` leaves. While it
searches, a live line shows what it is doing (sampled, judged, revised).

    python examples/think_harder_chat.py            # the embedded model, or your endpoint:
    OPENAI_BASE_URL=http://localhost:8000/v1 python examples/think_harder_chat.py
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from rich.console import Console
from rich.status import Status
from typing_extensions import TypedDict

from ttc_agent import OpenAIChat, search_result, think_harder

EFFORTS = ("none", "low", "medium", "high")


class ChatState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    effort: str


def describe(event: dict) -> str | None:
    """One line of progress for a custom stream event."""
    kind = event.get("ttc")
    if kind in ("sampled", "scored"):
        verb = "drafted" if kind == "sampled" else "judged"
        return f"{verb} {event['done']} of {event['total']}"
    if kind == "round":
        return f"revised, round {event['round']} (best {event['best']:.2f})"
    if kind == "effort":
        return f"effort {event['effort']}: {event['preset']}"
    return None


async def chat(model: OpenAIChat, lines, console: Console) -> None:
    graph = StateGraph(ChatState)
    graph.add_node("assistant", think_harder(model, effort="none"))
    graph.add_edge(START, "assistant")
    app = graph.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "terminal"}}
    effort = "none"
    console.print(f"effort: {effort}. Commands: /effort {'|'.join(EFFORTS)}, /quit")
    for line in lines:
        text = line.strip()
        if not text:
            continue
        if text == "/quit":
            break
        if text.startswith("/effort"):
            wanted = text.removeprefix("/effort").strip()
            if wanted in EFFORTS:
                effort = wanted
                console.print(f"effort: {effort}")
            else:
                console.print(f"unknown effort {wanted!r}; choose one of {', '.join(EFFORTS)}")
            continue
        final = None
        with Status("thinking", console=console) as status:
            async for mode, chunk in app.astream(
                {"messages": [HumanMessage(text)], "effort": effort},
                config,
                stream_mode=["custom", "values"],
            ):
                if mode == "values":
                    final = chunk
                elif (progress := describe(chunk)) is not None:
                    status.update(progress)
        result = search_result(final)
        console.print(final["messages"][-1].content, markup=False, highlight=False)
        console.print(
            f"[dim]({result.strategy}, {len(result.candidates)} candidate(s), "
            f"{result.usage.total.total_tokens} tokens)[/dim]"
        )


async def main() -> None:
    console = Console()
    async with OpenAIChat() as model:  # OPENAI_BASE_URL / OPENAI_API_KEY / TTC_MODEL, else embedded
        await chat(model, sys.stdin, console)


if __name__ == "__main__":
    asyncio.run(main())
