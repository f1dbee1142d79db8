"""The verifier a judge card describes, for whole answers or for steps.

A card scored 0 or 1 asks one yes/no question, which ``LLMStepJudge`` reads from the logprobs of
its one-token verdict (after the judge's reasoning, when the card has a ``[reasoning]`` table);
any other card is a rubric, which ``RubricJudge`` scores.
"""

from __future__ import annotations

from ttc_agent.protocols import ChatModel, StepVerifier, Verifier
from ttc_agent.verifiers.draft_steps import as_step_verifier
from ttc_agent.verifiers.judge_card import JudgeCard, load_card
from ttc_agent.verifiers.rubric_judge import RubricJudge
from ttc_agent.verifiers.step_judge import LLMStepJudge
from ttc_agent.verifiers.step_outcome import StepsAsOutcome


def step_verifier_for(card: str | JudgeCard, model: ChatModel) -> StepVerifier:
    """The step verifier of a card: the step judge for a 0..1 card, else the rubric judge on
    each draft (``DraftStepVerifier``).

    Example:
        >>> from ttc_agent import OpenAIChat
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> type(step_verifier_for("math_step", model)).__name__
        'LLMStepJudge'
    """
    card = load_card(card) if isinstance(card, str) else card
    if card.scale.points == [0, 1]:
        return LLMStepJudge(model, card)
    return as_step_verifier(RubricJudge(card, model))


def verifier_for(card: str | JudgeCard, model: ChatModel) -> Verifier:
    """The verifier of whole answers a card describes: for a 0..1 card, one step judge verdict
    on the whole solution; else the rubric judge.

    Example:
        >>> from ttc_agent import OpenAIChat
        >>> model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        >>> verifier_for("helpfulness", model).name
        'helpfulness'
    """
    card = load_card(card) if isinstance(card, str) else card
    if card.scale.points == [0, 1]:
        return StepsAsOutcome(LLMStepJudge(model, card), delimiter=None)
    return RubricJudge(card, model)


def reasons_first(card: str | JudgeCard) -> bool:
    """Whether the card's verifier reasons before a verdict it continues from the reasoning,
    so that its model must continue a partial reply.

    Example:
        >>> reasons_first("math_resolve"), reasons_first("math_solution")
        (True, False)
    """
    card = load_card(card) if isinstance(card, str) else card
    return card.scale.points == [0, 1] and card.reasoning is not None
