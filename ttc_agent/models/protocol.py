"""The model contract, now in ``ttc_agent.protocols`` (this path re-exports it for one release)."""

from ttc_agent.models.replies import split_tokens
from ttc_agent.protocols import ChatModel, OnCompletion, can_continue

__all__ = ["ChatModel", "OnCompletion", "can_continue", "split_tokens"]
