"""``import ttc_agent`` loads none of its heavy dependencies; each exported name is imported
when first read, and every name in ``__all__`` (of the package and its subpackages) resolves."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import ttc_agent

HEAVY = ("openai", "langgraph", "langchain_core", "httpx")


def loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in out.stdout.split()}


def test_importing_the_package_loads_no_heavy_dependency():
    assert not loaded_after("import ttc_agent") & set(HEAVY)


def test_a_name_loads_what_it_needs_and_no_more():
    loaded = loaded_after("from ttc_agent import OpenAIChat")
    assert "openai" in loaded
    assert not loaded & {"langgraph", "langchain_core"}  # a model needs no graph


@pytest.mark.parametrize("package", ["ttc_agent", "ttc_agent.models", "ttc_agent.verifiers"])
def test_every_exported_name_resolves_and_is_listed(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert set(module.__all__) <= set(dir(module))


def test_an_unknown_name_is_an_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="'ttc_agent' has no attribute 'best_of_m'"):
        ttc_agent.best_of_m  # noqa: B018
