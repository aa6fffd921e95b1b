"""The shape of the package: which module may import what, and names that say what they hold."""

from __future__ import annotations

import ast
from pathlib import Path

import wanwu

SRC = Path(wanwu.__file__).parent


def _wanwu_imports(module: Path) -> set[str]:
    """The wanwu modules ``module`` imports (relative imports resolved one level)."""
    out = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            out.add((node.module or "").split(".")[0] or "<package>")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("wanwu"):
            out.add(node.module.split(".")[1])
    return out


def test_imaging_is_a_leaf():
    assert _wanwu_imports(SRC / "imaging.py") <= {"errors", "formats", "preprocessing"}
    assert _wanwu_imports(SRC / "preprocessing.py") == set()  # the transform as facts: no pixels, a leaf
    assert _wanwu_imports(SRC / "formats.py") <= {"install"}  # which formats are read: a leaf too
    assert _wanwu_imports(SRC / "install.py") == set()  # the distribution's name: a leaf


def test_preprocessing_is_defined_once():
    """One ``Preprocessing``, in the module without Pillow or NumPy (the CLI's parser and the
    model registry read it), the same object wherever it is imported from."""
    from wanwu.imaging import Preprocessing
    from wanwu.models import Preprocessing as registry_one

    assert Preprocessing is registry_one and Preprocessing.__module__ == "wanwu.preprocessing"


def test_the_front_ends_are_on_top():
    """The commands (``wanwu/cli/``) and the HTTP server (``wanwu/server/``) call the library,
    the pipeline and the engines; nothing below them imports them back (the indexer gets its
    backend, progress and sidecar hook passed in), and the server never imports the commands."""
    for module in SRC.rglob("*.py"):
        room = module.relative_to(SRC).parts[0]
        imported = _wanwu_imports(module)
        if room != "cli":
            assert "cli" not in imported, module
        if room not in ("cli", "server"):
            assert "server" not in imported, module


def _module_name(path: Path) -> str:
    parts = ["wanwu", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_graph() -> dict[str, set[str]]:
    """Every module of the package -> the package modules it imports, at any depth of the code
    (an import inside a function or under TYPE_CHECKING still ties two modules together)."""
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            found |= {t for t in targets if t in modules and t != name}
        graph[name] = found
    return graph


def test_no_two_modules_import_each_other_around_any_circle():
    """The modules form layers: an import circle (a imports b imports ... imports a, even
    through a function-level import) is a knot the next change has to untie first."""
    graph = _module_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert circles == []
