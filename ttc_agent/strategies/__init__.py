"""Strategies as LangGraph nodes: each a settings model and a search function, run by one
``StrategyNode`` and listed in ``registry``. The modules with a leading underscore are the
machinery they share."""

from ttc_agent.strategies import registry
from ttc_agent.strategies._node import NodeOptions, StateKeys, StrategyNode, make_settings
from ttc_agent.strategies._policy import VerifierRecord
from ttc_agent.strategies._reply import search_result
from ttc_agent.strategies._selection import select_best, select_majority, select_weighted
from ttc_agent.strategies._steps import StepSearchNode, StepSettings
from ttc_agent.strategies.ab_mcts import ABMCTS, ab_mcts
from ttc_agent.strategies.adaptive import Adaptive, Choice, Policy, adaptive
from ttc_agent.strategies.beam_search import BeamSearch, beam_search
from ttc_agent.strategies.best_of_n import BestOfN, best_of_n
from ttc_agent.strategies.deepconf import DeepConf, deepconf
from ttc_agent.strategies.dvts import DVTS, dvts
from ttc_agent.strategies.majority_vote import MajorityVote, majority_vote
from ttc_agent.strategies.particle_filter import ParticleFilter, particle_filter
from ttc_agent.strategies.refine import Refine, refine
from ttc_agent.strategies.think_harder import (
    Preset,
    ThinkHarder,
    preset_strategies,
    think_harder,
    valid_effort,
)

__all__ = [
    "ABMCTS",
    "DVTS",
    "Adaptive",
    "BeamSearch",
    "BestOfN",
    "Choice",
    "DeepConf",
    "MajorityVote",
    "NodeOptions",
    "ParticleFilter",
    "Policy",
    "Preset",
    "Refine",
    "StateKeys",
    "StepSearchNode",
    "StepSettings",
    "StrategyNode",
    "ThinkHarder",
    "VerifierRecord",
    "ab_mcts",
    "adaptive",
    "beam_search",
    "best_of_n",
    "deepconf",
    "dvts",
    "majority_vote",
    "make_settings",
    "particle_filter",
    "preset_strategies",
    "refine",
    "registry",
    "search_result",
    "select_best",
    "select_majority",
    "select_weighted",
    "think_harder",
    "valid_effort",
]
