"""An outcome verifier (a rubric judge) used as a step verifier, for step-by-step writing.

The score of step k is the verifier's normalised score of the draft made of steps 1..k
(paragraphs or sections). Scores are cached by (prompt, draft so far), so a beam search pays
once for each partial draft it keeps.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence

from ttc_agent.protocols import StepVerifier, Verifier
from ttc_agent.types import Aggregate, Message, StepScores, Usage


class DraftStepVerifier:
    """Scores each prefix of a draft with an outcome verifier.

    Example:
        >>> from ttc_agent import OpenAIChat, RubricJudge
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> DraftStepVerifier(RubricJudge("writing_quality", model)).name
        'writing_quality'
    """

    preferred_aggregate: Aggregate = "last"  # a step's score is that of the whole draft so far
    batch_size = 1  # one solution per call, so that strategies checkpoint each one

    def __init__(self, verifier: Verifier, *, delimiter: str = "\n\n", cache_size: int = 4096):
        self.verifier, self.delimiter, self.cache_size = verifier, delimiter, cache_size
        self.name = verifier.name
        self._cache: OrderedDict[str, float] = OrderedDict()

    async def score_steps(
        self, prompt: Sequence[Message], solutions: Sequence[Sequence[str]]
    ) -> list[StepScores]:
        """Score every prefix of every draft; only unseen prefixes reach the verifier."""
        context = json.dumps(list(prompt), sort_keys=True, default=str)

        def key(steps: Sequence[str]) -> str:
            return json.dumps([context, list(steps)])

        drafts: dict[str, str] = {}
        for steps in solutions:
            for k in range(len(steps)):
                prefix = steps[: k + 1]
                if key(prefix) not in self._cache:
                    drafts.setdefault(key(prefix), self.delimiter.join(prefix))
        scores = await self.verifier.score(prompt, list(drafts.values())) if drafts else []
        usage_by_key = {}
        for draft_key, score in zip(drafts, scores, strict=True):
            self._cache[draft_key] = score.normalized
            self._cache.move_to_end(draft_key)
            usage_by_key[draft_key] = score.usage
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        results = []
        for steps in solutions:
            keys = [key(steps[: k + 1]) for k in range(len(steps))]
            usage = Usage.sum([usage_by_key.pop(k) for k in keys if k in usage_by_key])
            results.append(StepScores(steps=[self._cache[k] for k in keys], usage=usage))
        return results

    def remember(
        self,
        prompt: Sequence[Message],
        solutions: Sequence[Sequence[str]],
        scores: Sequence[StepScores],
    ) -> None:
        """Take scores given before as known (a resumed search hands back what it replays)."""
        context = json.dumps(list(prompt), sort_keys=True, default=str)
        for steps, verdict in zip(solutions, scores, strict=True):
            for k, value in enumerate(verdict.steps[: len(steps)]):
                self._cache[json.dumps([context, list(steps[: k + 1])])] = value
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


def as_step_verifier(verifier: StepVerifier | Verifier, delimiter: str = "\n\n") -> StepVerifier:
    """A step verifier as it is, or an outcome verifier wrapped in ``DraftStepVerifier``."""
    if isinstance(verifier, StepVerifier):
        return verifier
    if isinstance(verifier, Verifier):
        return DraftStepVerifier(verifier, delimiter=delimiter)
    raise TypeError(f"{verifier!r} is neither a step verifier nor a verifier")
