"""A maths solver: step-level beam search guided by the logprob step judge (math_step card),
then answer checking: the final answer is extracted, parsed with math-verify and written to the
state's ``answer`` key. ``TTC_N`` sets n (default 8, keep 2); ``TTC_CONTINUATION`` how the
steps continue the assistant's text (default ``auto``: ask the server; see ``OpenAIChat``).
Needs math-verify (the ``math`` extra), checked when the graph is built.
"""

from typing import Annotated, Any

from langchain_core.messages import AnyMessage, RemoveMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import REMOVE_ALL_MESSAGES, add_messages
from typing_extensions import TypedDict

from ttc_agent import LLMStepJudge, OpenAIChat, beam_search
from ttc_agent.answers import boxed_answer, last_number, parse_math, require_math_verify
from ttc_agent.environment import count_from_env

INSTRUCTION = "Solve step by step, one step per paragraph, and put the final answer in \\boxed{}."


class MathsState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    answer: str | None


def final_answer(text: str) -> str | None:
    """The boxed answer, else the last number."""
    return boxed_answer(text) or last_number(text)


def instruct(state: MathsState) -> dict[str, Any]:
    """Put the instruction first in the conversation, once (models read system messages first)."""
    messages = state["messages"]
    if messages and messages[0].type == "system" and messages[0].content == INSTRUCTION:
        return {}
    return {"messages": [RemoveMessage(REMOVE_ALL_MESSAGES), SystemMessage(INSTRUCTION), *messages]}


def check_answer(state: MathsState) -> dict[str, Any]:
    """Parse the chosen solution's final answer with math-verify (None if nothing parses)."""
    answer = final_answer(str(state["messages"][-1].content))
    parsed = parse_math(f"\\boxed{{{answer}}}") if answer else []
    return {"answer": str(parsed[0]) if parsed else None}


def build(
    model: OpenAIChat | None = None, judge_model: OpenAIChat | None = None, checkpointer: Any = None
) -> Any:
    """The compiled maths graph; the step judge's model needs logprobs."""
    require_math_verify()  # now, not after the whole search
    n = count_from_env("TTC_N", 8)
    model = model or OpenAIChat()
    judge = LLMStepJudge(judge_model or OpenAIChat(logprobs=True))
    builder = StateGraph(MathsState)
    builder.add_node("instruct", instruct)
    builder.add_node("solve", beam_search(model, judge, n=n, keep=2, answer_key=final_answer))
    builder.add_node("check_answer", check_answer)
    builder.add_edge(START, "instruct")
    builder.add_edge("instruct", "solve")
    builder.add_edge("solve", "check_answer")
    builder.add_edge("check_answer", END)
    return builder.compile(checkpointer=checkpointer)


graph = build()
