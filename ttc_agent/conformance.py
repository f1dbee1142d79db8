"""Every model and verifier of the package, checked against its protocol by the type checker
(``tests/test_types.py`` runs mypy over the package): a class that misses part of its protocol,
such as a ``sample`` without ``prefix``, is a type error here. Add yours when you add one.
"""

from __future__ import annotations

from ttc_agent.models import ChatModel, LangChainChat, OpenAIChat
from ttc_agent.serve_tools import ToolCallsShown
from ttc_agent.verifiers import (
    VLLMPRM,
    DraftStepVerifier,
    LLMStepJudge,
    RubricJudge,
    StepsAsOutcome,
    StepVerifier,
    TransformersPRM,
    Verifier,
)

CHAT_MODELS: tuple[type[ChatModel], ...] = (OpenAIChat, LangChainChat, ToolCallsShown)
VERIFIERS: tuple[type[Verifier], ...] = (RubricJudge, StepsAsOutcome)
STEP_VERIFIERS: tuple[type[StepVerifier], ...] = (
    LLMStepJudge,
    TransformersPRM,
    VLLMPRM,
    DraftStepVerifier,
)
