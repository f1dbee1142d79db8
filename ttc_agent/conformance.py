"""Every model and verifier of the package, checked against its contract in
``ttc_agent.protocols`` by the type checker (``tests/test_types.py`` runs mypy over the
package): a class that misses part of its protocol, such as a ``sample`` without ``prefix``, is
a type error here. Add yours when you add one. (Search functions are checked where the registry
lists them: its rows are typed with ``SearchFunction``.)
"""

from __future__ import annotations

from ttc_agent.agent_model import AgentTurn
from ttc_agent.models import LangChainChat, OpenAIChat
from ttc_agent.protocols import (
    ChatModel,
    PairwiseVerifier,
    StepVerifier,
    StreamingChatModel,
    Verifier,
)
from ttc_agent.serve_tools import ToolCallsShown
from ttc_agent.verifiers import (
    VLLMPRM,
    DraftStepVerifier,
    LLMStepJudge,
    PairwiseJudge,
    RubricJudge,
    StepsAsOutcome,
    TransformersPRM,
    UniversalSelfConsistency,
)

CHAT_MODELS: tuple[type[ChatModel], ...] = (OpenAIChat, LangChainChat, ToolCallsShown, AgentTurn)
STREAMING_CHAT_MODELS: tuple[type[StreamingChatModel], ...] = (OpenAIChat,)
VERIFIERS: tuple[type[Verifier], ...] = (RubricJudge, StepsAsOutcome, UniversalSelfConsistency)
STEP_VERIFIERS: tuple[type[StepVerifier], ...] = (
    LLMStepJudge,
    TransformersPRM,
    VLLMPRM,
    DraftStepVerifier,
)
PAIRWISE_VERIFIERS: tuple[type[PairwiseVerifier], ...] = (PairwiseJudge,)
