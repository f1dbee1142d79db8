"""Sequential revision: draft, judge with feedback, revise with that feedback, repeat.

Every draft is scored; the judge's rationale and per-criterion scores go back to the model as
feedback for the next revision. The best draft seen so far is kept, so the answer is never
scored below the best seen; the search stops early once a draft reaches ``threshold``. With
``width`` > 1 each round expands the ``keep`` best drafts into ``width`` revisions each and the
judge picks the survivors among old and new: the open-ended search "sample drafts, score them
with rubric rewards, expand the best". (SCoRe trains self-correction with RL; this is its
inference-time form.)
"""

from __future__ import annotations

import asyncio
from typing import TypeAlias, Unpack

from pydantic import BaseModel, ConfigDict, Field

from ttc_agent.errors import BudgetExhausted
from ttc_agent.protocols import ChatModel, Parts, Verifier, required
from ttc_agent.strategies import _tasks as tasks
from ttc_agent.strategies._node import NodeOptions, StrategyNode, make_settings
from ttc_agent.strategies._progress import counted_together, emit
from ttc_agent.strategies._selection import finish
from ttc_agent.types import Candidate, Completion, Message, Score, SearchResult
from ttc_agent.verifiers.fence import neutralise
from ttc_agent.verifiers.injection_policy import as_judged, revision_note

NAME = "refine"

REVISE = (
    "A reviewer scored your answer {value:.2f} (scale {low:g} to {high:g}).\n{details}\n\n"
    "Revise your answer to address this feedback. Keep what works. Reply with the complete "
    "revised answer only, without any comment on the changes."
)


class RefineSettings(BaseModel):
    """Settings of ``refine``; each can be overridden per invocation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rounds: int = Field(default=3, ge=0)
    width: int = Field(default=1, ge=1)
    keep: int = Field(default=1, ge=1)
    threshold: float | None = None
    temperature: float = Field(default=0.7, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)


async def search(prompt: list[Message], settings: RefineSettings, parts: Parts) -> SearchResult:
    """Draft, then revise the best drafts with the judge's feedback round by round."""
    model, verifier = parts.model, required(parts.verifier, "verifier")
    first = settings.keep * settings.width
    emit("round", NAME, round=0, total=settings.rounds)
    drafts = await tasks.sample_some(model, prompt, first, settings, NAME)
    seen = await _scored(verifier, prompt, tasks.candidates_from(drafts), round_=0)
    survivors = _best(seen, settings.keep)
    rounds = 0
    for round_ in range(1, settings.rounds + 1):
        best = seen[survivors[0]].score
        if best is None or (settings.threshold is not None and best.value >= settings.threshold):
            break  # reached the threshold, or the budget left nothing scored
        # the budget may have left some kept drafts unjudged: no feedback to revise them with
        judged = [i for i in survivors if seen[i].score is not None]
        with counted_together("sampled", NAME, len(judged) * settings.width):
            results = await asyncio.gather(
                *(_revise(prompt, seen[i], settings, parts) for i in judged),
                return_exceptions=True,
            )
        revisions = _revisions(len(seen), judged, [_arrived(result) for result in results])
        seen += await _scored(verifier, prompt, revisions, round_=round_)
        survivors, rounds = _best(seen, settings.keep), round_
        best_value = _value(seen[survivors[0]])
        emit("round", NAME, round=round_, total=settings.rounds, best=best_value)
        if len(revisions) < settings.keep * settings.width:
            break  # the budget ran out
    if rounds < settings.rounds:  # stopped early: the rounds done are all there are
        emit("round", NAME, round=rounds, total=rounds)
    record = settings.model_dump() | {"verifier": verifier.name, "model": model.name}
    return finish(NAME, seen, "best", record)


async def _revise(
    prompt: list[Message], draft: Candidate, settings: RefineSettings, parts: Parts
) -> list[Completion]:
    revision_prompt = revised(prompt, draft, score_scale(parts.verifier))
    return await tasks.sample(parts.model, revision_prompt, settings.width, settings, NAME)


async def _scored(
    verifier: Verifier, prompt: list[Message], drafts: list[Candidate], round_: int
) -> list[Candidate]:
    if not drafts:
        return []
    scores = await tasks.score_some(verifier, prompt, [d.text for d in drafts], NAME)
    return tasks.with_scores(drafts, scores, round=round_)


def _revisions(start: int, parents: list[int], batches: list[list[Completion]]) -> list[Candidate]:
    """The revisions of each parent draft as new candidates, numbered from ``start``."""
    pairs = [(parent, c) for parent, batch in zip(parents, batches, strict=True) for c in batch]
    revisions = tasks.candidates_from([c for _, c in pairs], start=start)
    return [r.model_copy(update={"parent": p}) for r, (p, _) in zip(revisions, pairs, strict=True)]


def revised(prompt: list[Message], draft: Candidate, scale: tuple[float, float]) -> list[Message]:
    """The conversation that asks for a revision of ``draft`` with its judge's feedback."""
    assert draft.score is not None  # only scored drafts survive to be revised
    feedback = REVISE.format(
        value=draft.score.value, low=scale[0], high=scale[1], details=_details(draft.score)
    )
    quoted = as_judged(draft.text, draft.score.injection)  # what the judge read of it
    return [  # the draft and the judge's words are quoted: their control markers stay text
        *prompt,
        {"role": "assistant", "content": neutralise(quoted)},
        {"role": "user", "content": neutralise(feedback)},
    ]


def score_scale(verifier: object) -> tuple[float, float]:
    """The verifier's score scale: its judge card's, else 0 to 1."""
    card = getattr(verifier, "card", None)
    return (float(card.scale.min), float(card.scale.max)) if card is not None else (0.0, 1.0)


def _details(score: Score) -> str:
    lines = [f"- {name}: {value:.2f}" for name, value in score.criteria.items()]
    if score.rationale:
        lines.append(f"Reasons:\n{score.rationale}")
    if note := revision_note(score.injection):  # the judge's screen found text aimed at it
        lines.append(note)
    return "\n".join(lines)


def _best(candidates: list[Candidate], keep: int) -> list[int]:
    """Indices of the ``keep`` best-scored candidates, best first (earliest on ties; unscored
    candidates, which the budget left unjudged, last)."""
    order = sorted(range(len(candidates)), key=lambda i: (-_value(candidates[i]), i))
    return order[:keep]


def _arrived(result: list[Completion] | BaseException) -> list[Completion]:
    """The revisions of one draft, including those that arrived before the budget ran out."""
    if isinstance(result, BudgetExhausted):
        return [c for c in result.partial if c is not None]
    if isinstance(result, BaseException):
        raise result
    return result


def _value(candidate: Candidate) -> float:
    return candidate.score.value if candidate.score is not None else float("-inf")


Refine: TypeAlias = StrategyNode[RefineSettings]
"""The type of a sequential-revision node (build one with ``refine``); kept for one release."""


def refine(
    model: ChatModel,
    verifier: Verifier,
    rounds: int = 3,
    width: int = 1,
    keep: int = 1,
    threshold: float | None = None,
    *,
    temperature: float = 0.7,
    max_tokens: int | None = None,
    **options: Unpack[NodeOptions],
) -> Refine:
    """A sequential-revision node.

    Args:
        model: writes drafts and revisions.
        verifier: judges each draft; a ``RubricJudge`` gives per-criterion feedback (and its
            card's scale frames the feedback).
        rounds: revision rounds after the first drafts.
        width: revisions per kept draft per round; ``keep``: drafts kept each round.
        threshold: stop once the best draft's score (on the verifier's scale) reaches it.
        **options: ``budget``, ``messages_key``, ``result_key`` (see ``NodeOptions``).

    Example:
        >>> from ttc_agent import OpenAIChat, RubricJudge
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> node = refine(model, RubricJudge("writing_quality", model), rounds=2, threshold=4.5)
        >>> node.settings.rounds, node.settings.threshold
        (2, 4.5)
    """
    values = {"rounds": rounds, "width": width, "keep": keep, "threshold": threshold}
    values |= {"temperature": temperature, "max_tokens": max_tokens}
    settings = make_settings(NAME, RefineSettings, values)
    return StrategyNode(NAME, search, settings, Parts(model, verifier=verifier), **options)
