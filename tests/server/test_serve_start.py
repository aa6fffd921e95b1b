"""``wanwu serve`` refusing to start (issue 26 item 17): a busy port is found before the model
loads, and an unknown ``--model`` is one line naming the known ones; both with a documented
exit status and nothing on stdout."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from wanwu.cli.serve import EPILOG, port_problem
from wanwu.models import MODELS

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _serve(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANWU_") or k == "WANWU_CACHE_DIR"}
    env.update(PYTHONPATH=SRC, HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"))
    return subprocess.run(
        [sys.executable, "-m", "wanwu.cli", "serve", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_busy_port_is_one_line_before_the_model_loads(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _serve("--host", "127.0.0.1", "--port", str(port), tmp_path=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"wanwu serve: error: cannot listen on 127.0.0.1:{port}: the port is in use "
        "(stop what listens there, or choose another with --port / WANWU_PORT)"
    ]
    assert "exit status: 0 after a shutdown, 1 the server could not start" in EPILOG


def test_port_problem_says_nothing_for_a_free_port_and_names_a_bad_host():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert port_problem("127.0.0.1", port) is None and port_problem("127.0.0.1", 0) is None
    assert "--host" in (port_problem("no-such-host.invalid", 8080) or "")


def test_unknown_model_is_one_line_with_the_known_ones(tmp_path):
    done = _serve("--model", "resnet50", tmp_path=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "usage:" not in done.stderr, done.stderr
    assert lines[0].startswith("wanwu serve: error: argument --model/-m: invalid choice: 'resnet50'")
    assert all(name in lines[0] for name in MODELS) and "--help" in lines[0]
