"""The package type-checks (mypy, configured in pyproject.toml), ships its types (py.typed), and
every ChatModel, Verifier and StepVerifier implementation is checked against its protocol."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def mypy(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mypy", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_the_package_type_checks_clean():
    done = mypy()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout


def test_a_model_missing_part_of_the_protocol_is_caught(tmp_path):
    """What the protocol checks beside each implementation would have said of a model without
    the ``prefix`` argument (the old LangChainChat)."""
    broken = """
from collections.abc import Sequence
from typing import Any
from ttc_agent.models.protocol import ChatModel
from ttc_agent.types import Completion, Message

class NoPrefix:
    name = "no-prefix"
    async def sample(
        self, messages: Sequence[Message], n: int = 1, *, temperature: float | None = None,
        max_tokens: int | None = None, top_logprobs: int | None = None,
        stop: Sequence[str] | None = None, json_schema: dict[str, Any] | None = None,
        on_completion: Any = None,
    ) -> list[Completion]:
        return []
    async def check_continuation(self) -> None: ...
    async def aclose(self) -> None: ...

_IS_A_CHAT_MODEL: type[ChatModel] = NoPrefix
"""
    module = tmp_path / "no_prefix.py"
    module.write_text(broken)
    done = mypy(str(module))
    assert done.returncode == 1, done.stdout
    assert '"type[NoPrefix]", variable has type "type[ChatModel]"' in done.stdout
    assert "no_prefix.py:19: error" in done.stdout  # the check beside the class, and only it
    assert "Found 1 error" in done.stdout


def test_py_typed_ships_in_the_package():
    assert (ROOT / "ttc_agent" / "py.typed").is_file()
