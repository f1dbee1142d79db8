"""Model access: one async sampler over OpenAI-compatible endpoints, LangChain models and the
embedded local model."""

from typing import TYPE_CHECKING

from ttc_agent._lazy import lazy_exports

if TYPE_CHECKING:
    from ttc_agent.models.langchain_chat import LangChainChat
    from ttc_agent.models.openai_chat import OpenAIChat
    from ttc_agent.models.retry import RetryPolicy
    from ttc_agent.protocols import ChatModel

_EXPORTS = {
    "LangChainChat": "ttc_agent.models.langchain_chat",
    "OpenAIChat": "ttc_agent.models.openai_chat",
    "RetryPolicy": "ttc_agent.models.retry",
    "ChatModel": "ttc_agent.protocols",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = ["ChatModel", "LangChainChat", "OpenAIChat", "RetryPolicy"]
