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
