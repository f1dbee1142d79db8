"""Names a package exports but imports only when first asked for (PEP 562).

``import ttc_agent`` then costs what the package's own modules cost, not what its dependencies
do (openai, langgraph, langchain-core): each name's module is imported when the name is first
read, and kept.

Example:
    >>> exports = {"dumps": "json"}
    >>> getattr_, dir_ = lazy_exports("example", exports, {})
    >>> getattr_("dumps")({"a": 1})
    '{"a": 1}'
    >>> dir_()
    ['dumps']
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` serving ``exports`` (name: module) for
    ``package``, each name imported on first use and stored in ``namespace`` (the package's
    globals), so it is looked up once."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
