"""``make demo PHOTOS=...``: the folder reaches ``wanwu classify`` whole (issue 26 item 3: a path
with a space was split in two), and a quoted ``~`` means the home folder. Runs the real target
with a stand-in venv whose ``wanwu`` prints its arguments, so no install happens."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def _demo(tmp_path: Path, *make_args: str) -> list[str]:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "wanwu"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    fake.chmod(0o755)
    (venv / ".runtime").touch()  # newer than pyproject.toml: the runtime counts as installed
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    out = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "demo", f"VENV={venv}", *make_args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_a_folder_with_a_space_and_chinese_is_one_argument(tmp_path):
    folder = tmp_path / "2024" / "旅行 北京"
    assert _demo(tmp_path, f"PHOTOS={folder}") == ["classify", str(folder), "--top-k", "3"]


def test_a_quoted_tilde_is_the_home_folder(tmp_path):
    assert _demo(tmp_path, "PHOTOS=~/Pictures/2024/旅行 北京")[1] == str(tmp_path / "home" / "Pictures/2024/旅行 北京")


def test_the_default_is_the_samples(tmp_path):
    assert _demo(tmp_path) == ["classify", "docs/samples", "--top-k", "3"]
