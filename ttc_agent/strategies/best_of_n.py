"""Best-of-N: sample n candidates, score each with a verifier, keep the best.

Weighted best-of-N: with an ``answer_key`` (for example the final answer extracted from the
text), the normalised scores of candidates with the same key are summed and the best group
wins (Hugging Face's "weighted best-of-N").
"""

from __future__ import annotations

from typing import TypeAlias, Unpack

from pydantic import BaseModel, ConfigDict, Field

from ttc_agent.errors import SearchError, TTCError
from ttc_agent.protocols import AnswerKey, ChatModel, Parts, Verifier, required
from ttc_agent.strategies import _tasks as tasks
from ttc_agent.strategies._node import NodeOptions, StrategyNode, make_settings
from ttc_agent.strategies._selection import Selection, finish
from ttc_agent.types import Message, SearchResult, SearchUsage, Usage

NAME = "best_of_n"


class BestOfNSettings(BaseModel):
    """Settings of ``best_of_n``; each can be overridden per invocation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(default=8, ge=1)
    temperature: float = Field(default=0.8, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)


async def search(prompt: list[Message], settings: BestOfNSettings, parts: Parts) -> SearchResult:
    """Sample ``n``, score them all, choose the best (or the best answer, with an answer key).

    Raises:
        SearchError: the verifier failed; ``partial`` holds the candidates, already paid for.
    """
    model, verifier = parts.model, required(parts.verifier, "verifier")
    completions = await tasks.sample_some(model, prompt, settings.n, settings, NAME)
    candidates = tasks.candidates_from(completions, parts.answer_key)
    record = settings.model_dump() | {"verifier": verifier.name, "model": model.name}
    selection: Selection = "weighted" if parts.answer_key else "best"
    try:
        scores = await tasks.score_some(verifier, prompt, [c.text for c in candidates], NAME)
    except TTCError as exc:
        usage = SearchUsage(generation=Usage.sum([c.usage for c in candidates]))
        partial = SearchResult(
            strategy=NAME,
            settings=record,
            candidates=candidates,
            chosen=None,
            selection=selection,
            usage=usage,
        )
        raise SearchError(f"{NAME}: {exc}", partial=partial) from exc
    return finish(NAME, tasks.with_scores(candidates, scores), selection, record)


BestOfN: TypeAlias = StrategyNode[BestOfNSettings]
"""The type of a best-of-N node (build one with ``best_of_n``); kept for one release."""


def best_of_n(
    model: ChatModel,
    judge: Verifier,
    n: int = 8,
    *,
    temperature: float = 0.8,
    max_tokens: int | None = None,
    answer_key: AnswerKey | None = None,
    **options: Unpack[NodeOptions],
) -> BestOfN:
    """A best-of-N node: sample ``n`` answers, score them with ``judge``, append the best.

    Args:
        model: samples the candidates.
        judge: any verifier, e.g. ``RubricJudge("helpfulness", model)``.
        n: candidates per invocation (override per call with ``{"ttc": {"n": 4}}``).
        temperature: sampling temperature of the candidates.
        max_tokens: the longest candidate.
        answer_key: turns on weighted best-of-N: candidates with the same key pool their scores.
        **options: ``budget``, ``messages_key``, ``result_key`` (see ``NodeOptions``).

    Example:
        >>> from langgraph.graph import StateGraph, MessagesState, START
        >>> from ttc_agent import OpenAIChat, RubricJudge
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> graph = StateGraph(MessagesState)
        >>> _ = graph.add_node("answer", best_of_n(model, RubricJudge("helpfulness", model), n=4))
        >>> _ = graph.add_edge(START, "answer")
        >>> app = graph.compile()
    """
    values = {"n": n, "temperature": temperature, "max_tokens": max_tokens}
    settings = make_settings(NAME, BestOfNSettings, values)
    parts = Parts(model, verifier=judge, answer_key=answer_key)
    return StrategyNode(NAME, search, settings, parts, **options)
