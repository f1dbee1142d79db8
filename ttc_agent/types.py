"""Core types: the values that flow prompt -> candidates -> scores -> selection -> result.

Every hop carries its token usage, so a result can say what it cost and where.
These types know nothing of models, verifiers or graphs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

Message = dict[str, Any]
"""A chat message in the OpenAI wire format, e.g. ``{"role": "user", "content": "Hi"}``."""


class Usage(BaseModel):
    """Tokens and calls billed by a model endpoint.

    Example:
        >>> Usage(prompt_tokens=10, completion_tokens=5, calls=1) + Usage(prompt_tokens=1)
        Usage(prompt_tokens=11, completion_tokens=5, calls=1)
    """

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            calls=self.calls + other.calls,
        )

    def __repr__(self) -> str:
        return (
            f"Usage(prompt_tokens={self.prompt_tokens}, "
            f"completion_tokens={self.completion_tokens}, calls={self.calls})"
        )

    @staticmethod
    def sum(usages: list[Usage]) -> Usage:
        """Add up a list of usages (an empty list gives zero)."""
        total = Usage()
        for usage in usages:
            total = total + usage
        return total


class TokenLogprob(NamedTuple):
    """One generated token with its log-probability and the top alternatives at its position.

    A named tuple rather than a model: a judge's reply carries one per token, and a tuple of
    plain values costs the garbage collector nothing once made, where a model per token made
    it sweep the whole heap (about 100 ms with LangGraph loaded) in the middle of rounds.

    Example:
        >>> TokenLogprob(token="4", logprob=-0.2, top={"4": -0.2, "5": -1.8}).top["5"]
        -1.8
    """

    token: str
    logprob: float
    top: Mapping[str, float] = MappingProxyType({})


class Confidence(BaseModel):
    """The model's confidence in one answer, read from its token logprobs (DeepConf's signals
    and self-certainty; ``ttc_agent.confidence`` defines each). Higher is more confident.

    Example:
        >>> Confidence(mean=2.1, lowest_group=1.4, tail=2.3, self_certainty=0.9, tokens=40,
        ...            window=32).lowest_group
        1.4
    """

    model_config = ConfigDict(frozen=True)

    mean: float
    lowest_group: float
    tail: float
    self_certainty: float
    tokens: int
    """Tokens read (those generated, as far as the client saw them)."""
    window: int
    """Tokens per group (the whole answer when it is shorter than the window asked for)."""


class ToolCall(BaseModel):
    """A tool call in a model's reply: which tool, with which arguments.

    ``arguments`` is the JSON text exactly as the model wrote it (it may not parse); ``args``
    parses it.

    Example:
        >>> ToolCall(id="call_1", name="add", arguments='{"a": 2, "b": 3}').args
        {'a': 2, 'b': 3}
    """

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: str = "{}"

    @property
    def args(self) -> dict[str, Any]:
        """The arguments as a mapping.

        Raises:
            ValueError: they are not a JSON object.
        """
        value = json.loads(self.arguments)
        if not isinstance(value, dict):
            raise ValueError(f"tool call arguments must be a JSON object, got {self.arguments!r}")
        return value


class Completion(BaseModel):
    """One sampled completion as the model returned it.

    ``usage`` is this completion's share of its call: the prompt is counted on the first
    choice of a call only, so that adding the usages of all completions gives what was billed.
    When a server returns several choices in one call, each choice's completion tokens are
    apportioned by text length (servers report only the call's total).
    """

    model_config = ConfigDict(frozen=True)

    text: str
    finish_reason: str | None = None
    ended: bool | None = None
    """True when the model ended its reply itself, False when a stop sequence or the token
    limit cut it, None when the server does not say (most servers only say "stop")."""
    logprobs: list[TokenLogprob] | None = None
    usage: Usage = Usage()
    tool_calls: list[ToolCall] = Field(default_factory=list)
    """The tools the reply calls, in order (none for a plain answer)."""
    confidence: Confidence | None = None
    """Signals read from ``logprobs`` (kept when a checkpoint drops the logprobs themselves)."""


InjectionKind = Literal["verdict", "address", "turn", "fence", "encoded"]
"""What a finding is: text shaped like the judge's own verdict, text addressed to the judge, a
turn line of a chat template, a fake fence, or one of those encoded (base64, rot13, leetspeak)."""

InjectionAction = Literal["flag", "penalise", "mask"]
"""What a judge does with a candidate in which its screen found something (see
``ttc_agent.verifiers.injection``): record it, lower the score, or mask the text before judging."""


class Finding(BaseModel):
    """Text in a candidate that imitates a judge's verdict or speaks to the judge.

    ``start`` and ``end`` index the candidate's own text; ``text`` is ``candidate[start:end]``.

    Example:
        >>> Finding(kind="verdict", start=0, end=8, text="Score: 5").kind
        'verdict'
    """

    model_config = ConfigDict(frozen=True)

    kind: InjectionKind
    start: int
    end: int
    text: str


class Screening(BaseModel):
    """What a judge's injection screen found in one candidate, and what the judge did about it."""

    model_config = ConfigDict(frozen=True)

    findings: list[Finding]
    action: InjectionAction
    judged: float | None = None
    """Under ``penalise``: the normalized score the judge gave, before the penalty."""


class Score(BaseModel):
    """A verifier's verdict on one candidate.

    ``value`` is on the verifier's own scale (a rubric's weighted total, a PRM probability);
    ``normalized`` maps it to [0, 1] so that scores can be added across candidates.
    """

    model_config = ConfigDict(frozen=True)

    value: float
    normalized: float
    criteria: dict[str, float] = Field(default_factory=dict)
    rationale: str = ""
    mode: str = ""
    usage: Usage = Usage()
    injection: Screening | None = None
    """What the judge's injection screen found in the candidate (None: nothing)."""


Aggregate = Literal["last", "min", "prod", "mean"]
"""How step scores combine into one: the last step's, the lowest, the product or the mean."""


def aggregate_scores(scores: Sequence[float], aggregate: Aggregate) -> float:
    """Aggregate step scores into one (0 for no steps).

    Example:
        >>> aggregate_scores([0.9, 0.5], "min"), aggregate_scores([0.9, 0.5], "prod")
        (0.5, 0.45)
    """
    if not scores:
        return 0.0
    if aggregate == "last":
        return scores[-1]
    if aggregate == "min":
        return min(scores)
    if aggregate == "prod":
        return math.prod(scores)
    return sum(scores) / len(scores)


class StepScores(BaseModel):
    """A step verifier's verdict on one (partial) solution: one score in [0, 1] per step.

    Example:
        >>> StepScores(steps=[0.9, 0.4]).steps[-1]
        0.4
    """

    model_config = ConfigDict(frozen=True)

    steps: list[float]
    usage: Usage = Usage()
    injection: Screening | None = None
    """What the step judge's injection screen found in the solution (None: nothing)."""


class Candidate(BaseModel):
    """One candidate answer in a search, with its score and (for weighted selection) its key."""

    model_config = ConfigDict(frozen=True)

    index: int
    text: str
    finish_reason: str | None = None
    usage: Usage = Usage()
    score: Score | None = None
    key: str | None = None
    step_scores: list[float] | None = None
    tree: int | None = None
    round: int | None = None
    parent: int | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    confidence: Confidence | None = None
    """The model's confidence in this answer, where it came with logprobs."""


class SearchUsage(BaseModel):
    """Usage of a search, split into generating candidates and verifying them."""

    model_config = ConfigDict(frozen=True)

    generation: Usage = Usage()
    verification: Usage = Usage()

    @property
    def total(self) -> Usage:
        return self.generation + self.verification


class Match(BaseModel):
    """One match of a tournament among candidates: two compared in both orders, or a bye.

    ``first`` and ``second`` are positions in the result's candidates (``first`` shown as A in
    the first order); ``preference`` is the pairwise judge's probability that ``first`` wins,
    averaged over both orders. ``decided_by`` says what chose the winner: the ``judge``, the
    higher pointwise ``score`` on a tie, the ``order`` (the earlier candidate) when the scores
    tie too, or a ``bye`` (no opponent this round).
    """

    model_config = ConfigDict(frozen=True)

    round: int
    first: int
    second: int | None
    winner: int
    outcome: Literal["first", "second", "tie"] | None = None
    preference: float | None = None
    decided_by: Literal["judge", "score", "order", "bye"]
    usage: Usage = Usage()


class SearchResult(BaseModel):
    """The record of one search: every candidate, its score, the choice and what it cost.

    Example:
        >>> result = SearchResult(strategy="best_of_n", candidates=[], chosen=None)
        >>> result.answer
        ''
    """

    model_config = ConfigDict(frozen=True)

    strategy: str
    settings: dict[str, Any] = Field(default_factory=dict)
    candidates: list[Candidate]
    chosen: int | None
    selection: str = "best"
    """How the choice was made: best, weighted, majority, ..."""
    group_scores: dict[str, float] = Field(default_factory=dict)
    """Per answer group: summed scores (weighted) or votes (majority)."""
    budget_limited: bool = False
    """True when the budget ran out and this is the best result found before it did."""
    failed: int = 0
    """Samples that failed for good (after retries) and were left out of the search."""
    usage: SearchUsage = SearchUsage()
    bracket: list[Match] = Field(default_factory=list)
    """A tournament selection's matches, round by round (empty for other selections)."""

    @property
    def best(self) -> Candidate | None:
        """The chosen candidate (None only for an empty search)."""
        return None if self.chosen is None else self.candidates[self.chosen]

    @property
    def answer(self) -> str:
        """The chosen candidate's text."""
        best = self.best
        return "" if best is None else best.text
