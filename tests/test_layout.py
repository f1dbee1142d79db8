"""The package's layout checks itself: sizes, the direction of imports, formatting markers, the
public names, the names the README imports and the tests the docs cite.

Sizes, in ``ttc_agent/``: a file has at most 300 lines, a class at most 150, a function at most
60 (lines from its ``def`` or ``class`` to its last line, decorators aside). The outliers are
listed below with the size they had when listed: a listed outlier may shrink but not grow, and
one back within the limit must leave its list, so the lists only shrink. At most four files and
two classes may be listed.

Import floors, lowest first: types and errors, budget, models, verifiers, strategies, then
evaluation, serve and the CLI. A module imports from its own floor or below, never above. Every
import counts, wherever it is written: at module level, under ``TYPE_CHECKING`` and inside a
function (a lazy import is still a dependency, only a later one); an upward one would have to
be listed in ``UPWARD_IMPORTS`` (none is).
"""

from __future__ import annotations

import ast
import importlib
import re
import textwrap
from pathlib import Path

import pytest

import ttc_agent

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ttc_agent"

MAX_FILE, MAX_CLASS, MAX_FUNCTION = 300, 150, 60

LONG_FILES = {
    "ttc_agent/types.py": 340,  # issue 21's injection findings joined the core types
    "ttc_agent/models/endpoint.py": 305,
    "ttc_agent/budget.py": 303,
    "ttc_agent/strategies/_steps.py": 301,
}
LONG_CLASSES = {
    "ttc_agent/models/endpoint.py:Endpoint": 204,
    "ttc_agent/verifiers/step_judge.py:LLMStepJudge": 175,
}
LONG_FUNCTIONS = {
    "ttc_agent/evaluation/writing.py:writing_experiment": 98,
    "ttc_agent/evaluation/run.py:evaluate": 94,
    "ttc_agent/evaluation/agreement.py:judge_agreement": 89,
    "ttc_agent/run_command.py:add_run_arguments": 80,
    "ttc_agent/serve.py:create_app": 78,
    "ttc_agent/evaluation/command.py:run": 66,
    "ttc_agent/evaluation/command.py:add_arguments": 64,
    "ttc_agent/evaluation/rescore.py:rescore": 62,
}

FLOORS = {
    "_lazy": 0,  # lazy exports (PEP 562), for the packages' __init__ modules
    "types": 0,
    "errors": 0,
    "protocols": 0,
    "environment": 0,
    "files": 0,
    "answers": 0,
    "confidence": 0,
    "sse": 0,
    "budget": 1,
    "bills": 1,
    "token_bound": 1,
    "models": 2,
    "verifiers": 3,
    "serve_tools": 3,  # choosing among tool calls: a verifier's work, shared by serve and agents
    "strategies": 4,
    "agent_model": 4,  # an agent's model call as a ChatModel, for strategies to sample
    "conformance": 4,
    "evaluation": 5,
    "serve": 5,
    "serve_fields": 5,
    "serve_reply": 5,
    "cli": 5,
    "run_command": 5,
    "display": 5,
    "middleware": 5,
    "testing": 5,  # for tests: nothing in the library imports it
    "__init__": 5,
}
"""The floor of each top-level module or package of ``ttc_agent`` (a new one must be placed)."""

UPWARD_IMPORTS: set[tuple[str, str]] = set()
"""(importer, imported) pairs of modules allowed to import upward: none."""


def python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def definitions(tree: ast.AST, prefix: str = "") -> list[tuple[str, ast.AST]]:
    """Every class and function, nested ones too, by dotted name (``Class.method``)."""
    found = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            name = prefix + node.name
            found.append((name, node))
            found += definitions(node, name + ".")
        else:
            found += definitions(node, prefix)
    return found


def measured() -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """The files, classes and functions of ``ttc_agent/`` over their limits, with their sizes."""
    files, classes, functions = {}, {}, {}
    for path in python_files(PACKAGE):
        text = path.read_text()
        if (lines := len(text.splitlines())) > MAX_FILE:
            files[relative(path)] = lines
        for name, node in definitions(ast.parse(text)):
            size = node.end_lineno - node.lineno + 1
            key = f"{relative(path)}:{name}"
            if isinstance(node, ast.ClassDef) and size > MAX_CLASS:
                classes[key] = size
            elif not isinstance(node, ast.ClassDef) and size > MAX_FUNCTION:
                functions[key] = size
    return files, classes, functions


@pytest.mark.parametrize(
    ("kind", "index", "allowed", "limit", "most"),
    [
        ("file", 0, LONG_FILES, MAX_FILE, 4),
        ("class", 1, LONG_CLASSES, MAX_CLASS, 2),
        ("function", 2, LONG_FUNCTIONS, MAX_FUNCTION, None),
    ],
)
def test_sizes_stay_within_their_limits_or_shrink(kind, index, allowed, limit, most):
    found = measured()[index]
    grown = {name: size for name, size in found.items() if size > allowed.get(name, limit)}
    assert not grown, f"over {limit} lines (or their listed size): {grown}; split by concept"
    back = sorted(set(allowed) - set(found))
    assert not back, f"{back} are within {limit} lines now: take them off the list"
    assert most is None or len(allowed) <= most


def floor_of(module: str) -> tuple[str, int]:
    """The top-level unit of a ``ttc_agent`` module and its floor."""
    parts = module.split(".")
    unit = parts[1] if len(parts) > 1 else "__init__"
    assert unit in FLOORS, f"{unit} has no floor: place it in FLOORS"
    return unit, FLOORS[unit]


def imports(path: Path) -> list[tuple[str, int]]:
    """The ``ttc_agent`` modules a file imports, wherever the import is, with their lines."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "ttc_agent":  # from ttc_agent import bills: the submodule
                found += [(_submodule(alias.name), node.lineno) for alias in node.names]
            else:
                found.append((node.module, node.lineno))
    return [(name, line) for name, line in found if name.split(".")[0] == "ttc_agent"]


def _submodule(name: str) -> str:
    """``ttc_agent.name`` for a submodule of the package, else the package itself."""
    is_module = (PACKAGE / f"{name}.py").exists() or (PACKAGE / name).is_dir()
    return f"ttc_agent.{name}" if is_module else "ttc_agent"


def module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_imports_go_down_the_floors_never_up():
    upward = []
    for path in python_files(PACKAGE):
        unit, floor = floor_of(module_of(path))
        for name, line in imports(path):
            target, target_floor = floor_of(name)
            if target_floor > floor and (unit, target) not in UPWARD_IMPORTS:
                where = f"{relative(path)}:{line} ({unit}, floor {floor})"
                upward.append(f"{where} imports {name} ({target}, floor {target_floor})")
    assert not upward, "\n".join(upward)


def test_the_floor_check_sees_a_lazy_upward_import(tmp_path):
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from ttc_agent.strategies import best_of_n\n")
    assert imports(module) == [("ttc_agent.strategies", 2)]
    assert floor_of("ttc_agent.strategies")[1] > floor_of("ttc_agent.models.retry")[1]


def test_no_formatter_is_told_to_skip_a_line():
    marker = "# fmt: " + "skip"  # built from parts, so that this file does not match itself
    found = [
        f"{relative(path)}:{number}"
        for folder in (PACKAGE, ROOT / "tests")
        for path in python_files(folder)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if marker in line
    ]
    assert not found, f"ruff format decides the layout; remove {marker} at {found}"


def test_all_lists_exactly_the_public_names():
    """``__all__``, the names the package serves (lazily, ``_EXPORTS``) and the names a type
    checker sees (the imports under ``TYPE_CHECKING``) are one list, and each resolves."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    typed = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ttc_agent.")
        for alias in node.names
    } - {"lazy_exports"}
    served = set(ttc_agent._EXPORTS)
    assert sorted(ttc_agent.__all__) == sorted(served) == sorted(typed)
    assert len(set(ttc_agent.__all__)) == len(ttc_agent.__all__)
    for name in ttc_agent.__all__:
        assert getattr(ttc_agent, name) is not None


def readme_blocks() -> list[str]:
    """The README's Python code blocks."""
    blocks, block, language = [], [], None
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.lstrip().startswith("```"):
            if language is None:
                language = line.strip().removeprefix("```") or "text"
                continue
            if language in ("python", "py"):
                blocks.append("\n".join(block))
            block, language = [], None
        elif language is not None:
            block.append(line)
    return blocks


def readme_imports() -> list[tuple[str, str]]:
    """Every ``from ttc_agent... import X`` in the README's Python code blocks."""
    found = []
    for block in readme_blocks():
        flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        tree = compile(textwrap.dedent(block), "README.md", "exec", flags=flags)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ttc_agent"):
                found += [(node.module, alias.name) for alias in node.names]
    return found


def test_every_name_the_readme_imports_resolves():
    found = readme_imports()
    assert ("ttc_agent", "best_of_n") in found  # the drop-in snippet is read
    missing = []
    for module, name in found:
        imported = importlib.import_module(module)
        if not hasattr(imported, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ModuleNotFoundError:
                missing.append(f"{module}.{name}")
    assert not missing, f"the README imports names that do not exist: {missing}"


CITED_TEST = re.compile(r"(tests/[\w/]+\.py)?::(\w+)|(tests/[\w/]+\.py)")


def cited_tests() -> list[tuple[str, str | None, str]]:
    """Every test file the docs and the README cite, with the test named after ``::`` (a bare
    ``::name`` names one in the file cited last on its line), and where it is cited."""
    cited = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            last = None
            for match in CITED_TEST.finditer(line):
                path = match.group(1) or match.group(3) or last
                if path is not None:
                    cited.append((path, match.group(2), f"{doc.name}:{number}"))
                last = path
    return cited


def test_the_tests_the_docs_cite_exist():
    cited = cited_tests()
    assert any(path.startswith("tests/guarantees/") for path, _, _ in cited)  # reliability.md
    missing = []
    for path, name, where in cited:
        file = ROOT / path
        if not file.is_file():
            missing.append(f"{where}: {path}")
        elif name is not None and not re.search(rf"def {name}\b", file.read_text()):
            missing.append(f"{where}: {path}::{name}")
    assert not missing, missing
