"""The README's console examples are what wanwu really prints (issue 26 item 2): the blocks
marked ``<!-- checked -->`` are run by ``scripts/readme_examples.py`` in a sandbox (temporary
HOME, no ``WANWU_*``) and compared, times and sizes masked."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "readme_examples.py"


def _script():
    spec = importlib.util.spec_from_file_location("readme_examples", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=900)


def test_masks_hide_what_changes_from_run_to_run_and_nothing_else():
    mask = _script().mask
    assert mask("docs/samples/cat.jpg  (451x300, 12.1 ms)") == mask("docs/samples/cat.jpg  (451x300, 95.0 ms)")
    assert mask("unchanged in 1.1 s (6 classified, 11.4 photos/s)") == mask(
        "unchanged in 0.2 s (6 classified, 9 photos/s)"
    )
    assert mask('"timing_ms": {"decode": 1.8}, "x": 1') == mask('"timing_ms": {"decode": 2.5, "total": 3}, "x": 1')
    assert mask("catalogue   /tmp/demo-lib.db (36.9 KB)") == mask("catalogue   /tmp/demo-lib.db (81.9 KB)")
    assert mask("   41.13%  Egyptian cat") != mask("   41.14%  Egyptian cat")  # scores are not masked
    assert mask("photos      7 (1.9 MB on disk)") != mask("photos      7 (2.4 MB on disk)")  # the photos' bytes


def test_a_drifted_example_fails_the_check_and_write_repairs_it(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "Intro.\n\n<!-- checked -->\n```\n$ wanwu labels --groups 熊猫 --lang zh\npanda  熊猫 / panda  (3)\n```\n"
        "\n```\n$ wanwu labels unchecked\nanything at all\n```\n",
        encoding="utf-8",
    )
    checked = _run("--check", "--readme", str(readme))
    assert checked.returncode == 1, checked.stderr
    assert "-panda  熊猫 / panda  (3)" in checked.stdout and "+panda  熊猫 / panda  (2)" in checked.stdout
    assert _run("--write", "--readme", str(readme)).returncode == 0
    text = readme.read_text(encoding="utf-8")
    assert "大熊猫" in text and "anything at all" in text  # the unmarked block is left alone
    assert _run("--check", "--readme", str(readme)).returncode == 0


@pytest.mark.slow
def test_the_readme_examples_are_what_wanwu_prints():
    pytest.importorskip("skimage", reason="the library example's photos come with scikit-image")
    checked = _run("--check")
    assert checked.returncode == 0, (
        f"the README's checked examples differ from a fresh run (python scripts/readme_examples.py --write "
        f"updates them):\n{checked.stdout}{checked.stderr}"
    )
