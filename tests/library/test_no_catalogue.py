"""Commands that only read or change a catalogue never make one (issue 26 item 7): with none,
they say so in one line, with how to make one, exit 1, and leave no file behind (not the
database, not its folder, not the writer's lock)."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

import pytest

from wanwu.cli import main

COMMANDS = [
    ["tag", "x.jpg", "--add", "dog"],
    ["search", "dog"],
    ["library"],
    ["library", "--failed"],
    ["people"],
    ["people", "name", "1", "Grandma"],
    ["people", "--forget-all"],
    ["similar", "x.jpg"],
    ["duplicates"],
]


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.delenv("WANWU_LIBRARY", raising=False)
    return home


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_no_catalogue_is_said_and_none_is_made(home, tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8\xff")
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        rc = main(argv)
    lines = err.getvalue().strip().splitlines()
    assert rc == 1, err.getvalue()
    assert len(lines) == 1 and "no photo catalogue at" in lines[0] and "wanwu index" in lines[0], lines
    assert list(home.rglob("*")) == []
