"""The "think harder" toggle: effort levels ``none | low | medium | high`` (after OpenAI's
``reasoning_effort``), each a preset strategy that you can override.

``none`` is one plain call. The defaults: ``low`` is best-of-4, ``medium`` best-of-8, ``high``
an expand-the-best revision search (4 drafts, the 2 best revised twice each, two rounds). The
effort can change from one turn to the next without rebuilding the graph: per invocation
(``{"configurable": {"ttc": {"effort": "high"}}}`` or a runtime context ``{"ttc": {...}}``), or
through the state (an ``effort`` key, when your state has one; declare it with the
``valid_effort`` reducer so that a wrong level is refused before the thread saves it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, ConfigDict, Field

from ttc_agent.budget import Budget, Meter, current_meter, metered
from ttc_agent.errors import ConfigurationError
from ttc_agent.protocols import ChatModel, Verifier
from ttc_agent.strategies import _tasks as tasks
from ttc_agent.strategies._node import METADATA_KEY, StrategyNode
from ttc_agent.strategies._progress import emit
from ttc_agent.strategies.best_of_n import best_of_n
from ttc_agent.strategies.majority_vote import majority_vote
from ttc_agent.strategies.refine import refine
from ttc_agent.types import Message, SearchResult, SearchUsage, Usage

Effort = Literal["none", "low", "medium", "high"]
EFFORTS: tuple[Effort, ...] = ("none", "low", "medium", "high")


def valid_effort(current: str | None, update: str | None) -> str | None:
    """A state reducer for a graph's ``effort`` key: an unknown level is refused as the input
    arrives, before it is saved to the thread, so a typo cannot break the thread's later turns.

    Declare the key as ``effort: Annotated[str, valid_effort]``.

    Example:
        >>> valid_effort("low", "high")
        'high'
    """
    if update is not None and update not in EFFORTS:
        raise ConfigurationError(f"effort must be one of {', '.join(EFFORTS)}, got {update!r}")
    return update


class Preset(BaseModel):
    """What one effort level runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Literal["plain", "best_of_n", "majority_vote", "refine"]
    n: int = Field(default=1, ge=1)
    rounds: int = Field(default=2, ge=0)
    keep: int = Field(default=1, ge=1)
    budget: Budget | None = None


DEFAULT_PRESETS: dict[str, Preset] = {
    "none": Preset(strategy="plain"),
    "low": Preset(strategy="best_of_n", n=4),
    "medium": Preset(strategy="best_of_n", n=8),
    "high": Preset(strategy="refine", n=2, keep=2, rounds=2),
}


class ThinkHarderSettings(BaseModel):
    """The effort of a turn, and the sampling settings the presets share."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    effort: Effort = "medium"
    temperature: float = Field(default=0.8, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)


class ThinkHarder(StrategyNode):
    """The think-harder node; build it with ``think_harder``."""

    strategy = "think_harder"
    settings_type = ThinkHarderSettings

    def __init__(
        self,
        model: ChatModel,
        judge: Verifier,
        settings: ThinkHarderSettings,
        *,
        presets: Mapping[str, Preset],
        effort_key: str = "effort",
        messages_key: str = "messages",
        result_key: str | None = None,
    ) -> None:
        super().__init__(settings, messages_key=messages_key, result_key=result_key)
        self.model, self.judge, self.presets, self.effort_key = model, judge, presets, effort_key

    async def __call__(self, state: Any, config: RunnableConfig) -> dict[str, Any]:
        effort = state.get(self.effort_key) if isinstance(state, Mapping) else None
        overrides = ((config or {}).get("configurable") or {}).get(METADATA_KEY) or {}
        if effort and "effort" not in overrides:  # the state's effort, unless the call says
            configurable = dict(config.get("configurable") or {})
            configurable[METADATA_KEY] = {**overrides, "effort": effort}
            config = {**config, "configurable": configurable}
        return await super().__call__(state, config)

    async def search(self, prompt: list[Message], settings: ThinkHarderSettings) -> SearchResult:
        preset = self.presets[settings.effort]
        emit("effort", self.strategy, effort=settings.effort, preset=preset.strategy, n=preset.n)
        outer = current_meter()  # this invocation's budget: the preset's can only tighten it
        budget = outer if preset.budget is None else Meter(preset.budget, parent=outer)
        with metered(budget) as meter:
            if preset.strategy == "plain":
                result = await self._plain(prompt, settings)
            else:
                inner = self._node(preset, settings)
                result = await inner.search(prompt, inner.settings)
        record = {"effort": settings.effort, "preset": preset.model_dump(mode="json")}
        limited = result.budget_limited or (meter is not None and meter.exhausted)
        return result.model_copy(
            update={
                "settings": record | result.settings,
                "strategy": result.strategy,
                "budget_limited": limited,
            }
        )

    async def _plain(self, prompt: list[Message], settings: ThinkHarderSettings) -> SearchResult:
        [completion] = await tasks.sample(self.model, prompt, 1, settings, self.strategy)
        [candidate] = tasks.candidates_from([completion])
        return SearchResult(
            strategy="none",
            settings={"model": self.model.name},
            candidates=[candidate],
            chosen=0,
            usage=SearchUsage(generation=completion.usage, verification=Usage()),
        )

    def _node(self, preset: Preset, settings: ThinkHarderSettings) -> StrategyNode:
        temperature, max_tokens = settings.temperature, settings.max_tokens
        if preset.strategy == "majority_vote":
            return majority_vote(
                self.model,
                n=preset.n,
                answer="exact",
                temperature=temperature,
                max_tokens=max_tokens,
            )
        if preset.strategy == "refine":
            return refine(
                self.model, self.judge, rounds=preset.rounds, width=preset.n, keep=preset.keep,
                temperature=temperature, max_tokens=max_tokens,
            )  # fmt: skip
        return best_of_n(
            self.model, self.judge, n=preset.n, temperature=temperature, max_tokens=max_tokens
        )


def think_harder(
    model: ChatModel,
    judge: Verifier | None = None,
    effort: Effort = "medium",
    presets: Mapping[str, Preset] | None = None,
    *,
    temperature: float = 0.8,
    max_tokens: int | None = None,
    effort_key: str = "effort",
    messages_key: str = "messages",
    result_key: str | None = None,
) -> ThinkHarder:
    """A node whose effort (``none | low | medium | high``) can change every turn.

    Args:
        model: answers (and, by default, judges).
        judge: the verifier of the searching presets (default: the ``helpfulness`` card).
        effort: the level when a turn names none.
        presets: override some or all levels, e.g. ``{"high": Preset(strategy="best_of_n",
            n=16, budget=Budget(total_tokens=40_000))}``.
        effort_key: the state key read for a per-turn effort.

    Example:
        >>> from ttc_agent import OpenAIChat
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> node = think_harder(model, effort="low")
        >>> node.presets["low"].n
        4
    """
    if judge is None:
        from ttc_agent.verifiers.rubric_judge import RubricJudge

        judge = RubricJudge("helpfulness", model)
    settings = ThinkHarder.make_settings(
        effort=effort, temperature=temperature, max_tokens=max_tokens
    )
    return ThinkHarder(
        model, judge, settings, presets={**DEFAULT_PRESETS, **(presets or {})},
        effort_key=effort_key, messages_key=messages_key, result_key=result_key,
    )  # fmt: skip
