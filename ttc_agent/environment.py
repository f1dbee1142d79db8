"""The ``TTC_*`` environment variables, each read and checked in one place.

| variable | read by | value |
|---|---|---|
| ``TTC_MODEL`` | ``OpenAIChat`` | the model name (else the server's only model) |
| ``TTC_N`` | the graphs in ``graphs/`` | candidates per question, a whole number of at least 1 |
| ``TTC_EFFORT`` | ``graphs/think_harder_chat.py`` | the default effort: none, low, medium or high |
| ``TTC_WRITING`` | ``graphs/writing_assistant.py`` | ``best_of_n`` or ``refine`` |
| ``TTC_CACHE_DIR`` | the embedded model | where its assembled GGUF files and logs are kept |

(``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` are the ``openai`` client's own.) A value that is
set but wrong is a ``ConfigurationError`` naming the variable, never a silent default.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from ttc_agent.errors import ConfigurationError

Choice = TypeVar("Choice", bound=str)


def count_from_env(name: str, default: int) -> int:
    """A whole number of at least 1 from the environment (``default`` when unset or empty).

    Example:
        >>> count_from_env("TTC_EXAMPLE_UNSET", 8)
        8
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigurationError(f"{name} must be a whole number of at least 1, got {raw!r}")
    return int(raw)


def choice_from_env(name: str, default: Choice, choices: Sequence[Choice]) -> Choice:
    """One of ``choices`` from the environment (``default`` when unset or empty).

    Example:
        >>> choice_from_env("TTC_EXAMPLE_UNSET", "low", ["none", "low"])
        'low'
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    for choice in choices:
        if choice == raw:
            return choice
    raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")


def cache_dir() -> Path:
    """Where the embedded models' assembled files and server logs are kept: ``TTC_CACHE_DIR``,
    else ``~/.cache/ttc-agent``.

    Example:
        >>> isinstance(cache_dir(), Path)
        True
    """
    raw = os.environ.get("TTC_CACHE_DIR", "").strip()
    if not raw:
        return Path.home() / ".cache" / "ttc-agent"
    path = Path(raw).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigurationError(f"TTC_CACHE_DIR must be a folder, but {raw!r} is a file")
    return path
