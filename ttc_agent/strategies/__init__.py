"""Strategies as LangGraph nodes."""

from ttc_agent.strategies.best_of_n import BestOfN, best_of_n
from ttc_agent.strategies.node import StrategyNode, search_result

__all__ = ["BestOfN", "StrategyNode", "best_of_n", "search_result"]
