"""One partial solution of a step-level search, and how a sampled step extends it.

A step ends at the step delimiter. A reply cut at the token limit (``finish_reason="length"``)
is not a step boundary: the beam stays ``open`` and the next request continues the same step,
with no delimiter inserted mid-sentence.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from ttc_agent.types import Aggregate, Candidate, Completion, Score, Usage, aggregate_scores

_FINAL = re.compile(r"\\boxed\{|answer is|final answer|^####", re.IGNORECASE | re.MULTILINE)


def has_final_answer(step: str) -> bool:
    """The default end-of-solution test for servers that do not say why a reply stopped.

    Example:
        >>> has_final_answer(r"So the answer is \\boxed{4}."), has_final_answer("Next, add 2.")
        (True, False)
    """
    return bool(_FINAL.search(step))


class Beam(BaseModel):
    """One partial (or finished) solution: its steps and their scores.

    Example:
        >>> from ttc_agent.types import Completion
        >>> cut = Beam().extended(Completion(text="2 + 2", finish_reason="length"), "\\n\\n")
        >>> cut.open, cut.prefix("\\n\\n")
        (True, '2 + 2')
        >>> done = cut.extended(Completion(text=" = 4", finish_reason="stop"), "\\n\\n")
        >>> done.steps, done.prefix("\\n\\n")
        (['2 + 2 = 4'], '2 + 2 = 4\\n\\n')
    """

    model_config = ConfigDict(frozen=True)

    steps: list[str] = Field(default_factory=list)
    scores: list[float] = Field(default_factory=list)
    finished: bool = False
    finish_reason: str | None = None
    open: bool = False  # the last step was cut at the token limit: the next request continues it
    usage: Usage = Usage()  # generation along this solution's own path
    tree: int = 0
    rank: float = 0.0  # what selection compares: the aggregate, lookahead steps included

    def text(self, delimiter: str) -> str:
        return delimiter.join(self.steps)

    def prefix(self, delimiter: str) -> str:
        """The assistant text the next request continues: a delimiter only after a whole step."""
        return self.text(delimiter) + ("" if self.open else delimiter)

    def score(self, aggregate: Aggregate) -> float:
        """The aggregated score of this solution's own steps."""
        return aggregate_scores(self.scores, aggregate)

    def candidate(
        self,
        index: int,
        delimiter: str,
        aggregate: Aggregate,
        answer_key: Callable[[str], str | None] | None = None,
    ) -> Candidate:
        """This solution as a candidate, scored by its aggregated step score."""
        text, value = self.text(delimiter), self.score(aggregate)
        return Candidate(
            index=index,
            text=text,
            finish_reason=self.finish_reason,
            usage=self.usage,
            score=Score(value=value, normalized=value, mode=f"steps:{aggregate}"),
            step_scores=self.scores,
            key=answer_key(text) if answer_key else None,
            tree=self.tree,
        )

    def extended(
        self,
        completion: Completion,
        delimiter: str,
        is_final: Callable[[str], bool] = has_final_answer,
    ) -> Beam:
        """This beam with one more step, or with the rest of its last step when that was cut."""
        text, cut = completion.text, completion.finish_reason == "length"
        if not delimiter.strip():
            text = text.rstrip("\n") if self.open else text.strip("\n")
        if cut:
            text = _without_partial_delimiter(text, delimiter)
        steps = list(self.steps)
        if self.open:
            steps[-1] += text
        elif text.strip() or not steps:
            steps.append(text)
        says_ended = completion.ended is None and completion.finish_reason == "stop"
        empty = not self.open and not text.strip()
        ended = completion.ended is True or (says_ended and (empty or is_final(steps[-1])))
        return Beam(
            steps=steps,
            scores=self.scores,
            finished=ended,
            finish_reason=completion.finish_reason if ended else None,
            open=cut and not ended,
            usage=self.usage + completion.usage,
            tree=self.tree,
        )


def _without_partial_delimiter(text: str, delimiter: str) -> str:
    """A cut reply without the start of a delimiter it may end in: the next request writes it.

    Example:
        >>> _without_partial_delimiter("so 4.<st", "<step>")
        'so 4.'
    """
    for k in range(len(delimiter) - 1, 0, -1):
        if text.endswith(delimiter[:k]):
            return text[:-k]
    return text


def spread(width: int, parents: int) -> list[int]:
    """How many children each of ``parents`` survivors gets, ``width`` in all, best first.

    Example:
        >>> spread(8, 2), spread(8, 3), spread(8, 1)
        ([4, 4], [3, 3, 2], [8])
    """
    return [width // parents + (i < width % parents) for i in range(parents)]
