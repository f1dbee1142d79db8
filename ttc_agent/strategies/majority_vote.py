"""Majority voting (self-consistency): the answer most candidates agree on wins.

Each candidate's final answer is extracted and candidates are grouped by equivalence (maths,
normalised text or your function). A candidate of the largest group is returned. Ties between
groups go to the higher mean verifier score when a verifier is given, else to the group that
appeared first.

Votes that stop when settled (``stopping``, see ``_stopping``): candidates are sampled in rounds
of ``round_size`` and sampling stops once at least ``min_votes`` votes are cast and the vote is
settled: ``adaptive`` when the posterior probability that the leading answer is the true
majority passes ``posterior`` (Adaptive-Consistency, arXiv 2305.11860), ``supermajority`` when
one answer holds the share ``early_stop`` of them. A candidate without an answer abstains: it
is not a vote.

Free text, whose answers rarely match, is voted on with ``selection="usc"``: universal
self-consistency (``verifiers/usc.py``) asks the model which candidate is most consistent with
the others, and that one is returned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeAlias, Unpack

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ttc_agent.answers import Equivalence, equivalence
from ttc_agent.errors import BudgetExhausted
from ttc_agent.protocols import ChatModel, Parts, Verifier, required
from ttc_agent.strategies import _tasks as tasks
from ttc_agent.strategies._node import NodeOptions, StrategyNode, make_settings
from ttc_agent.strategies._selection import count_votes, finish
from ttc_agent.strategies._stopping import Stopping, leader_posterior, settled
from ttc_agent.types import Candidate, Message, SearchResult
from ttc_agent.verifiers.usc import LABELS, UniversalSelfConsistency

NAME = "majority_vote"


class MajorityVoteSettings(BaseModel):
    """Settings of ``majority_vote``; each can be overridden per invocation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(default=8, ge=1)
    temperature: float = Field(default=0.8, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)
    stopping: Stopping | None = None
    early_stop: float | None = Field(default=None, gt=0.5, le=1.0)
    posterior: float = Field(default=0.95, gt=0.5, lt=1.0)
    round_size: int = Field(default=4, ge=1)
    min_votes: int = Field(default=4, ge=1)
    selection: Literal["majority", "usc"] = "majority"

    @property
    def rule(self) -> Stopping | None:
        """The stopping rule: ``stopping``, else ``supermajority`` when ``early_stop`` is set
        (as before ``stopping`` existed), else none."""
        return self.stopping or ("supermajority" if self.early_stop is not None else None)

    @model_validator(mode="after")
    def _rounds(self) -> MajorityVoteSettings:
        if self.rule is not None and self.round_size >= self.n:
            raise ValueError(
                f"round_size ({self.round_size}) must be below n ({self.n}) to stop early"
            )
        if self.rule is not None and self.min_votes > self.n:
            raise ValueError(
                f"min_votes ({self.min_votes}) must be at most n ({self.n}) to stop early"
            )
        if self.selection == "usc" and self.n > len(LABELS):
            raise ValueError(
                f"selection 'usc' shows at most {len(LABELS)} candidates, n is {self.n}"
            )
        return self


async def search(
    prompt: list[Message], settings: MajorityVoteSettings, parts: Parts
) -> SearchResult:
    """Sample (in rounds, to stop early), group the answers, choose from the largest group."""
    answer = required(parts.equivalence, "equivalence")
    candidates = await _sample_until_agreed(prompt, settings, parts.model, answer)
    usc = UniversalSelfConsistency(parts.model) if settings.selection == "usc" else None
    verifier = usc or parts.verifier  # breaks ties between groups by mean score, or chooses
    if verifier is not None and len(candidates) > 1:
        texts = [c.text for c in candidates]
        scores = await tasks.score_some(verifier, prompt, texts, NAME)
        candidates = tasks.with_scores(candidates, scores)
    record = settings.model_dump() | {"answer": answer.name, "model": parts.model.name}
    record |= {"verifier": parts.verifier.name if parts.verifier else None}
    record |= {"stopping": settings.rule, "sampled": len(candidates)}
    if settings.rule == "supermajority":
        record["early_stop"] = settings.early_stop or SHARE
    if settings.rule == "adaptive":
        votes = count_votes([c.key for c in candidates])
        record["leader_posterior"] = round(leader_posterior(votes), 6)
    return finish(NAME, candidates, settings.selection, record)


async def _sample_until_agreed(
    prompt: list[Message], settings: MajorityVoteSettings, model: ChatModel, answer: Equivalence
) -> list[Candidate]:
    """All ``n`` candidates, or (with a stopping rule) those sampled by the round in which the
    vote was settled; fewer when the budget ran out. Each is keyed by its answer's group
    label."""
    candidates: list[Candidate] = []
    labels: list[str | None] = []
    step = settings.round_size if settings.rule else settings.n
    while len(candidates) < settings.n:
        size = min(step, settings.n - len(candidates))
        progress = {"done": len(candidates), "total": settings.n}
        try:
            completions = await tasks.sample_some(model, prompt, size, settings, NAME, **progress)
        except BudgetExhausted:
            if not candidates:
                raise
            break
        candidates += tasks.candidates_from(completions, start=len(candidates))
        labels = answer.labels([c.text for c in candidates])
        if len(completions) < size or _settled(count_votes(labels), settings):
            break  # the budget ran out, or the vote is settled
    return [c.model_copy(update={"key": k}) for c, k in zip(candidates, labels, strict=True)]


SHARE = 0.75
"""The supermajority share when ``stopping="supermajority"`` is given without ``early_stop``."""


def _settled(votes: dict[str, int], settings: MajorityVoteSettings) -> bool:
    """Whether sampling may stop: enough votes cast, and the vote settled by the rule.

    Example:
        >>> settings = MajorityVoteSettings(n=8, early_stop=0.75, round_size=1)
        >>> _settled({"7": 1}, settings), _settled({"7": 3, "9": 1}, settings)
        (False, True)
    """
    if settings.rule is None:
        return False
    return settled(
        votes,
        settings.rule,
        posterior=settings.posterior,
        share=settings.early_stop or SHARE,
        min_votes=settings.min_votes,
    )


MajorityVote: TypeAlias = StrategyNode[MajorityVoteSettings]
"""The type of a majority-voting node (build one with ``majority_vote``); kept for one release."""


def majority_vote(
    model: ChatModel,
    n: int = 8,
    *,
    answer: str | Callable[[str], Any] | Equivalence = "math",
    verifier: Verifier | None = None,
    temperature: float = 0.8,
    max_tokens: int | None = None,
    stopping: Stopping | None = None,
    early_stop: float | None = None,
    posterior: float = 0.95,
    round_size: int = 4,
    min_votes: int = 4,
    selection: Literal["majority", "usc"] = "majority",
    **options: Unpack[NodeOptions],
) -> MajorityVote:
    """A majority-voting (self-consistency) node.

    Args:
        model: samples the candidates.
        n: the most candidates to sample.
        answer: how answers are compared: ``"math"`` (math-verify), ``"exact"`` (normalised
            text), a function from text to a key, or an ``Equivalence``.
        verifier: optional; breaks ties between equally large groups by mean score.
        stopping: sample in rounds of ``round_size`` and stop once the vote is settled:
            ``"adaptive"`` when the posterior probability that the leading answer is the
            majority passes ``posterior`` (Adaptive-Consistency's rule), ``"supermajority"``
            when one answer holds the share ``early_stop`` (0.75 unless given) of the votes
            cast; ``None`` samples all n (unless ``early_stop`` is given: then
            ``"supermajority"``, as before ``stopping`` existed). Candidates without an answer
            abstain.
        early_stop: the supermajority share (e.g. 0.75).
        posterior: the adaptive rule's threshold (0.95, the paper's).
        min_votes: stopping waits for at least this many votes (one vote is always a 100 %
            share; the default 4 is the fewest at which 0.75 can be met without unanimity, and
            at which unanimity passes 0.95 under the adaptive rule).
        selection: ``"majority"`` (the largest group), or ``"usc"`` for free text: universal
            self-consistency, the model naming the candidate most consistent with the others
            (``UniversalSelfConsistency``; its calls count as verification, and ``verifier``
            is not called).
        **options: ``budget``, ``messages_key``, ``result_key`` (see ``NodeOptions``).

    Example:
        >>> from ttc_agent import OpenAIChat
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> node = majority_vote(model, n=16, answer="exact", stopping="adaptive")
        >>> node.settings.round_size, node.settings.posterior
        (4, 0.95)
    """
    values: dict[str, Any] = {"n": n, "temperature": temperature, "max_tokens": max_tokens}
    values |= {"stopping": stopping, "early_stop": early_stop, "posterior": posterior}
    values |= {"round_size": round_size, "min_votes": min_votes, "selection": selection}
    settings = make_settings(NAME, MajorityVoteSettings, values)
    parts = Parts(model, verifier=verifier, equivalence=equivalence(answer))
    return StrategyNode(NAME, search, settings, parts, **options)
