"""Evaluation: accuracy-against-budget sweeps on maths from one run at the largest n.

Example:
    >>> from ttc_agent.evaluation import budgets
    >>> budgets(8)
    [1, 2, 4, 8]
"""

from ttc_agent.evaluation.datasets import MATH_INSTRUCTION, Problem, load_problems
from ttc_agent.evaluation.grading import gold_answer, is_correct
from ttc_agent.evaluation.metrics import METHODS, Point, Sample, budgets, sweep
from ttc_agent.evaluation.plots import plot_sweep
from ttc_agent.evaluation.run import Summary, evaluate

__all__ = [
    "MATH_INSTRUCTION",
    "METHODS",
    "Point",
    "Problem",
    "Sample",
    "Summary",
    "budgets",
    "evaluate",
    "gold_answer",
    "is_correct",
    "load_problems",
    "plot_sweep",
    "sweep",
]
