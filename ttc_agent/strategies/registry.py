"""The one list of strategies: each name with its settings type, its search function, the parts
it needs and one line on what it does.

The command line (``ttc run --strategy``), the proxy (``ttc serve``'s ``ttc.strategy``), the
evaluation (``ttc eval --search``) and the strategies that run others (``adaptive``,
``think_harder``) read it. Adding a strategy is one file (its settings model, its search function
and a factory) and one row below; ``register`` adds one of your own at run time.

Example:
    >>> strategy("beam_search").needs
    frozenset({'step_verifier'})
    >>> [row.name for row in strategies()][:3]
    ['best_of_n', 'majority_vote', 'beam_search']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, Unpack

from pydantic import BaseModel

from ttc_agent.errors import ConfigurationError
from ttc_agent.protocols import Part, Parts, SearchFunction
from ttc_agent.strategies import (
    ab_mcts,
    adaptive,
    beam_search,
    best_of_n,
    deepconf,
    dvts,
    majority_vote,
    particle_filter,
    refine,
    think_harder,
)
from ttc_agent.strategies._node import NodeOptions, StrategyNode, make_settings
from ttc_agent.strategies._steps import step_defaults
from ttc_agent.types import Message, SearchResult

S = TypeVar("S", bound=BaseModel)


@dataclass(frozen=True)
class Strategy(Generic[S]):
    """One row of the registry.

    Attributes:
        name: what the command line, the proxy and results call it.
        settings: its settings model (what an invocation may override).
        search: its search function.
        description: one line on what it does.
        needs: the parts it cannot run without.
        takes: the parts it uses when given (``answer_key`` turns best-of-N weighted).
        size: the setting that says how many candidates it samples, which a preset's or a
            budget's ``n`` sets (``None``: none does).
        chooses: it runs other strategies, so no preset or policy may choose it.
        defaults: settings that depend on the parts (a step search's ``aggregate``).
    """

    name: str
    settings: type[S]
    search: SearchFunction[S]
    description: str
    needs: frozenset[Part] = frozenset()
    takes: frozenset[Part] = frozenset()
    size: str | None = "n"
    chooses: bool = False
    defaults: Callable[[Parts], dict[str, Any]] = field(default=lambda parts: {})

    @property
    def grows_steps(self) -> bool:
        """Whether it grows partial replies step by step: it needs a step verifier, or takes
        one without needing an outcome verifier (``adaptive`` takes one only for a policy that
        chooses beam search)."""
        steps = "step_verifier" in self.needs | self.takes
        return "step_verifier" in self.needs or (steps and "verifier" not in self.needs)

    def settings_from(self, parts: Parts, values: Mapping[str, Any] = {}) -> S:
        """Validated settings from ``values`` (names it does not have are left out) and the
        defaults the parts decide, once the parts it needs are known to be there."""
        if missing := parts.missing(self.needs):
            raise ConfigurationError(f"{self.name} needs {', '.join(missing)}, not given")
        known = {k: v for k, v in values.items() if k in self.settings.model_fields}
        return make_settings(self.name, self.settings, self.defaults(parts) | known)

    def node(
        self,
        parts: Parts,
        values: Mapping[str, Any] = {},
        **options: Unpack[NodeOptions],
    ) -> StrategyNode[S]:
        """This strategy's node, with ``parts`` and the settings in ``values``."""
        settings = self.settings_from(parts, values)
        return StrategyNode(self.name, self.search, settings, parts, **options)

    async def run(
        self,
        prompt: list[Message],
        parts: Parts,
        values: Mapping[str, Any] = {},
    ) -> SearchResult:
        """Run this strategy's search inside a running one (a preset, a policy's choice), with
        only the parts it needs."""
        own = parts.only(self.needs)
        return await self.search(prompt, self.settings_from(own, values), own)


_STEP_PARTS: frozenset[Part] = frozenset({"answer_key", "is_final"})

BUILT_IN: tuple[Strategy[Any], ...] = (
    Strategy(
        "best_of_n",
        best_of_n.BestOfNSettings,
        best_of_n.search,
        "sample n answers, score each with a verifier, keep the best (by answer, weighted; "
        "or by a pairwise tournament)",
        needs=frozenset({"verifier"}),
        takes=frozenset({"answer_key", "pairwise"}),
    ),
    Strategy(
        "majority_vote",
        majority_vote.MajorityVoteSettings,
        majority_vote.search,
        "sample n answers (in rounds, to stop early), return one the most of them agree on",
        needs=frozenset({"equivalence"}),
        takes=frozenset({"verifier"}),
    ),
    Strategy(
        "beam_search",
        beam_search.BeamSearchSettings,
        beam_search.search,
        "grow n solutions step by step, keeping the keep best steps a step verifier scores",
        needs=frozenset({"step_verifier"}),
        takes=_STEP_PARTS,
        defaults=step_defaults,
    ),
    Strategy(
        "dvts",
        dvts.DVTSSettings,
        dvts.search,
        "subtrees independent greedy step searches of n // subtrees, choose across them",
        needs=frozenset({"step_verifier"}),
        takes=_STEP_PARTS,
        defaults=step_defaults,
    ),
    Strategy(
        "particle_filter",
        particle_filter.ParticleFilterSettings,
        particle_filter.search,
        "grow n particles step by step, drawn again by weight (a step verifier's, else logprobs)",
        takes=frozenset({"step_verifier", "answer_key", "is_final"}),
        defaults=particle_filter.particle_defaults,
    ),
    Strategy(
        "refine",
        refine.RefineSettings,
        refine.search,
        "draft, judge with feedback, revise the best drafts round by round, keep the best",
        needs=frozenset({"verifier"}),
        size="width",
    ),
    Strategy(
        "deepconf",
        deepconf.DeepConfSettings,
        deepconf.search,
        "sample n with logprobs, the most confident share votes, weighted by confidence "
        "(online: traces stream and the weak are cancelled)",
        needs=frozenset({"equivalence"}),
    ),
    Strategy(
        "ab_mcts",
        ab_mcts.ABMCTSSettings,
        ab_mcts.search,
        "a tree of drafts, each a fresh answer or a revision, as Thompson sampling of scores says",
        needs=frozenset({"verifier"}),
        takes=frozenset({"answer_key"}),
    ),
    Strategy(
        "adaptive",
        adaptive.AdaptiveSettings,
        adaptive.search,
        "probe, estimate the difficulty, let a policy choose the strategy and n",
        needs=frozenset({"verifier", "answer_key"}),
        takes=frozenset({"step_verifier"}),
        size=None,
        chooses=True,
    ),
    Strategy(
        "think_harder",
        think_harder.ThinkHarderSettings,
        think_harder.search,
        "an effort level (none, low, medium, high) that runs its preset strategy",
        needs=frozenset({"verifier"}),
        takes=frozenset({"answer_key"}),
        size=None,
        chooses=True,
    ),
)

_STRATEGIES: dict[str, Strategy[Any]] = {row.name: row for row in BUILT_IN}


def register(row: Strategy[Any]) -> Strategy[Any]:
    """Add a strategy to the registry (a name already there is replaced)."""
    _STRATEGIES[row.name] = row
    return row


def strategy(name: str) -> Strategy[Any]:
    """The registered strategy of this name.

    Raises:
        ConfigurationError: no strategy has that name (the message lists those that do).
    """
    if name not in _STRATEGIES:
        raise ConfigurationError(f"unknown strategy {name!r}; available: {', '.join(_STRATEGIES)}")
    return _STRATEGIES[name]


def strategies() -> tuple[Strategy[Any], ...]:
    """Every registered strategy, in the order registered."""
    return tuple(_STRATEGIES.values())
