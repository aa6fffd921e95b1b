"""The benchmarks and scripts use wanwu's internals, and no test runs them: every
``from wanwu... import name`` in them (at any depth: most import inside functions) must name
something that exists, so a refactor that moves a name breaks here, not on the next quiet
machine someone finds to measure on."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "benchmarks").glob("*.py")) + sorted((ROOT / "scripts").glob("*.py"))
OPTIONAL = ("ray", "torch", "dlib", "openvino", "pyarrow")  # a name behind an extra may be absent here


def _wanwu_imports(path: Path) -> list[tuple[str, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "wanwu":
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names if alias.name.split(".")[0] == "wanwu"]
    return found


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_wanwu_name_a_benchmark_or_script_imports_exists(path):
    missing = []
    for module_name, name in _wanwu_imports(path):
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if exc.name and exc.name.split(".")[0] in OPTIONAL:
                continue
            missing.append(f"{module_name}: {exc}")
            continue
        if name and not hasattr(module, name):
            try:
                importlib.import_module(f"{module_name}.{name}")  # a submodule
            except ImportError:
                missing.append(f"{module_name}.{name}")
    assert missing == []
