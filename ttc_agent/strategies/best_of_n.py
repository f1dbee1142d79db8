"""Best-of-N: sample n candidates, score each with a verifier, keep the best.

``selection`` says how the best is chosen:

- ``best`` (the default): the highest score; with an ``answer_key`` (for example the final
  answer extracted from the text), weighted best-of-N: the normalised scores of candidates with
  the same key are summed and the best group wins (Hugging Face's "weighted best-of-N");
- ``tournament``: the candidates meet in knockout rounds under a pairwise judge, each match in
  both orders (``_tournament``); for open-ended answers, where a weak judge compares two answers
  better than it scores one;
- ``hybrid``: the ``finalists`` best-scored candidates, then the tournament among them.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias, Unpack

from pydantic import BaseModel, ConfigDict, Field

from ttc_agent.errors import ConfigurationError, SearchError, TTCError
from ttc_agent.protocols import AnswerKey, ChatModel, PairwiseVerifier, Parts, Verifier, required
from ttc_agent.strategies import _tasks as tasks
from ttc_agent.strategies._node import NodeOptions, StrategyNode, make_settings
from ttc_agent.strategies._selection import JUDGED, Bracket, Selection, finish
from ttc_agent.strategies._tournament import finalists, judged_by, knockout
from ttc_agent.types import Candidate, Message, SearchResult, SearchUsage, Usage

NAME = "best_of_n"
BestOfNSelection = Literal["best", "tournament", "hybrid"]


class BestOfNSettings(BaseModel):
    """Settings of ``best_of_n``; each can be overridden per invocation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(default=8, ge=1)
    temperature: float = Field(default=0.8, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)
    selection: BestOfNSelection = "best"
    finalists: int = Field(default=4, ge=2)
    """``hybrid``: how many of the best-scored candidates enter the tournament."""


async def search(prompt: list[Message], settings: BestOfNSettings, parts: Parts) -> SearchResult:
    """Sample ``n``, score them all, choose the best (or the best answer, with an answer key).

    Raises:
        SearchError: the verifier failed; ``partial`` holds the candidates, already paid for.
    """
    model, verifier = parts.model, required(parts.verifier, "verifier")
    pairwise = _pairwise(settings.selection, parts)
    completions = await tasks.sample_some(model, prompt, settings.n, settings, NAME)
    candidates = tasks.candidates_from(completions, parts.answer_key)
    record = settings.model_dump() | {"verifier": verifier.name, "model": model.name}
    if pairwise is not None:
        record["pairwise"] = pairwise.name
    selection: Selection = settings.selection
    if selection == "best" and parts.answer_key:
        selection = "weighted"
    bracket = None
    try:
        scores = await tasks.score_some(verifier, prompt, [c.text for c in candidates], NAME)
        candidates = tasks.with_scores(candidates, scores)
        if pairwise is not None:
            bracket = await _tournament(prompt, candidates, pairwise, settings)
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
    return finish(NAME, candidates, selection, record, bracket=bracket)


def _pairwise(selection: str, parts: Parts) -> PairwiseVerifier | None:
    """The pairwise judge a tournament selection needs (None for ``best``)."""
    if selection not in JUDGED:
        return None
    if parts.pairwise is None:
        raise ConfigurationError(
            f"{NAME}: selection {selection!r} needs a pairwise judge "
            "(best_of_n(..., pairwise=PairwiseJudge(card, model)))"
        )
    return parts.pairwise


async def _tournament(
    prompt: list[Message],
    candidates: list[Candidate],
    pairwise: PairwiseVerifier,
    settings: BestOfNSettings,
) -> Bracket:
    """The knockout among every candidate, or (``hybrid``) among the best-scored few."""
    everyone = list(range(len(candidates)))
    entrants = (
        finalists(candidates, settings.finalists) if settings.selection == "hybrid" else everyone
    )
    scores = [c.score.value if c.score is not None else None for c in candidates]
    play = judged_by(pairwise, prompt, [c.text for c in candidates])
    return await knockout(entrants, scores, play, NAME)


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
    selection: BestOfNSelection = "best",
    pairwise: PairwiseVerifier | None = None,
    finalists: int = 4,
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
        selection: ``best`` (by score; weighted with an answer key), ``tournament`` (knockout
            rounds under ``pairwise``) or ``hybrid`` (the ``finalists`` best-scored, then the
            tournament); see the module's docstring.
        pairwise: the pairwise judge of a tournament, e.g. ``PairwiseJudge("writing_quality",
            model)``; ties go to the higher score from ``judge``, else the earlier candidate.
        finalists: ``hybrid``: how many best-scored candidates enter the tournament.
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
    values: dict[str, Any] = {"n": n, "temperature": temperature, "max_tokens": max_tokens}
    values |= {"selection": selection, "finalists": finalists}
    settings = make_settings(NAME, BestOfNSettings, values)
    parts = Parts(model, verifier=judge, answer_key=answer_key, pairwise=pairwise)
    _pairwise(settings.selection, parts)  # a tournament without a pairwise judge: now, not later
    return StrategyNode(NAME, search, settings, parts, **options)
