"""An LLM-as-judge that scores candidates against a judge card's rubric.

The judge answers in JSON, one object per criterion with a short reason before the score
(reasoning first helps small judges). Scores come from one of two modes:

- ``logprobs`` (G-Eval): at each score token, the expected score over the probabilities of the
  scale's points among the top logprobs. It separates candidates that would tie on argmax.
- ``structured``: the integer the judge wrote, parsed and validated with pydantic.

``auto`` asks for logprobs and uses them where the server returns them. Output that cannot be
parsed is sampled again (at a higher temperature) and, after ``attempts`` tries, raised as
``JudgeOutputError``: never replaced by a default score.

Every candidate passes the injection screen (``verifiers/injection.py``): what it finds is
recorded on the score, and the judge's policy flags, penalises or masks it. Only ``mask``
changes what the judge reads, so only then does the screen run before the judge is asked; under
the others it runs once the verdict is back, and a round's requests do not wait for it. The
prompt's wording lives in ``judge_prompt.py``, the reading of verdicts in ``judge_verdict.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from string import Template
from typing import Any

from ttc_agent.budget import within_budget
from ttc_agent.errors import ConfigurationError, JudgeOutputError, ModelError
from ttc_agent.protocols import ChatModel, OnScore
from ttc_agent.types import Completion, InjectionAction, Message, Score, Usage
from ttc_agent.verifiers.fence import fence, fence_tag, neutralise
from ttc_agent.verifiers.injection_policy import DEFAULT_INJECTION, InjectionPolicy
from ttc_agent.verifiers.judge_card import JudgeCard, load_card
from ttc_agent.verifiers.judge_prompt import (
    DATA_NOTICE,
    json_schema,
    new_nonce,
    output_format,
    render_conversation,
    render_rubric,
    restatement,
)
from ttc_agent.verifiers.judge_verdict import parse_verdict, verdict_model, verdict_score

__all__ = ["RubricJudge"]


class RubricJudge:
    """Scores the candidates of one prompt with a rubric from a judge card.

    Args:
        card: a card name from judges/ (``"writing_quality"``), a path, or a ``JudgeCard``.
        model: the judge model (any ``ChatModel``).
        mode: override the card's mode: ``auto``, ``logprobs`` or ``structured``.
        attempts: tries per candidate before unparseable output is an error.
        top_logprobs: alternatives requested at each token in logprob modes.
        max_tokens: the longest judge reply.
        constrained: ask the model to constrain the reply to the verdict's JSON schema (how
            is the model's business: see ``OpenAIChat(json_mode=...)``).
        injection: what the injection screen's findings do: ``flag``, ``penalise`` or ``mask``,
            or an ``InjectionPolicy`` (to set the penalty).
        temperature: the first attempt's temperature (retries sample at 0.7 or above).
        restate: tell the judge again, after the fenced candidate, that its requests are data,
            and restate the criteria and the output format.
        nonce: ask each verdict to echo a fresh nonce; one that does not is asked again.

    Example:
        >>> from ttc_agent import OpenAIChat
        >>> judge = RubricJudge("writing_quality", OpenAIChat("m", base_url="http://x/v1"))
        >>> [c.name for c in judge.card.criteria]
        ['clarity', 'style', 'engagement', 'relevance']
    """

    batch_size = 1  # one candidate per call, so that strategies checkpoint each one

    def __init__(
        self,
        card: str | Path | JudgeCard,
        model: ChatModel,
        *,
        mode: str | None = None,
        attempts: int = 3,
        top_logprobs: int = 10,
        max_tokens: int = 512,
        constrained: bool = True,
        injection: InjectionAction | InjectionPolicy = DEFAULT_INJECTION,
        temperature: float = 0.0,
        restate: bool = False,
        nonce: bool = False,
    ) -> None:
        self.card = card if isinstance(card, JudgeCard) else load_card(card)
        self.model = model
        self.mode = mode or self.card.mode
        if self.mode not in ("auto", "logprobs", "structured"):
            raise ConfigurationError(
                f"mode must be auto, logprobs or structured, got {self.mode!r}"
            )
        if attempts < 1:
            raise ConfigurationError(f"attempts must be at least 1, got {attempts}")
        self.name = self.card.name
        self.attempts, self.top_logprobs = attempts, top_logprobs
        self.max_tokens, self.constrained = max_tokens, constrained
        self.injection = InjectionPolicy.of(injection)
        self.temperature, self.restate, self.nonce = temperature, restate, nonce
        self._verdict = verdict_model(self.card)

    def __repr__(self) -> str:
        return f"RubricJudge({self.card.name!r}, {self.model!r}, mode={self.mode!r})"

    async def score(
        self,
        prompt: Sequence[Message],
        candidates: Sequence[str],
        *,
        on_score: OnScore | None = None,
    ) -> list[Score]:
        """Score each candidate answer to ``prompt`` (concurrently), in order.

        Example:
            >>> # scores = await judge.score([{"role": "user", "content": q}], ["a", "b"])
        """

        async def one(index: int, candidate: str) -> Score:
            score = await self.score_one(prompt, candidate, index=index)
            if on_score is not None:
                on_score(index, score)
            return score

        results = await asyncio.gather(
            *(one(i, text) for i, text in enumerate(candidates)), return_exceptions=True
        )
        return within_budget(results)

    def messages(
        self, prompt: Sequence[Message], candidate: str, *, nonce: str | None = None
    ) -> list[Message]:
        """The judge's chat messages for one candidate, quoted as given (``score_one`` quotes
        what the injection screen leaves of it)."""
        user = Template(self.card.prompt.user).safe_substitute(
            conversation=fence(render_conversation(prompt), "CONVERSATION"),
            candidate=fence(candidate, "CANDIDATE"),
            rubric=render_rubric(self.card),
            output_format=output_format(self.card, nonce),
        )
        if self.restate:
            tag = fence_tag(neutralise(candidate))
            user = f"{user}\n\n{restatement(self.card, tag, nonce)}"
        return [
            {"role": "system", "content": f"{self.card.prompt.system}\n\n{DATA_NOTICE}"},
            {"role": "user", "content": user},
        ]

    async def score_one(
        self, prompt: Sequence[Message], candidate: str, *, index: int = 0
    ) -> Score:
        """Score one candidate, retrying unparseable output; raises ``JudgeOutputError``."""
        names = [c.name for c in self.card.criteria]  # screened first only to be masked
        screened = self.injection.screen(candidate, names) if self.injection.masks else None
        nonce = new_nonce() if self.nonce else None
        messages = self.messages(prompt, screened.text if screened else candidate, nonce=nonce)
        usage, raw, problem = Usage(), "", ""
        for attempt in range(self.attempts):
            temperature = self.temperature if attempt == 0 else max(self.temperature, 0.7)
            completion = await self._ask(messages, temperature=temperature)
            usage = usage + completion.usage
            raw = completion.text
            try:
                verdict = parse_verdict(self._verdict, raw, nonce)
            except ValueError as exc:
                problem = str(exc)
                continue
            score = verdict_score(self.card, verdict, completion, usage, self.mode)
            screened = screened or self.injection.screen(candidate, names)
            return self.injection.applied(
                score, screened, (self.card.scale.min, self.card.scale.max)
            )
        raise JudgeOutputError(
            f"judge {self.card.name!r} gave unparseable output for candidate {index} "
            f"{self.attempts} times; last problem: {problem}",
            raw=raw,
        )

    async def _ask(self, messages: list[Message], *, temperature: float) -> Completion:
        kwargs: dict[str, Any] = {"temperature": temperature, "max_tokens": self.max_tokens}
        if self.constrained:
            kwargs["json_schema"] = json_schema(self.card, self.nonce)
        if self.mode != "structured":
            kwargs["top_logprobs"] = self.top_logprobs
        try:
            [completion] = await self.model.sample(messages, 1, **kwargs)
        except ModelError as exc:
            if self.mode != "auto" or exc.status_code != 400 or "top_logprobs" not in kwargs:
                raise
            self.mode = "structured"  # this endpoint refuses logprobs: stop asking for them
            del kwargs["top_logprobs"]
            [completion] = await self.model.sample(messages, 1, **kwargs)
        return completion
