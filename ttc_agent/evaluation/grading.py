"""Grading candidate answers against gold answers with math-verify."""

from __future__ import annotations

from ttc_agent.answers import parse_math, verify_math


def gold_answer(gold: str) -> list:
    r"""The gold answer parsed by math-verify, wrapped in ``\boxed{}`` first (bare MATH-500
    answers such as ``\frac{14}{3}`` or ``(3, \frac{\pi}{2})`` do not all parse alone).

    Example:
        >>> bool(gold_answer("(3, \\frac{\\pi}{2})"))
        True
    """
    return parse_math(f"\\boxed{{{gold}}}")


def is_correct(text: str, gold: str | list) -> bool:
    """Whether a candidate's final answer equals the gold one (a string or a ``gold_answer``).

    Example:
        >>> is_correct("So the answer is \\\\boxed{\\\\frac{1}{2}}.", "0.5")
        True
    """
    parsed_gold = gold_answer(gold) if isinstance(gold, str) else gold
    answer = parse_math(text)
    return bool(answer) and verify_math(parsed_gold, answer)
