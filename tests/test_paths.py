"""Where wanwu keeps things: the variables are honoured, and the test-suite itself never
touches the user's real cache (``make test`` used to build models into ``~/.cache/wanwu``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from wanwu.paths import cache_dir


def _users_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "wanwu"


def test_tests_run_with_a_private_cache(_session_cache):
    assert cache_dir() == _session_cache
    assert cache_dir() != _users_cache()


def test_processes_started_by_tests_see_the_private_cache(_session_cache):
    out = subprocess.run(
        [sys.executable, "-c", "from wanwu.paths import cache_dir; print(cache_dir())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(out) == _session_cache


def test_cache_dir_variable_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("WANWU_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("WANWU_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "wanwu"
