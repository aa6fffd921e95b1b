"""The long-running tools against a real `wanwu serve`: a 120 s soak (zero 5xx, flat RSS and
fds, stable p99) and 200 concurrent clients for 30 s (no errors, every answer right).
Both are marked slow; CI runs them (`make test` runs everything)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_soak_120s_passes_every_check(tmp_path):
    # 120 s, not 60: under load the RSS wanders by ±10 MB around its plateau, and a slope fitted
    # over the 40 s after a 60 s run's warm-up read up to +7% on a server flat over 180 s
    out = tmp_path / "soak"
    # a small result cache fills during warm-up: its (bounded) growth is not a leak
    proc = _run(
        "soak.py", "--duration", "120", "--clients", "6", "--out", str(out), "--", "--cache-entries", "256", timeout=400
    )
    verdict = json.loads((out / "verdict.json").read_text())
    failed = {k: v["detail"] for k, v in verdict["checks"].items() if not v["pass"]}
    assert proc.returncode == 0 and verdict["verdict"] == "PASS", (
        f"{failed}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    )
    assert verdict["requests"] > 100
    assert verdict["status_counts"].get("200", 0) > 0
    assert any(code.startswith("4") for code in verdict["status_counts"]), "bad uploads must have been sent and refused"
    assert (out / "soak.png").stat().st_size > 10_000
    assert (out / "samples.csv").read_text().count("\n") >= 50


def test_200_concurrent_clients_all_answered_correctly(tmp_path):
    proc = _run("load.py", "--clients", "200", "--duration", "30", "--out", str(tmp_path), timeout=400)
    result = json.loads((tmp_path / "load.json").read_text())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert result["wrong_answers"] == 0
    assert result["status_counts"] == {"200": result["ok"]}
    assert result["ok"] >= 200  # every client got answers
    print(proc.stdout)
