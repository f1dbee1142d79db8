"""Reason, then read the verdict token's distribution.

A judge that writes its check before its verdict gives the verdict something to follow from
(generative verifiers: GenRM-CoT, ThinkPRM). Reading that verdict's probabilities takes two
calls: the reasoning, generated without logprobs and stopped at the cue that introduces the
verdict; then the reply continued from the reasoning and the cue by exactly one token, with the
top logprobs there. The first call pays no logprob work per token; the second reuses the
server's cache of the prompt and the reasoning where it keeps one (llama.cpp does).

The model must continue a partial reply (``check_continuation``; the embedded model continues
ChatML over ``/completions``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ttc_agent.errors import ConfigurationError
from ttc_agent.models.protocol import ChatModel
from ttc_agent.types import Completion, Message, Usage


@dataclass(frozen=True)
class VerdictReading:
    """A verdict read after the judge's reasoning.

    ``probabilities`` maps each label to its share of the probability mass the labels hold
    among the verdict token's top logprobs (G-Eval), or is one-hot on the label the judge
    wrote where the endpoint gives no logprobs; empty when the judge wrote no label.

    Example:
        >>> reading = VerdictReading("2 + 2 is 4.", {"0": 0.25, "1": 0.75}, "1", Usage())
        >>> reading.decided, reading.probabilities["1"]
        (True, 0.75)
    """

    reasoning: str
    probabilities: dict[str, float]
    token: str
    usage: Usage

    @property
    def decided(self) -> bool:
        """Whether the verdict is one of the labels."""
        return bool(self.probabilities)


class ReasonedVerdict:
    """Asks a judge for its reasoning, then reads its verdict token's distribution.

    Args:
        model: the judge; it must continue a partial reply.
        labels: the verdicts, each one token (``("0", "1")``, ``("A", "B", "tie")``).
        cue: written after the reasoning, right before the verdict token; its stripped text
            also stops the reasoning, so that the verdict is read, never written.
        reasoning_tokens: the longest reasoning; a longer one is cut and the verdict read.
        top_logprobs: alternatives asked for at the verdict token.

    Example:
        >>> from ttc_agent import OpenAIChat
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> ReasonedVerdict(model, ("0", "1")).prefix("1 + 1 = 2 is right. ")
        '1 + 1 = 2 is right.\\n\\nVerdict: '
    """

    def __init__(
        self,
        model: ChatModel,
        labels: Sequence[str],
        *,
        cue: str = "\n\nVerdict: ",
        reasoning_tokens: int = 256,
        top_logprobs: int = 10,
    ) -> None:
        if len(set(labels)) < 2 or any(not label.strip() for label in labels):
            raise ConfigurationError(f"a verdict needs two or more distinct labels, got {labels}")
        if not cue.strip():
            raise ConfigurationError("the verdict's cue needs some text, such as 'Verdict:'")
        if reasoning_tokens < 1:
            raise ConfigurationError(f"reasoning_tokens must be at least 1, got {reasoning_tokens}")
        self.model, self.labels, self.cue = model, tuple(labels), cue
        self.reasoning_tokens, self.top_logprobs = reasoning_tokens, top_logprobs

    def prefix(self, reasoning: str) -> str:
        """The reply the verdict token continues: the reasoning, then the cue."""
        return reasoning.rstrip() + self.cue

    async def read(
        self, messages: Sequence[Message], *, temperature: float = 0.0
    ) -> VerdictReading:
        """The judge's reasoning on ``messages`` (which ask for it, then the cue and a label),
        and the distribution of its verdict.

        Raises:
            ConfigurationError: the model cannot continue a partial reply (before any call).
        """
        await self.model.check_continuation()
        [reasoning] = await self.model.sample(
            messages,
            1,
            temperature=temperature,
            max_tokens=self.reasoning_tokens,
            stop=[self.cue.strip()],
        )
        [verdict] = await self.model.sample(
            messages,
            1,
            temperature=0.0,
            max_tokens=1,
            top_logprobs=self.top_logprobs,
            prefix=self.prefix(reasoning.text),
        )
        return VerdictReading(
            reasoning=reasoning.text,
            probabilities=self.distribution(verdict),
            token=verdict.text,
            usage=reasoning.usage + verdict.usage,
        )

    def distribution(self, verdict: Completion) -> dict[str, float]:
        """The labels' shares of the verdict token's probability mass (see ``VerdictReading``).

        Example:
            >>> from ttc_agent import OpenAIChat
            >>> from ttc_agent.types import TokenLogprob
            >>> judge = ReasonedVerdict(OpenAIChat("m", base_url="http://h/v1"), ("0", "1"))
            >>> top = {"1": math.log(0.6), " 0": math.log(0.2), "x": math.log(0.2)}
            >>> token = TokenLogprob(token="1", logprob=math.log(0.6), top=top)
            >>> shares = judge.distribution(Completion(text="1", logprobs=[token]))
            >>> {label: round(share, 3) for label, share in shares.items()}
            {'0': 0.25, '1': 0.75}
        """
        mass = dict.fromkeys(self.labels, 0.0)
        if verdict.logprobs:
            for token, logprob in verdict.logprobs[0].top.items():
                if token.strip() in mass:
                    mass[token.strip()] += math.exp(logprob)
        total = sum(mass.values())
        if total > 1e-9:
            return {label: value / total for label, value in mass.items()}
        written = verdict.text.strip()
        return {label: float(label == written) for label in self.labels} if written in mass else {}
