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

from pydantic import BaseModel, ConfigDict, Field

from ttc_agent.budget import Budget, BudgetExhausted
from ttc_agent.models.protocol import ChatModel
from ttc_agent.strategies import tasks
from ttc_agent.strategies.node import StrategyNode
from ttc_agent.strategies.progress import counted_together, emit
from ttc_agent.types import Candidate, Completion, Message, Score, SearchResult, SearchUsage, Usage
from ttc_agent.verifiers.fence import neutralise
from ttc_agent.verifiers.injection_policy import as_judged, revision_note
from ttc_agent.verifiers.protocol import Verifier

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


class Refine(StrategyNode):
    """The sequential-revision node; build it with ``refine``."""

    strategy = "refine"
    settings_type = RefineSettings

    def __init__(
        self,
        model: ChatModel,
        verifier: Verifier,
        settings: RefineSettings,
        *,
        scale: tuple[float, float] = (0.0, 1.0),
        budget: Budget | None = None,
        messages_key: str = "messages",
        result_key: str | None = None,
    ) -> None:
        super().__init__(settings, budget=budget, messages_key=messages_key, result_key=result_key)
        self.model, self.verifier, self.scale = model, verifier, scale

    async def search(self, prompt: list[Message], settings: RefineSettings) -> SearchResult:
        first = settings.keep * settings.width
        emit("round", self.strategy, round=0, total=settings.rounds)
        drafts = await tasks.sample_some(self.model, prompt, first, settings, self.strategy)
        seen = await self._scored(prompt, tasks.candidates_from(drafts), round_=0)
        survivors = _best(seen, settings.keep)
        rounds = 0
        for round_ in range(1, settings.rounds + 1):
            best = seen[survivors[0]].score
            if best is None or (
                settings.threshold is not None and best.value >= settings.threshold
            ):
                break  # reached the threshold, or the budget left nothing scored
            judged = [i for i in survivors if seen[i].score is not None]  # the budget may
            # have left some kept drafts unjudged: there is no feedback to revise them with
            with counted_together("sampled", self.strategy, len(judged) * settings.width):
                results = await asyncio.gather(
                    *(self._revise(prompt, seen[i], settings) for i in judged),
                    return_exceptions=True,
                )
            batches = [_arrived(result) for result in results]
            revisions = [
                Candidate(index=len(seen) + k, text=c.text, finish_reason=c.finish_reason,
                          usage=c.usage, parent=parent, tool_calls=c.tool_calls)
                for k, (parent, c) in enumerate(
                    (parent, c) for parent, batch in zip(judged, batches, strict=True)
                    for c in batch
                )
            ]  # fmt: skip
            seen += await self._scored(prompt, revisions, round_=round_)
            survivors, rounds = _best(seen, settings.keep), round_
            best_value = _value(seen[survivors[0]])
            emit("round", self.strategy, round=round_, total=settings.rounds, best=best_value)
            if len(revisions) < settings.keep * settings.width:
                break  # the budget ran out
        if rounds < settings.rounds:  # stopped early: the rounds done are all there are
            emit("round", self.strategy, round=rounds, total=rounds)
        chosen = survivors[0]
        emit("selected", self.strategy, index=chosen, score=_value(seen[chosen]))
        return SearchResult(
            strategy=self.strategy,
            settings=settings.model_dump()
            | {"verifier": self.verifier.name, "model": self.model.name},
            candidates=seen,
            chosen=chosen,
            usage=SearchUsage(
                generation=Usage.sum([c.usage for c in seen]),
                verification=Usage.sum([c.score.usage for c in seen if c.score]),
            ),
        )

    async def _revise(
        self, prompt: list[Message], draft: Candidate, settings: RefineSettings
    ) -> list[Completion]:
        revision_prompt = self._revision_prompt(prompt, draft)
        return await tasks.sample(
            self.model, revision_prompt, settings.width, settings, self.strategy
        )

    async def _scored(
        self, prompt: list[Message], drafts: list[Candidate], round_: int
    ) -> list[Candidate]:
        if not drafts:
            return []
        texts = [d.text for d in drafts]
        scores = await tasks.score_some(self.verifier, prompt, texts, self.strategy)
        return [
            d.model_copy(update={"score": s, "round": round_})
            for d, s in zip(drafts, scores, strict=True)
        ]

    def _revision_prompt(self, prompt: list[Message], draft: Candidate) -> list[Message]:
        assert draft.score is not None  # only scored drafts survive to be revised
        feedback = REVISE.format(
            value=draft.score.value,
            low=self.scale[0],
            high=self.scale[1],
            details=_details(draft.score),
        )
        quoted = as_judged(draft.text, draft.score.injection)  # what the judge read of it
        return [  # the draft and the judge's words are quoted: their control markers stay text
            *prompt,
            {"role": "assistant", "content": neutralise(quoted)},
            {"role": "user", "content": neutralise(feedback)},
        ]


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
        return [c for c in result.partial or [] if c is not None]
    if isinstance(result, BaseException):
        raise result
    return result


def _value(candidate: Candidate) -> float:
    return candidate.score.value if candidate.score is not None else float("-inf")


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
    budget: Budget | None = None,
    messages_key: str = "messages",
    result_key: str | None = None,
) -> Refine:
    """A sequential-revision node.

    Args:
        model: writes drafts and revisions.
        verifier: judges each draft; a ``RubricJudge`` gives per-criterion feedback.
        rounds: revision rounds after the first drafts.
        width: revisions per kept draft per round; ``keep``: drafts kept each round.
        threshold: stop once the best draft's score (on the verifier's scale) reaches it.

    Example:
        >>> from ttc_agent import OpenAIChat, RubricJudge
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> node = refine(model, RubricJudge("writing_quality", model), rounds=2, threshold=4.5)
        >>> node.scale
        (1.0, 5.0)
    """
    settings = Refine.make_settings(
        rounds=rounds,
        width=width,
        keep=keep,
        threshold=threshold,
        temperature=temperature,
        max_tokens=max_tokens,
    )
    card = getattr(verifier, "card", None)
    scale = (float(card.scale.min), float(card.scale.max)) if card is not None else (0.0, 1.0)
    return Refine(
        model, verifier, settings, scale=scale, budget=budget,
        messages_key=messages_key, result_key=result_key,
    )  # fmt: skip
