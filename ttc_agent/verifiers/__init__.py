"""Verifiers: judge code (judge cards live in judges/) and process reward models.

``TransformersPRM`` and ``VLLMPRM`` import torch and transformers only when constructed, so this
package imports without them.
"""

from ttc_agent.protocols import StepVerifier, Verifier
from ttc_agent.verifiers.draft_steps import DraftStepVerifier
from ttc_agent.verifiers.injection_policy import InjectionPolicy
from ttc_agent.verifiers.judge_card import JudgeCard, available_cards, load_card
from ttc_agent.verifiers.pairwise_judge import Comparison, PairwiseJudge, Verdict
from ttc_agent.verifiers.rubric_judge import RubricJudge
from ttc_agent.verifiers.step_judge import LLMStepJudge
from ttc_agent.verifiers.step_outcome import StepsAsOutcome
from ttc_agent.verifiers.transformers_prm import TransformersPRM
from ttc_agent.verifiers.usc import UniversalSelfConsistency
from ttc_agent.verifiers.verdict import ReasonedVerdict, VerdictReading
from ttc_agent.verifiers.vllm_prm import VLLMPRM

__all__ = [
    "VLLMPRM",
    "Comparison",
    "DraftStepVerifier",
    "InjectionPolicy",
    "JudgeCard",
    "LLMStepJudge",
    "PairwiseJudge",
    "ReasonedVerdict",
    "RubricJudge",
    "StepVerifier",
    "StepsAsOutcome",
    "TransformersPRM",
    "UniversalSelfConsistency",
    "Verdict",
    "VerdictReading",
    "Verifier",
    "available_cards",
    "load_card",
]
