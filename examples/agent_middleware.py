"""A LangChain agent (``create_agent``, LangChain 1.x) that thinks harder, added in one line:
``middleware=[TestTimeComputeMiddleware(...)]``.

Every model call of the agent becomes best-of-n: n replies of the agent's own model (with its
tools), the answers scored by a rubric judge, the best one kept. Turns that call tools are
chosen by agreement on the call instead. The search record rides on each reply
(``response_metadata["ttc"]``), and the agent's context sets n per invocation.

Run it on the embedded local model (no API key needed; install the ``local`` and ``langchain``
extras):

    python examples/agent_middleware.py "Is 91 a prime number?"

or on any OpenAI-compatible endpoint:

    OPENAI_BASE_URL=http://localhost:8000/v1 TTC_MODEL=Qwen/Qwen2.5-7B-Instruct \\
        python examples/agent_middleware.py "..."

The embedded model's server (llama-cpp-python) returns tool calls only when a request names the
function to call, so there the agent answers directly: its turns are final answers, judged.
"""

from __future__ import annotations

import os
import sys

from langchain.agents import create_agent
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from ttc_agent import OpenAIChat, RubricJudge, TestTimeComputeMiddleware, search_result


@tool
def divide(a: int, b: int) -> str:
    """Divide a by b: the quotient and the remainder."""
    return f"{a} = {a // b} * {b} + {a % b}"


def agent_model() -> ChatOpenAI:
    """The agent's model: the endpoint configured, else the embedded model's own server."""
    if os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY"):
        return ChatOpenAI(model=os.environ.get("TTC_MODEL", "gpt-4o-mini"), max_tokens=300)
    from ttc_agent.models.embedded import QWEN_CODER_0_5B, embedded_server

    base_url = embedded_server().base_url  # started once per process, stopped at exit
    alias = QWEN_CODER_0_5B.alias
    return ChatOpenAI(model=alias, base_url=base_url, api_key="none", max_tokens=300, timeout=600)


def main(question: str) -> None:
    judge = RubricJudge("helpfulness", OpenAIChat(timeout=600), max_tokens=300)  # else embedded
    agent = create_agent(
        agent_model(),
        tools=[divide],
        system_prompt="You are a careful assistant. Answer in two or three sentences.",
        middleware=[TestTimeComputeMiddleware(verifier=judge, n=3)],
    )
    # n = 3 as built; this invocation asks for 2 (the effort can change turn by turn)
    state = agent.invoke({"messages": [("user", question)]}, context={"ttc": {"n": 2}})
    for message in state["messages"][1:]:
        if message.type != "ai":
            print(f"[{message.type}: {message.content}]", file=sys.stderr)
            continue
        search = search_result(message)
        scores = [c.score.value if c.score else None for c in search.candidates]
        print(
            f"[{search.strategy}: chose {search.chosen} of {len(search.candidates)} by "
            f"{search.selection}, scores {scores}, {search.usage.total.total_tokens} tokens]",
            file=sys.stderr,
        )
    print(state["messages"][-1].content)


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]) or "Is 91 a prime number?")
