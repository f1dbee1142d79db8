"""Model access: one async sampler over OpenAI-compatible endpoints, LangChain models and the
embedded local model."""

from ttc_agent.models.langchain_chat import LangChainChat
from ttc_agent.models.openai_chat import OpenAIChat
from ttc_agent.models.retry import RetryPolicy
from ttc_agent.protocols import ChatModel

__all__ = ["ChatModel", "LangChainChat", "OpenAIChat", "RetryPolicy"]
