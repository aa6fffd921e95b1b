"""The shape of the package: which module may import what, and names that say what they hold."""

from __future__ import annotations

import ast
import subprocess
import sys
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
    assert _wanwu_imports(SRC / "imaging.py") <= {"errors", "formats"}
    assert _wanwu_imports(SRC / "formats.py") == set()  # which formats are read: a leaf too


def test_preprocessing_lives_with_the_pixels():
    from wanwu.imaging import Preprocessing
    from wanwu.models import Preprocessing as reexported

    assert Preprocessing is reexported and Preprocessing.__module__ == "wanwu.imaging"


def test_server_module_names_do_not_shadow_the_models_package():
    assert not (SRC / "server" / "models.py").exists()
    from wanwu.server.model_pool import ModelPool  # noqa: F401


def test_dead_code_is_gone():
    from wanwu.batching import MicroBatcher
    from wanwu.models.spec import WeightSource

    assert not hasattr(WeightSource, "pip_name")
    assert not hasattr(MicroBatcher, "infer_async")
    assert "not built yet" not in (SRC / "cli.py").read_text()


def test_listing_settings_engines_and_commands_imports_no_engine():
    """``wanwu --help``, the settings and the engine table import neither torch nor onnxruntime."""
    code = (
        "import sys\n"
        "import wanwu.settings, wanwu.engines, wanwu.cli\n"
        "wanwu.cli.build_parser().format_help()\n"
        "print(sorted(m for m in ('torch', 'onnxruntime', 'openvino') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
