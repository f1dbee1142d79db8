"""ttc-agent: test-time compute for LangGraph agents.

Sample several candidate answers, score them with a verifier, keep the best:

    >>> from ttc_agent import OpenAIChat, RubricJudge, best_of_n
    >>> model = OpenAIChat()  # OPENAI_BASE_URL / OPENAI_API_KEY / TTC_MODEL, else embedded
    >>> node = best_of_n(model, RubricJudge("helpfulness", model), n=8)
    >>> # graph.add_node("answer", node)  or  result = await node.ainvoke("Hi")
"""

from typing import TYPE_CHECKING

from ttc_agent._lazy import lazy_exports

__version__ = "0.1.0"

if TYPE_CHECKING:
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
    from ttc_agent.middleware import TestTimeComputeMiddleware
    from ttc_agent.models import ChatModel, LangChainChat, OpenAIChat, RetryPolicy
    from ttc_agent.strategies import (
        Policy,
        Preset,
        search_result,
        valid_effort,
    )
    from ttc_agent.strategies.ab_mcts import ab_mcts
    from ttc_agent.strategies.adaptive import adaptive
    from ttc_agent.strategies.beam_search import beam_search
    from ttc_agent.strategies.best_of_n import best_of_n
    from ttc_agent.strategies.deepconf import deepconf
    from ttc_agent.strategies.dvts import dvts
    from ttc_agent.strategies.majority_vote import majority_vote
    from ttc_agent.strategies.particle_filter import particle_filter
    from ttc_agent.strategies.refine import refine
    from ttc_agent.strategies.think_harder import think_harder
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

_EXPORTS = {
    "Budget": "ttc_agent.budget",
    "BudgetExhausted": "ttc_agent.budget",
    "Price": "ttc_agent.budget",
    "AuthenticationFailed": "ttc_agent.errors",
    "ConfigurationError": "ttc_agent.errors",
    "EmbeddedModelError": "ttc_agent.errors",
    "EndpointUnreachable": "ttc_agent.errors",
    "JudgeCardError": "ttc_agent.errors",
    "JudgeOutputError": "ttc_agent.errors",
    "ModelError": "ttc_agent.errors",
    "SamplesFailed": "ttc_agent.errors",
    "SearchError": "ttc_agent.errors",
    "TTCError": "ttc_agent.errors",
    "TestTimeComputeMiddleware": "ttc_agent.middleware",
    "ChatModel": "ttc_agent.models",
    "LangChainChat": "ttc_agent.models",
    "OpenAIChat": "ttc_agent.models",
    "RetryPolicy": "ttc_agent.models",
    "Policy": "ttc_agent.strategies",
    "Preset": "ttc_agent.strategies",
    "ab_mcts": "ttc_agent.strategies.ab_mcts",
    "adaptive": "ttc_agent.strategies.adaptive",
    "beam_search": "ttc_agent.strategies.beam_search",
    "best_of_n": "ttc_agent.strategies.best_of_n",
    "deepconf": "ttc_agent.strategies.deepconf",
    "dvts": "ttc_agent.strategies.dvts",
    "majority_vote": "ttc_agent.strategies.majority_vote",
    "particle_filter": "ttc_agent.strategies.particle_filter",
    "refine": "ttc_agent.strategies.refine",
    "search_result": "ttc_agent.strategies",
    "think_harder": "ttc_agent.strategies.think_harder",
    "valid_effort": "ttc_agent.strategies",
    "Candidate": "ttc_agent.types",
    "Completion": "ttc_agent.types",
    "Score": "ttc_agent.types",
    "SearchResult": "ttc_agent.types",
    "SearchUsage": "ttc_agent.types",
    "StepScores": "ttc_agent.types",
    "Usage": "ttc_agent.types",
    "VLLMPRM": "ttc_agent.verifiers",
    "DraftStepVerifier": "ttc_agent.verifiers",
    "InjectionPolicy": "ttc_agent.verifiers",
    "JudgeCard": "ttc_agent.verifiers",
    "LLMStepJudge": "ttc_agent.verifiers",
    "PairwiseJudge": "ttc_agent.verifiers",
    "RubricJudge": "ttc_agent.verifiers",
    "StepsAsOutcome": "ttc_agent.verifiers",
    "StepVerifier": "ttc_agent.verifiers",
    "TransformersPRM": "ttc_agent.verifiers",
    "UniversalSelfConsistency": "ttc_agent.verifiers",
    "Verifier": "ttc_agent.verifiers",
    "available_cards": "ttc_agent.verifiers",
    "load_card": "ttc_agent.verifiers",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
"""Each name is imported when first read, so ``import ttc_agent`` does not pay for openai,
langgraph and langchain-core up front, and ``TestTimeComputeMiddleware`` needs LangChain
(``pip install 'ttc-agent[langchain]'``) only when asked for."""

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
