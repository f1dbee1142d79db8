"""Final answers: extracting them from candidate text and deciding which are the same.

An *equivalence* turns candidate texts into group labels: candidates with the same label gave
the same answer; ``None`` means no answer could be found (the candidate abstains).

- ``MathEquivalence``: math-verify parses each candidate once; two answers are the same when
  ``verify`` holds in either direction (1/2, 0.5, \\frac12 and \\dfrac{1}{2} are one answer).
- ``ExactEquivalence``: normalised text of the extracted answer (or the whole text).
- ``KeyEquivalence``: any function from text to a key.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ttc_agent.errors import ConfigurationError
from ttc_agent.protocols import Equivalence

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def boxed_answer(text: str) -> str | None:
    """The contents of the last ``\\boxed{...}`` (braces balanced), if any.

    Example:
        >>> boxed_answer(r"so \\boxed{\\frac{1}{2}}.")
        '\\\\frac{1}{2}'
    """
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 0, start + len("\\boxed{")
    for i in range(begin, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            if depth == 0:
                return text[begin:i].strip()
            depth -= 1
    return None


def last_number(text: str) -> str | None:
    """The last number in the text, without thousands separators (GSM8K style).

    Example:
        >>> last_number("She pays $1,250.50 in total, i.e. 1,250.50")
        '1250.50'
    """
    numbers = _NUMBER.findall(text)
    if not numbers:
        return None
    value = numbers[-1].replace(",", "")
    return value[:-2] if value.endswith(".0") else value


def normalize(text: str) -> str:
    """Lower case, single spaces, no surrounding punctuation.

    Example:
        >>> normalize("  The  Answer: Paris. ")
        'the answer: paris'
    """
    return " ".join(text.lower().split()).strip(" .,!?;:'\"")


class KeyEquivalence:
    """Candidates are equivalent when ``key(text)`` is equal.

    Example:
        >>> KeyEquivalence(last_number).labels(["x = 4", "so 4", "none"])
        ['4', '4', None]
    """

    def __init__(self, key: Callable[[str], Any], name: str | None = None) -> None:
        self.key = key
        self.name: str = name or str(getattr(key, "__name__", "key"))

    def labels(self, texts: Sequence[str]) -> list[str | None]:
        keys = [self.key(text) for text in texts]
        return [None if key is None else str(key) for key in keys]


class ExactEquivalence:
    """Equal after ``normalize``; of the extracted answer when ``extract`` is given.

    Example:
        >>> ExactEquivalence().labels(["Paris.", "paris", "Lyon"])
        ['paris', 'paris', 'lyon']
    """

    name = "exact"

    def __init__(self, extract: Callable[[str], str | None] | None = None) -> None:
        self.extract = extract

    def labels(self, texts: Sequence[str]) -> list[str | None]:
        labels = []
        for text in texts:
            answer = self.extract(text) if self.extract else text
            labels.append(None if answer is None or not normalize(answer) else normalize(answer))
        return labels


class MathEquivalence:
    """Mathematical equivalence with math-verify: parse once, group where verify holds.

    Example:
        >>> MathEquivalence().labels([r"\\boxed{1/2}", "0.5", r"\\boxed{2}", "no idea"])
        ['1/2', '1/2', '2', None]
    """

    name = "math"

    def __init__(self) -> None:
        require_math_verify()

    def labels(self, texts: Sequence[str]) -> list[str | None]:
        parsed = [parse_math(text) for text in texts]
        labels: list[str | None] = [None] * len(texts)
        representatives: list[tuple[str, list[Any]]] = []
        for i, answer in enumerate(parsed):
            if not answer:
                continue
            for label, other in representatives:
                if verify_math(other, answer) or verify_math(answer, other):
                    labels[i] = label
                    break
            else:
                label = labels[i] = str(answer[0])
                representatives.append((label, answer))
        return labels


def _timeout() -> int | None:
    # math-verify's timeouts use signal.alarm, which only works in the main thread
    return 5 if threading.current_thread() is threading.main_thread() else None


def require_math_verify() -> None:
    """Raise a ``ConfigurationError`` saying how to install math-verify, unless it is installed.

    Example:
        >>> require_math_verify()  # installed here: nothing happens
    """
    try:
        import math_verify  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "maths answer checking needs math-verify: pip install 'ttc-agent[math]'"
        ) from None


def parse_math(text: str) -> list[Any]:
    """math-verify's parse of a text (empty when nothing parses)."""
    require_math_verify()
    from math_verify import parse

    return parse(text, parsing_timeout=_timeout())


def verify_math(gold: list[Any], target: list[Any]) -> bool:
    """math-verify's verify, with timeouts only where signals work."""
    require_math_verify()
    from math_verify import verify

    return bool(verify(gold, target, timeout_seconds=_timeout()))


def equivalence(answer: str | Callable[[str], Any] | Equivalence) -> Equivalence:
    """Resolve ``"math"``, ``"exact"``, a key function or an ``Equivalence``.

    Example:
        >>> equivalence("exact").name
        'exact'
    """
    if isinstance(answer, Equivalence):
        return answer
    if answer == "math":
        return MathEquivalence()
    if answer == "exact":
        return ExactEquivalence()
    if callable(answer):
        return KeyEquivalence(answer)
    raise ConfigurationError(
        f"answer must be 'math', 'exact', a function or an Equivalence, got {answer!r}"
    )
