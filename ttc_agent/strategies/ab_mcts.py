"""Adaptive branching tree search over whole drafts (AB-MCTS: Inoue et al., "Wider or Deeper?",
arXiv 2503.04412; Sakana AI's TreeQuest).

The tree's root is the prompt; every other node is a draft the verifier scored. Each expansion
walks down from the root. At each node it asks, by Thompson sampling, whether to go *wider*
(a new child of this node: a fresh answer at the root, a new revision of the draft elsewhere)
or *deeper* (into one of its children, chosen by Thompson sampling too), drawing once from a
Beta posterior of the scores seen each way: the scores of the node's own children for wider,
of their descendants for deeper, of each child's subtree for the child. A revision is
``refine``'s: the draft and the judge's feedback, asking for the complete revised answer. So
where revising pays, the search goes deeper; where fresh samples score better, it goes wider.

``batch`` expansions are chosen at once from the same posteriors (expansions of the same node
are one request) and judged together; ``n`` drafts are made in all. The answer is the
best-scored draft, or, with an ``answer_key``, the answer whose drafts' scores add up highest.
The draws are seeded, so a resumed run retraces the same tree.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Sequence
from typing import Any, TypeAlias, Unpack

from pydantic import BaseModel, ConfigDict, Field

from ttc_agent.errors import BudgetExhausted
from ttc_agent.protocols import AnswerKey, ChatModel, Parts, StepVerifier, Verifier, required
from ttc_agent.strategies import _tasks as tasks
from ttc_agent.strategies._node import NodeOptions, StrategyNode, make_settings
from ttc_agent.strategies._progress import counted_together, emit
from ttc_agent.strategies._selection import Selection, finish
from ttc_agent.strategies.refine import revised, score_scale
from ttc_agent.types import Candidate, Completion, Message, SearchResult
from ttc_agent.verifiers.step_outcome import StepsAsOutcome

NAME = "ab_mcts"
ROOT = -1
"""The prompt's node: its children are fresh answers."""
PRIOR = 0.5
"""Both parameters of every Beta prior (Jeffreys')."""


class ABMCTSSettings(BaseModel):
    """Settings of ``ab_mcts``; each can be overridden per invocation.

    Attributes:
        n: drafts made in all (fresh answers and revisions).
        batch: expansions chosen at once from the same posteriors, and judged together.
        threshold: stop once a draft's score (on the verifier's scale) reaches it.
        temperature, max_tokens: of every draft.
        seed: seeds the Thompson draws, so that a run (and a resumed one) grows the same tree.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(default=16, ge=1)
    batch: int = Field(default=4, ge=1)
    threshold: float | None = None
    temperature: float = Field(default=0.7, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)
    seed: int = 0


class Tree:
    """The scores seen under each node: of its own children (wider), of their descendants
    (deeper) and of each child's subtree.

    Example:
        >>> tree = Tree()
        >>> tree.add(0, ROOT, 0.2), tree.add(1, 0, 0.9)
        (None, None)
        >>> tree.wider[ROOT], tree.deeper[ROOT], tree.subtree[0]
        ([0.2], [0.9], [0.2, 0.9])
    """

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.children: dict[int, list[int]] = {ROOT: []}
        self.wider: dict[int, list[float]] = {ROOT: []}
        self.deeper: dict[int, list[float]] = {ROOT: []}
        self.subtree: dict[int, list[float]] = {}

    def add(self, node: int, parent: int, score: float) -> None:
        """Add a scored draft under ``parent`` and let every node above it see its score."""
        self.parent[node] = parent
        self.children[parent].append(node)
        self.children[node], self.wider[node], self.deeper[node] = [], [], []
        self.wider[parent].append(score)
        self.subtree[node] = [score]
        child, above = parent, self.parent.get(parent)
        while above is not None:
            self.deeper[above].append(score)
            self.subtree[child].append(score)
            child = above
            above = self.parent.get(above)

    def choose(self, rng: random.Random) -> int:
        """The node to grow a child from: walk down from the root, at each node going wider
        (grow it) or deeper (into a child) by Thompson sampling."""
        node = ROOT
        while self.children[node]:
            if _draw(self.wider[node], rng) >= _draw(self.deeper[node], rng):
                return node
            node = max(self.children[node], key=lambda child: _draw(self.subtree[child], rng))
        return node


def _draw(scores: Sequence[float], rng: random.Random) -> float:
    """A draw from the Beta posterior of scores in [0, 1] (each counting as that share of a
    success) under Jeffreys' prior."""
    return rng.betavariate(PRIOR + sum(scores), PRIOR + sum(1.0 - s for s in scores))


async def search(prompt: list[Message], settings: ABMCTSSettings, parts: Parts) -> SearchResult:
    """Grow the tree ``batch`` expansions at a time until ``n`` drafts; choose the best."""
    verifier = required(parts.verifier, "verifier")
    rng, tree = random.Random(settings.seed), Tree()
    drafts: list[Candidate] = []
    rounds = math.ceil(settings.n / settings.batch)
    for round_ in range(1, rounds + 1):
        asked = min(settings.batch, settings.n - len(drafts))
        picks = [tree.choose(rng) for _ in range(asked)]
        nodes = sorted(set(picks), key=picks.index)  # each node grown once, for all its picks
        with counted_together("sampled", NAME, asked):
            results = await asyncio.gather(
                *(
                    _grow(prompt, drafts, node, picks.count(node), settings, parts)
                    for node in nodes
                ),
                return_exceptions=True,
            )
        arrived = [_arrived(result) for result in results]
        new = _drafts(len(drafts), nodes, arrived, round_, parts.answer_key)
        scores = (
            await tasks.score_some(verifier, prompt, [d.text for d in new], NAME) if new else []
        )
        new = tasks.with_scores(new, scores)
        drafts += new
        for draft in new:
            if draft.score is not None:  # the budget may leave some unjudged: not grown further
                tree.add(draft.index, ROOT if draft.parent is None else draft.parent, _share(draft))
        best = max((d.score.value for d in drafts if d.score is not None), default=None)
        wider = sum(d.parent is None for d in drafts)
        emit("round", NAME, round=round_, total=rounds, best=best, wider=wider)
        reached = best is not None and settings.threshold is not None and best >= settings.threshold
        if reached or len(new) < asked or not any(d.score is not None for d in new):
            if round_ < rounds:
                emit("round", NAME, round=round_, total=round_)
            break  # reached the threshold, or the budget ran out
    if not drafts:
        raise BudgetExhausted("the budget ran out before a first draft arrived")
    depth: dict[int, int] = {}
    for draft in drafts:  # a revision comes after the draft it revises
        depth[draft.index] = 1 if draft.parent is None else depth[draft.parent] + 1
    record = settings.model_dump() | {"verifier": verifier.name, "model": parts.model.name}
    wider = sum(d.parent is None for d in drafts)
    record |= {"wider": wider, "deeper": len(drafts) - wider, "depth": max(depth.values())}
    selection: Selection = "weighted" if parts.answer_key else "best"
    return finish(NAME, drafts, selection, record)


async def _grow(
    prompt: list[Message],
    drafts: list[Candidate],
    node: int,
    count: int,
    settings: ABMCTSSettings,
    parts: Parts,
) -> list[Completion]:
    """``count`` new children of ``node``: fresh answers at the root, revisions elsewhere."""
    asked = prompt if node == ROOT else revised(prompt, drafts[node], score_scale(parts.verifier))
    return await tasks.sample_some(parts.model, asked, count, settings, NAME)


def _drafts(
    start: int,
    nodes: list[int],
    batches: list[list[Completion]],
    round_: int,
    answer_key: AnswerKey | None,
) -> list[Candidate]:
    """The new drafts as candidates numbered from ``start``, each with the draft it revises."""
    pairs = [(node, c) for node, batch in zip(nodes, batches, strict=True) for c in batch]
    made = tasks.candidates_from([c for _, c in pairs], answer_key, start=start)
    return [
        draft.model_copy(update={"parent": None if node == ROOT else node, "round": round_})
        for draft, (node, _) in zip(made, pairs, strict=True)
    ]


def _arrived(result: list[Completion] | BaseException) -> list[Completion]:
    """One node's new children (none when the budget left room for none of them)."""
    if isinstance(result, BudgetExhausted):
        return []
    if isinstance(result, BaseException):
        raise result
    return result


def _share(draft: Candidate) -> float:
    """A draft's score as a share in [0, 1], what the posteriors count."""
    assert draft.score is not None
    return min(1.0, max(0.0, draft.score.normalized))


ABMCTS: TypeAlias = StrategyNode[ABMCTSSettings]
"""The type of an AB-MCTS node (build one with ``ab_mcts``)."""


def ab_mcts(
    model: ChatModel,
    verifier: Verifier | StepVerifier,
    n: int = 16,
    batch: int = 4,
    threshold: float | None = None,
    *,
    temperature: float = 0.7,
    max_tokens: int | None = None,
    seed: int = 0,
    answer_key: AnswerKey | None = None,
    **options: Unpack[NodeOptions],
) -> ABMCTS:
    """An adaptive-branching tree search node: ``n`` drafts, each a fresh answer or a revision
    of a draft, whichever the scores so far favour.

    Args:
        model: writes drafts and revisions.
        verifier: judges whole drafts: a ``RubricJudge`` (its rationale and criteria are the
            feedback revisions get), an answer check of yours, or a step verifier
            (``LLMStepJudge``, a PRM), which judges a draft's steps (``StepsAsOutcome``).
        n, batch, threshold, temperature, max_tokens, seed: see ``ABMCTSSettings``.
        answer_key: choose the answer whose drafts' scores add up highest.
        **options: ``budget``, ``messages_key``, ``result_key`` (see ``NodeOptions``).

    Example:
        >>> from ttc_agent import OpenAIChat, RubricJudge
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> node = ab_mcts(model, RubricJudge("writing_quality", model), n=12, batch=3)
        >>> node.settings.n, node.settings.batch
        (12, 3)
    """
    judge = verifier if isinstance(verifier, Verifier) else StepsAsOutcome(verifier)
    values: dict[str, Any] = {"n": n, "batch": batch, "threshold": threshold, "seed": seed}
    values |= {"temperature": temperature, "max_tokens": max_tokens}
    settings = make_settings(NAME, ABMCTSSettings, values)
    parts = Parts(model, verifier=judge, answer_key=answer_key)
    return StrategyNode(NAME, search, settings, parts, **options)
