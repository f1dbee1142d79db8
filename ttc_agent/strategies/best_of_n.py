"""Best-of-N: sample n candidates, score each with a verifier, keep the best.

Weighted best-of-N: with an ``answer_key`` (for example the final answer extracted from the
text), the normalised scores of candidates with the same key are summed and the best group
wins (Hugging Face's "weighted best-of-N").
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from ttc_agent.budget import Budget
from ttc_agent.errors import SearchError, TTCError
from ttc_agent.protocols import ChatModel, Verifier
from ttc_agent.strategies import _tasks as tasks
from ttc_agent.strategies._node import StrategyNode
from ttc_agent.strategies._progress import emit
from ttc_agent.strategies._selection import select_best, select_weighted
from ttc_agent.types import Message, SearchResult, SearchUsage, Usage

AnswerKey = Callable[[str], str | None]


class BestOfNSettings(BaseModel):
    """Settings of ``best_of_n``; each can be overridden per invocation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(default=8, ge=1)
    temperature: float = Field(default=0.8, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)


class BestOfN(StrategyNode):
    """The best-of-N node; build it with ``best_of_n``."""

    strategy = "best_of_n"
    settings_type = BestOfNSettings

    def __init__(
        self,
        model: ChatModel,
        verifier: Verifier,
        settings: BestOfNSettings,
        *,
        answer_key: AnswerKey | None = None,
        budget: Budget | None = None,
        messages_key: str = "messages",
        result_key: str | None = None,
    ) -> None:
        super().__init__(settings, budget=budget, messages_key=messages_key, result_key=result_key)
        self.model, self.verifier, self.answer_key = model, verifier, answer_key

    async def search(self, prompt: list[Message], settings: BestOfNSettings) -> SearchResult:
        completions = await tasks.sample_some(
            self.model, prompt, settings.n, settings, self.strategy
        )
        candidates = tasks.candidates_from(completions, self.answer_key)
        record = {
            "strategy": self.strategy,
            "settings": settings.model_dump()
            | {"verifier": self.verifier.name, "model": self.model.name},
            "selection": "weighted" if self.answer_key else "best",
        }
        generation = Usage.sum([c.usage for c in candidates])
        try:
            scores = await tasks.score_some(
                self.verifier, prompt, [c.text for c in candidates], self.strategy
            )
        except TTCError as exc:
            usage = SearchUsage(generation=generation)
            partial = SearchResult(**record, candidates=candidates, chosen=None, usage=usage)
            raise SearchError(f"{self.strategy}: {exc}", partial=partial) from exc
        candidates = [
            c.model_copy(update={"score": s}) for c, s in zip(candidates, scores, strict=True)
        ]
        if self.answer_key:
            chosen, groups = select_weighted(candidates)
        else:
            chosen, groups = select_best(candidates), {}
        best = candidates[chosen].score
        emit("selected", self.strategy, index=chosen, score=best.value if best else None)
        return SearchResult(
            **record,
            candidates=candidates,
            chosen=chosen,
            group_scores=groups,
            usage=SearchUsage(
                generation=generation,
                verification=Usage.sum([s.usage for s in scores if s is not None]),
            ),
        )


def best_of_n(
    model: ChatModel,
    judge: Verifier,
    n: int = 8,
    *,
    temperature: float = 0.8,
    max_tokens: int | None = None,
    answer_key: AnswerKey | None = None,
    budget: Budget | None = None,
    messages_key: str = "messages",
    result_key: str | None = None,
) -> BestOfN:
    """A best-of-N node: sample ``n`` answers, score them with ``judge``, append the best.

    Args:
        model: samples the candidates.
        judge: any verifier, e.g. ``RubricJudge("helpfulness", model)``.
        n: candidates per invocation (override per call with ``{"ttc": {"n": 4}}``).
        temperature: sampling temperature of the candidates.
        max_tokens: the longest candidate.
        answer_key: turns on weighted best-of-N: candidates with the same key pool their scores.
        messages_key: the state key holding the conversation.
        result_key: also write the ``SearchResult`` to this state key.

    Example:
        >>> from langgraph.graph import StateGraph, MessagesState, START
        >>> from ttc_agent import OpenAIChat, RubricJudge
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> graph = StateGraph(MessagesState)
        >>> _ = graph.add_node("answer", best_of_n(model, RubricJudge("helpfulness", model), n=4))
        >>> _ = graph.add_edge(START, "answer")
        >>> app = graph.compile()
    """
    settings = BestOfN.make_settings(n=n, temperature=temperature, max_tokens=max_tokens)
    return BestOfN(
        model,
        judge,
        settings,
        answer_key=answer_key,
        budget=budget,
        messages_key=messages_key,
        result_key=result_key,
    )
