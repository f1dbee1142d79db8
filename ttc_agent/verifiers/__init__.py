"""Verifiers: judge code (judge cards live in judges/)."""

from ttc_agent.verifiers.judge_card import JudgeCard, available_cards, load_card
from ttc_agent.verifiers.protocol import Verifier
from ttc_agent.verifiers.rubric_judge import RubricJudge

__all__ = ["JudgeCard", "RubricJudge", "Verifier", "available_cards", "load_card"]
