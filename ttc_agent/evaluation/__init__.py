"""Evaluation: accuracy-against-budget sweeps on maths from one run at the largest n.

Example:
    >>> from ttc_agent.evaluation import budgets
    >>> budgets(8)
    [1, 2, 4, 8]
"""

from ttc_agent.evaluation.datasets import MATH_INSTRUCTION, Problem, load_problems
from ttc_agent.evaluation.diagnostics import VerifierDiagnostics, auroc, diagnose
from ttc_agent.evaluation.grading import gold_answer, is_correct
from ttc_agent.evaluation.metrics import METHODS, Point, Sample, budgets, sweep
from ttc_agent.evaluation.plots import plot_scores, plot_sweep
from ttc_agent.evaluation.run import evaluate
from ttc_agent.evaluation.summary import Summary

__all__ = [
    "MATH_INSTRUCTION",
    "METHODS",
    "Point",
    "Problem",
    "Sample",
    "Summary",
    "VerifierDiagnostics",
    "auroc",
    "budgets",
    "diagnose",
    "evaluate",
    "gold_answer",
    "is_correct",
    "load_problems",
    "plot_scores",
    "plot_sweep",
    "sweep",
]
