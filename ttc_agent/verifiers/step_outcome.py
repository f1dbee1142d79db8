"""A step verifier (a PRM or a step judge) used as an outcome verifier: a solution's score is
the aggregate of its steps' scores, as in the Hugging Face study's best-of-N with a PRM."""

from __future__ import annotations

from collections.abc import Sequence

from ttc_agent.protocols import OnScore, StepVerifier, preferred_aggregate
from ttc_agent.types import Aggregate, Message, Score, aggregate_scores


class StepsAsOutcome:
    """Scores whole solutions with a step verifier: split into steps, score, aggregate.

    ``delimiter=None`` scores each solution as one step: one verdict on the whole solution
    (for a step judge, one call per candidate instead of one per step; give the judge a card
    that asks about a whole solution, such as ``math_solution``). ``aggregate`` defaults to the
    verifier's own preference (``min`` for ``LLMStepJudge``, ``last`` for PRMs).

    Example:
        >>> from ttc_agent import OpenAIChat, LLMStepJudge
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> StepsAsOutcome(LLMStepJudge(model), aggregate="min").name
        'math_step:min'
    """

    def __init__(
        self,
        verifier: StepVerifier,
        *,
        aggregate: Aggregate | None = None,
        delimiter: str | None = "\n\n",
    ) -> None:
        aggregate = aggregate or preferred_aggregate(verifier)
        self.verifier, self.aggregate, self.delimiter = verifier, aggregate, delimiter
        self.name = f"{verifier.name}:{aggregate}" if delimiter is not None else verifier.name
        self.batch_size: int | None = getattr(verifier, "batch_size", None)  # solutions per call

    async def score(
        self,
        prompt: Sequence[Message],
        candidates: Sequence[str],
        *,
        on_score: OnScore | None = None,
    ) -> list[Score]:
        """One ``Score`` per candidate: the aggregated step score, in [0, 1]."""
        solutions = [
            [step for step in text.split(self.delimiter) if step.strip()] or [text]
            if self.delimiter is not None
            else [text]
            for text in candidates
        ]
        step_scores = await self.verifier.score_steps(prompt, solutions)
        scores = []
        for i, steps in enumerate(step_scores):
            value, mode = aggregate_scores(steps.steps, self.aggregate), f"steps:{self.aggregate}"
            score = Score(value=value, normalized=value, mode=mode, usage=steps.usage)
            if on_score is not None:
                on_score(i, score)
            scores.append(score)
        return scores
