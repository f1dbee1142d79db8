"""A step verifier made of any chat model: it judges each step with a step judge card.

The judge answers with one digit per step (``1`` correct, ``0`` not, on the card's 0..1 scale).
Where the endpoint returns top logprobs, the step's score is the probability mass on ``1``
(G-Eval's expected score on a 0..1 scale); elsewhere the digit itself. With ``reasoning=True``
the judge writes its check of the step first, and the digit's probability is read after it
(``ttc_agent.verifiers.verdict``). Step judgements are
cached by (prompt, steps so far), so a beam search pays once for each step it keeps, and a step
being judged for one caller is awaited, not asked again, by another. The steps pass the injection
screen first (``verifiers/injection.py``): ``mask`` masks what it finds before the judge reads it,
``penalise`` lowers the score of each step from the one where it is found, and every policy
records it on ``StepScores.injection``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from string import Template

from ttc_agent.errors import ConfigurationError, JudgeOutputError
from ttc_agent.protocols import ChatModel
from ttc_agent.types import Aggregate, InjectionAction, Message, StepScores, Usage
from ttc_agent.verifiers.fence import fence
from ttc_agent.verifiers.injection_policy import DEFAULT_INJECTION, InjectionPolicy, Screened
from ttc_agent.verifiers.judge_card import JudgeCard, load_card
from ttc_agent.verifiers.judge_prompt import DATA_NOTICE, render_conversation, render_rubric
from ttc_agent.verifiers.step_judgements import StepJudgements
from ttc_agent.verifiers.verdict import ReasonedVerdict


class LLMStepJudge:
    """Scores steps with a chat model and a step judge card (default ``math_step``).

    The judge is asked whether the *latest* step is correct, so a solution is only as good as
    its worst step: step searches aggregate its scores by ``min`` unless told otherwise
    (``preferred_aggregate``). For one verdict on a complete solution, use the
    ``math_solution`` card with ``StepsAsOutcome(judge, delimiter=None)``.

    Args:
        model: the judge; where it returns logprobs (``OpenAIChat`` asks for them unless
            told not to) the scores are graded rather than 0 or 1.
        card: a card with a 0..1 scale and one criterion.
        top_logprobs: alternatives requested at the digit.
        attempts: tries before an unparseable verdict is an error.
        cache_size: step judgements remembered.
        reasoning: have the judge check the step in words before its digit (two calls per
            step: the check, then the digit continued from it); the model must continue a
            partial reply. Its name gains ``:reasoning``. By default, when the card has a
            ``[reasoning]`` table (``math_resolve``: solve the problem, compare answers),
            whose instruction then replaces the default check.
        reasoning_tokens: the longest check (default: the card's, else 256).
        injection: what the injection screen's findings do: ``flag``, ``penalise`` (by the
            policy's penalty, on the 0..1 scale) or ``mask`` (or an ``InjectionPolicy``).

    Example:
        >>> from ttc_agent import OpenAIChat
        >>> judge = LLMStepJudge(OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k"))
        >>> judge.card.scale.points, judge.preferred_aggregate
        ([0, 1], 'min')
    """

    preferred_aggregate: Aggregate = "min"  # an earlier wrong step sinks the solution
    batch_size = 1  # one solution per call, so that strategies checkpoint each one

    def __init__(
        self,
        model: ChatModel,
        card: str | Path | JudgeCard = "math_step",
        *,
        top_logprobs: int = 10,
        attempts: int = 3,
        cache_size: int = 4096,
        injection: InjectionAction | InjectionPolicy = DEFAULT_INJECTION,
        reasoning: bool | None = None,
        reasoning_tokens: int | None = None,
    ) -> None:
        self.card = card if isinstance(card, JudgeCard) else load_card(card)
        if self.card.scale.points != [0, 1] or len(self.card.criteria) != 1:
            raise ConfigurationError(
                f"step judge card {self.card.name!r} needs a 0..1 scale and one criterion"
            )
        if attempts < 1:
            raise ConfigurationError(f"attempts must be at least 1, got {attempts}")
        if reasoning is None:
            reasoning = self.card.reasoning is not None
        if reasoning_tokens is None:
            reasoning_tokens = self.card.reasoning.max_tokens if self.card.reasoning else 256
        self.model, self.name = model, self.card.name + (":reasoning" if reasoning else "")
        self.top_logprobs, self.attempts, self.cache_size = top_logprobs, attempts, cache_size
        self.injection = InjectionPolicy.of(injection)
        self.verdict = (
            ReasonedVerdict(
                model, ("0", "1"), reasoning_tokens=reasoning_tokens, top_logprobs=top_logprobs
            )
            if reasoning
            else None
        )
        self._judgements = StepJudgements(cache_size)

    def __repr__(self) -> str:
        return f"LLMStepJudge({self.card.name!r}, {self.model!r})"

    async def score_steps(
        self, prompt: Sequence[Message], solutions: Sequence[Sequence[str]]
    ) -> list[StepScores]:
        """Score every step of every solution (cached steps cost nothing).

        Example:
            >>> # [s] = await judge.score_steps(prompt, [["2 + 2 = 4", "So 4."]]); s.steps
        """
        conversation = render_conversation(prompt)
        judge = partial(self._judge, conversation)
        judged = await self._judgements.scores(conversation, solutions, judge)
        return [
            StepScores(steps=scores, usage=usage, injection=self._screened(steps).screening)
            for steps, (scores, usage) in zip(solutions, judged, strict=True)
        ]

    def remember(
        self,
        prompt: Sequence[Message],
        solutions: Sequence[Sequence[str]],
        scores: Sequence[StepScores],
    ) -> None:
        """Take verdicts given before as known (a resumed search hands back what it replays).

        Example:
            >>> # judge.remember(prompt, [["2 + 2 = 4"]], [StepScores(steps=[0.9])])
        """
        conversation = render_conversation(prompt)
        for steps, verdict in zip(solutions, scores, strict=True):
            for k, value in enumerate(verdict.steps[: len(steps)]):
                self._judgements.remember(StepJudgements.key(conversation, steps[: k + 1]), value)

    def messages(self, conversation: str, steps: Sequence[str]) -> list[Message]:
        """The judge's messages for the last of ``steps``."""
        criterion = self.card.criteria[0]
        digits = (
            f"1 if {criterion.anchors[1][0].lower()}{criterion.anchors[1][1:]} "
            f"0 if {criterion.anchors[0][0].lower()}{criterion.anchors[0][1:]}"
        )
        check = "First check the latest step in a few sentences."
        if self.card.reasoning is not None:
            check = self.card.reasoning.instruction
        output = (
            f"{check} Then end with a line '{self.verdict.cue.strip()} ' and one digit: {digits}"
            if self.verdict is not None
            else f"Reply with one digit and nothing else: {digits}"
        )
        user = Template(self.card.prompt.user).safe_substitute(
            conversation=fence(conversation, "CONVERSATION"),
            candidate=fence(self._screened(steps).text, "CANDIDATE"),
            rubric=render_rubric(self.card),
            output_format=output,
        )
        return [
            {"role": "system", "content": f"{self.card.prompt.system}\n\n{DATA_NOTICE}"},
            {"role": "user", "content": user},
        ]

    async def _judge(self, conversation: str, steps: Sequence[str]) -> tuple[float, Usage]:
        messages = self.messages(conversation, steps)
        usage, raw = Usage(), ""
        for attempt in range(self.attempts):
            temperature = 0.0 if attempt == 0 else 0.7
            ask = self._reasoned if self.verdict is not None else self._digit
            score, spent, raw = await ask(messages, temperature)
            usage = usage + spent
            if score is not None:
                return self._penalised(steps, score), usage
        raise JudgeOutputError(
            f"step judge {self.name!r} did not answer 0 or 1 in {self.attempts} attempts",
            raw=raw,
        )

    def _screened(self, steps: Sequence[str]) -> Screened:
        return self.injection.screen("\n\n".join(steps), [self.card.criteria[0].name])

    def _penalised(self, steps: Sequence[str], score: float) -> float:
        flagged = self.injection.action == "penalise" and self._screened(steps).screening
        return self.injection.penalised(score) if flagged else score

    async def _digit(
        self, messages: list[Message], temperature: float
    ) -> tuple[float | None, Usage, str]:
        """The digit alone: P(1) from its logprobs, else the digit written (None: neither)."""
        [completion] = await self.model.sample(
            messages, 1, temperature=temperature, max_tokens=2, top_logprobs=self.top_logprobs
        )
        if completion.logprobs:
            probability = _probability_of_one(completion.logprobs[0].top)
            if probability is not None:
                return probability, completion.usage, completion.text
        digit = completion.text.strip()[:1]
        score = float(digit) if digit in ("0", "1") else None
        return score, completion.usage, completion.text

    async def _reasoned(
        self, messages: list[Message], temperature: float
    ) -> tuple[float | None, Usage, str]:
        """The check, then P(1) of the digit read after it (None: no digit)."""
        assert self.verdict is not None
        reading = await self.verdict.read(messages, temperature=temperature)
        score = reading.probabilities["1"] if reading.decided else None
        return score, reading.usage, reading.reasoning + self.verdict.cue + reading.token


def _probability_of_one(top: Mapping[str, float]) -> float | None:
    mass = {"0": 0.0, "1": 0.0}
    for token, logprob in top.items():
        if token.strip() in mass:
            mass[token.strip()] += math.exp(logprob)
    total = mass["0"] + mass["1"]
    return None if total < 1e-6 else mass["1"] / total
