"""A terminal chat with a "think harder" toggle.

Type to chat; ``/effort none|low|medium|high`` switches how hard the assistant thinks from the
next turn on (the conversation and the graph stay the same); ``/quit`` (or Ctrl-D, Ctrl-C)
leaves. While it searches, a live line shows what it is doing (sampled, judged, revised). A
turn that fails (an unreachable endpoint, a judge that cannot be read) is reported in one line
and the chat goes on.

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

from ttc_agent import OpenAIChat, TTCError, search_result, think_harder, valid_effort

EFFORTS = ("none", "low", "medium", "high")
COMMANDS = f"/effort {'|'.join(EFFORTS)}, /quit"


class ChatState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    effort: Annotated[str, valid_effort]


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
    console.print(f"effort: {effort}. Commands: {COMMANDS}")
    for line in lines:
        text = line.strip()
        if not text:
            continue
        if text == "/quit":
            break
        command, _, wanted = text.partition(" ")
        wanted = wanted.strip()
        if command == "/effort":
            if wanted in EFFORTS:
                effort = wanted
                console.print(f"effort: {effort}")
            else:
                console.print(f"unknown effort {wanted!r}; choose one of {', '.join(EFFORTS)}")
            continue
        if command.startswith("/"):
            console.print(f"unknown command {command}; commands: {COMMANDS}", markup=False)
            continue
        final = None
        try:
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
        except TTCError as exc:  # the turn failed; the conversation so far is kept
            console.print(f"error: {exc}", markup=False, highlight=False)
            continue
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
    try:
        asyncio.run(main())
    except KeyboardInterrupt:  # Ctrl-C: leave without a traceback
        sys.exit(130)
