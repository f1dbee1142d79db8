"""Compute-optimal selection: estimate a question's difficulty, then pick the strategy and n.

A cheap probe samples ``probe`` answers and scores them. Difficulty comes from how much the
answers agree (the share of the largest answer group) and how much the verifier's scores spread.
A ``Policy`` (plain data you can change) maps the difficulty and what is left of the budget to
a strategy and n, after the seed's findings: easy questions are settled by majority voting,
harder ones by weighted best-of-N, the hardest at large budgets by beam search. The chosen
strategy then spends the rest of the budget; for majority voting and (weighted) best-of-N the
probe answers count among its n, so the probe costs nothing extra. The decision and its
reasons are recorded in ``settings["decision"]`` of the result.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ttc_agent.answers import last_number
from ttc_agent.budget import Budget, BudgetExhausted, current_meter
from ttc_agent.protocols import ChatModel, StepVerifier, Verifier, can_continue
from ttc_agent.strategies import _tasks as tasks
from ttc_agent.strategies._node import StrategyNode
from ttc_agent.strategies._progress import emit
from ttc_agent.strategies._selection import (
    count_votes,
    select_best,
    select_majority,
    select_weighted,
)
from ttc_agent.strategies.beam_search import beam_search
from ttc_agent.strategies.best_of_n import best_of_n
from ttc_agent.strategies.majority_vote import majority_vote
from ttc_agent.types import Completion, Message, Score, SearchResult, SearchUsage, Usage

Difficulty = Literal["easy", "medium", "hard"]


class Choice(BaseModel):
    """One row of a policy: for this difficulty, with at least ``min_calls`` calls left."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    difficulty: Difficulty
    min_calls: int = Field(default=0, ge=0)
    strategy: Literal["majority_vote", "best_of_n", "weighted_best_of_n", "beam_search"]
    n: int = Field(ge=1)
    keep: int = Field(default=4, ge=1)


class Policy(BaseModel):
    """Difficulty thresholds and the strategy table. The row with the largest ``min_calls``
    that the budget affords wins (no call limit affords every row).

    Example:
        >>> Policy().choose("easy", calls_left=None).strategy
        'majority_vote'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    easy_agreement: float = Field(default=0.75, gt=0, le=1)
    hard_agreement: float = Field(default=0.4, gt=0, le=1)
    hard_spread: float = Field(default=0.25, ge=0)
    table: list[Choice] = Field(
        default_factory=lambda: [
            Choice(difficulty="easy", strategy="majority_vote", n=8),
            Choice(difficulty="medium", strategy="weighted_best_of_n", n=8),
            Choice(difficulty="medium", min_calls=48, strategy="weighted_best_of_n", n=16),
            Choice(difficulty="hard", strategy="weighted_best_of_n", n=8),
            Choice(difficulty="hard", min_calls=128, strategy="beam_search", n=16, keep=4),
        ]
    )

    def difficulty(self, agreement: float, spread: float) -> Difficulty:
        """Easy when answers agree; hard when they scatter or the scores spread widely."""
        if agreement >= self.easy_agreement:
            return "easy"
        if agreement <= self.hard_agreement or spread >= self.hard_spread:
            return "hard"
        return "medium"

    def choose(self, difficulty: Difficulty, calls_left: int | None) -> Choice:
        rows = [row for row in self.table if row.difficulty == difficulty]
        affordable = [row for row in rows if calls_left is None or row.min_calls <= calls_left]
        if not affordable:
            affordable = sorted(rows, key=lambda row: row.min_calls)[:1]
        if not affordable:
            raise ValueError(f"the policy has no row for {difficulty!r} questions")
        return max(affordable, key=lambda row: row.min_calls)


class AdaptiveSettings(BaseModel):
    """Settings of ``adaptive``; each can be overridden per invocation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    probe: int = Field(default=4, ge=2)
    temperature: float = Field(default=0.8, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)
    policy: Policy = Field(default_factory=Policy)


class Adaptive(StrategyNode):
    """The compute-optimal node; build it with ``adaptive``."""

    strategy = "adaptive"
    settings_type = AdaptiveSettings

    def __init__(
        self,
        model: ChatModel,
        verifier: Verifier,
        settings: AdaptiveSettings,
        *,
        answer_key: Callable[[str], str | None],
        step_verifier: StepVerifier | None = None,
        budget: Budget | None = None,
        messages_key: str = "messages",
        result_key: str | None = None,
    ) -> None:
        super().__init__(settings, budget=budget, messages_key=messages_key, result_key=result_key)
        self.model, self.verifier, self.answer_key = model, verifier, answer_key
        self.step_verifier = step_verifier

    async def search(self, prompt: list[Message], settings: AdaptiveSettings) -> SearchResult:
        probes = await tasks.sample_some(
            self.model, prompt, settings.probe, settings, self.strategy
        )
        texts = [c.text for c in probes]
        scores = await tasks.score_some(self.verifier, prompt, texts, self.strategy)
        votes = count_votes([self.answer_key(text) for text in texts])
        agreement = max(votes.values(), default=0) / len(texts)
        values = [s.normalized for s in scores if s is not None]
        spread = statistics.pstdev(values) if len(values) > 1 else 0.0
        difficulty = settings.policy.difficulty(agreement, spread)
        meter = current_meter()
        calls_left = None
        if meter is not None and meter.budget.calls is not None:
            calls_left = meter.budget.calls - meter.spent.calls - meter.reserved.calls
        choice = settings.policy.choose(difficulty, calls_left)
        if choice.strategy == "beam_search" and not (  # else the probes go to best-of-N
            self.step_verifier and await can_continue(self.model)
        ):
            choice = choice.model_copy(update={"strategy": "weighted_best_of_n"})
        decision = {
            "difficulty": difficulty,
            "agreement": agreement,
            "spread": spread,
            "calls_left": calls_left,
            "strategy": choice.strategy,
            "n": choice.n,
            "reason": f"{len(texts)} probe answers: largest group {agreement:.0%}, score spread "
            f"{spread:.2f} -> {difficulty}; "
            + ("unlimited calls" if calls_left is None else f"{calls_left} calls left")
            + f" -> {choice.strategy} n={choice.n}",
        }
        emit("decided", self.strategy, decision=decision)
        if choice.strategy != "beam_search":  # the probes are the first of the n samples
            return await self._complete(prompt, settings, choice, probes, scores, decision)
        inner = self._node(choice, settings)
        result = await inner.search(prompt, inner.settings)
        probe_usage = SearchUsage(
            generation=Usage.sum([c.usage for c in probes]),
            verification=Usage.sum([s.usage for s in scores if s is not None]),
        )
        return result.model_copy(
            update={
                "strategy": self.strategy,
                "settings": {"decision": decision, "inner": result.strategy} | result.settings,
                "usage": SearchUsage(
                    generation=probe_usage.generation + result.usage.generation,
                    verification=probe_usage.verification + result.usage.verification,
                ),
            }
        )

    async def _complete(
        self,
        prompt: list[Message],
        settings: AdaptiveSettings,
        choice: Choice,
        probes: list[Completion],
        probe_scores: list[Score | None],
        decision: dict[str, Any],
    ) -> SearchResult:
        """Sample and score the rest of the chosen n, then select with the chosen rule: the
        probe answers are samples like any other, so none is paid for twice."""
        more: list[Completion] = []
        if choice.n > len(probes):
            try:
                more = await tasks.sample_some(
                    self.model, prompt, choice.n - len(probes), settings, self.strategy,
                    done=len(probes), total=choice.n,
                )  # fmt: skip
            except BudgetExhausted:
                more = []  # nothing more fits: choose among the probes
        more_scores = (
            await tasks.score_some(self.verifier, prompt, [c.text for c in more], self.strategy)
            if more
            else []
        )
        candidates = [
            candidate.model_copy(update={"score": score})
            for candidate, score in zip(
                tasks.candidates_from([*probes, *more], self.answer_key),
                [*probe_scores, *more_scores],
                strict=True,
            )
        ]
        groups: dict[str, float] = {}
        if choice.strategy == "majority_vote":
            chosen, votes = select_majority(candidates)
            selection, groups = "majority", {k: float(v) for k, v in votes.items()}
        elif choice.strategy == "weighted_best_of_n":
            (chosen, groups), selection = select_weighted(candidates), "weighted"
        else:
            chosen, selection = select_best(candidates), "best"
        best = candidates[chosen].score
        emit("selected", self.strategy, index=chosen, score=best.value if best else None)
        return SearchResult(
            strategy=self.strategy,
            settings={"decision": decision, "inner": choice.strategy, "n": choice.n}
            | {"verifier": self.verifier.name, "model": self.model.name},
            candidates=candidates,
            chosen=chosen,
            selection=selection,
            group_scores=groups,
            usage=SearchUsage(
                generation=Usage.sum([c.usage for c in candidates]),
                verification=Usage.sum([c.score.usage for c in candidates if c.score]),
            ),
        )

    def _node(self, choice: Choice, settings: AdaptiveSettings) -> StrategyNode:
        common: dict[str, Any] = {"temperature": settings.temperature}
        if choice.strategy == "majority_vote":
            return majority_vote(
                self.model, n=choice.n, answer=self.answer_key, verifier=self.verifier,
                max_tokens=settings.max_tokens, **common,
            )  # fmt: skip
        if choice.strategy == "beam_search":
            assert self.step_verifier is not None
            return beam_search(
                self.model, self.step_verifier, n=choice.n, keep=choice.keep, **common
            )
        key = self.answer_key if choice.strategy == "weighted_best_of_n" else None
        return best_of_n(
            self.model, self.verifier, n=choice.n, answer_key=key,
            max_tokens=settings.max_tokens, **common,
        )  # fmt: skip


def adaptive(
    model: ChatModel,
    verifier: Verifier,
    budget: Budget | None = None,
    policy: Policy | None = None,
    *,
    answer_key: Callable[[str], str | None] = last_number,
    step_verifier: StepVerifier | None = None,
    probe: int = 4,
    temperature: float = 0.8,
    max_tokens: int | None = None,
    messages_key: str = "messages",
    result_key: str | None = None,
) -> Adaptive:
    """A compute-optimal node: probe, estimate difficulty, let the policy pick, spend the rest.

    Args:
        model: samples everything.
        verifier: scores the probe and best-of-N candidates.
        budget: the ceiling for probe and search together.
        policy: thresholds and the strategy table (``Policy()`` by default).
        answer_key: extracts the answer used to measure agreement (default: the last number).
        step_verifier: lets the policy choose beam search for the hardest questions.

    Example:
        >>> from ttc_agent import OpenAIChat, RubricJudge
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> node = adaptive(model, RubricJudge("helpfulness", model), Budget(calls=64))
        >>> node.settings.policy.choose("hard", calls_left=40).strategy
        'weighted_best_of_n'
    """
    settings = Adaptive.make_settings(
        probe=probe, temperature=temperature, max_tokens=max_tokens, policy=policy or Policy()
    )
    return Adaptive(
        model, verifier, settings, answer_key=answer_key, step_verifier=step_verifier,
        budget=budget, messages_key=messages_key, result_key=result_key,
    )  # fmt: skip
