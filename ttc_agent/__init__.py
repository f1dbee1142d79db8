"""ttc-agent: test-time compute for LangGraph agents.

Sample several candidate answers, score them with a verifier, keep the best:

    >>> from ttc_agent import OpenAIChat, RubricJudge, best_of_n
    >>> model = OpenAIChat()  # OPENAI_BASE_URL / OPENAI_API_KEY / TTC_MODEL, else embedded
    >>> node = best_of_n(model, RubricJudge("helpfulness", model), n=8)
    >>> # graph.add_node("answer", node)  or  result = await node.ainvoke("Hi")
"""

from typing import TYPE_CHECKING, Any

from ttc_agent.budget import Budget, BudgetExhausted, Price
from ttc_agent.errors import (
    AuthenticationFailed,
    ConfigurationError,
    EmbeddedModelError,
    EndpointUnreachable,
    JudgeCardError,
    JudgeOutputError,
    ModelError,
    SamplesFailed,
    SearchError,
    TTCError,
)
from ttc_agent.models import ChatModel, LangChainChat, OpenAIChat, RetryPolicy
from ttc_agent.strategies import (
    Policy,
    Preset,
    ab_mcts,
    adaptive,
    beam_search,
    best_of_n,
    deepconf,
    dvts,
    majority_vote,
    particle_filter,
    refine,
    search_result,
    think_harder,
    valid_effort,
)
from ttc_agent.types import (
    Candidate,
    Completion,
    Score,
    SearchResult,
    SearchUsage,
    StepScores,
    Usage,
)
from ttc_agent.verifiers import (
    VLLMPRM,
    DraftStepVerifier,
    InjectionPolicy,
    JudgeCard,
    LLMStepJudge,
    PairwiseJudge,
    RubricJudge,
    StepsAsOutcome,
    StepVerifier,
    TransformersPRM,
    UniversalSelfConsistency,
    Verifier,
    available_cards,
    load_card,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from ttc_agent.middleware import TestTimeComputeMiddleware


def __getattr__(name: str) -> Any:
    """``TestTimeComputeMiddleware`` is imported when first asked for: it needs LangChain
    (``pip install 'ttc-agent[langchain]'``), which the rest of the package does not."""
    if name == "TestTimeComputeMiddleware":
        from ttc_agent.middleware import TestTimeComputeMiddleware

        return TestTimeComputeMiddleware
    raise AttributeError(f"module 'ttc_agent' has no attribute {name!r}")


__all__ = [
    "VLLMPRM",
    "AuthenticationFailed",
    "Budget",
    "BudgetExhausted",
    "Candidate",
    "ChatModel",
    "Completion",
    "ConfigurationError",
    "DraftStepVerifier",
    "EmbeddedModelError",
    "EndpointUnreachable",
    "InjectionPolicy",
    "JudgeCard",
    "JudgeCardError",
    "JudgeOutputError",
    "LLMStepJudge",
    "LangChainChat",
    "ModelError",
    "OpenAIChat",
    "PairwiseJudge",
    "Policy",
    "Preset",
    "Price",
    "RetryPolicy",
    "RubricJudge",
    "SamplesFailed",
    "Score",
    "SearchError",
    "SearchResult",
    "SearchUsage",
    "StepScores",
    "StepVerifier",
    "StepsAsOutcome",
    "TTCError",
    "TestTimeComputeMiddleware",
    "TransformersPRM",
    "UniversalSelfConsistency",
    "Usage",
    "Verifier",
    "ab_mcts",
    "adaptive",
    "available_cards",
    "beam_search",
    "best_of_n",
    "deepconf",
    "dvts",
    "load_card",
    "majority_vote",
    "particle_filter",
    "refine",
    "search_result",
    "think_harder",
    "valid_effort",
]
