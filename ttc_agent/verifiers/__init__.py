"""Verifiers: judge code (judge cards live in judges/) and process reward models.

``TransformersPRM`` and ``VLLMPRM`` import torch and transformers only when constructed, so this
package imports without them.
"""

from typing import TYPE_CHECKING

from ttc_agent._lazy import lazy_exports

if TYPE_CHECKING:
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

_EXPORTS = {
    "StepVerifier": "ttc_agent.protocols",
    "Verifier": "ttc_agent.protocols",
    "DraftStepVerifier": "ttc_agent.verifiers.draft_steps",
    "InjectionPolicy": "ttc_agent.verifiers.injection_policy",
    "JudgeCard": "ttc_agent.verifiers.judge_card",
    "available_cards": "ttc_agent.verifiers.judge_card",
    "load_card": "ttc_agent.verifiers.judge_card",
    "Comparison": "ttc_agent.verifiers.pairwise_judge",
    "PairwiseJudge": "ttc_agent.verifiers.pairwise_judge",
    "Verdict": "ttc_agent.verifiers.pairwise_judge",
    "RubricJudge": "ttc_agent.verifiers.rubric_judge",
    "LLMStepJudge": "ttc_agent.verifiers.step_judge",
    "StepsAsOutcome": "ttc_agent.verifiers.step_outcome",
    "TransformersPRM": "ttc_agent.verifiers.transformers_prm",
    "UniversalSelfConsistency": "ttc_agent.verifiers.usc",
    "ReasonedVerdict": "ttc_agent.verifiers.verdict",
    "VerdictReading": "ttc_agent.verifiers.verdict",
    "VLLMPRM": "ttc_agent.verifiers.vllm_prm",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

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
