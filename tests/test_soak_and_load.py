"""The long-running tools against a real `wanwu serve`: a 120 s soak (zero 5xx, flat RSS floor
and fds, stable p99) and 200 concurrent clients for 30 s (no errors, every answer right). Both
are marked slow: `make test-all` (CI) runs them, `make test` does not. The soak's RSS judgement
itself is tested here on synthetic series, in the fast tier."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from soak import judge_rss  # noqa: E402


def _run(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def _under_load(seconds: float, rng: np.random.Generator, floor: float = 175.0) -> tuple[np.ndarray, np.ndarray]:
    """RSS sampled 4 times a second from a server under load: a floor, and a forward pass's buffers
    that come and go on top of it (0-25 MB, mostly small), like the soak's samples.csv."""
    ts = np.arange(0.0, seconds, 0.25)
    return ts, floor + 25 * rng.random(len(ts)) ** 2


def test_rss_judgement_passes_a_flat_server_whose_slope_wanders():
    rng = np.random.default_rng(0)
    ts, rss = _under_load(100, rng)
    # busier in the last 50 s: most samples are peaks, so the median climbs; the floor does not
    busy = (ts >= 50) & (rng.random(len(ts)) < 0.7)
    rss[busy] = 190 + 15 * rng.random(busy.sum())
    verdict = judge_rss(ts, rss)
    # what the old check judged: the fitted slope over the run, in percent of the starting RSS
    fitted_growth = verdict["slope_mb_per_hour"] / 3600 * (ts[-1] - ts[0]) / verdict["first_floor"] * 100
    assert fitted_growth > 5, "the series must be one that a fitted slope fails"
    assert verdict["pass"], verdict["detail"]
    assert abs(verdict["growth_mb"]) < 3


def test_rss_judgement_fails_a_leak():
    rng = np.random.default_rng(1)
    ts, rss = _under_load(100, rng)
    rss += 0.3 * ts  # 0.3 MB a second: 30 MB over the run
    verdict = judge_rss(ts, rss)
    assert not verdict["pass"], verdict["detail"]
    assert 15 < verdict["growth_mb"] < 30


def test_rss_judgement_fails_a_slow_leak_over_a_long_run():
    rng = np.random.default_rng(2)
    ts, rss = _under_load(1680, rng, floor=205.0)  # a 30-minute soak after its 120 s warm-up
    rss += 1.0 * ts / 60  # 1 MB a minute, lost under ±12 MB of wander in any one minute
    assert not judge_rss(ts, rss)["pass"]
    flat = judge_rss(*_under_load(1680, rng, floor=205.0))
    assert flat["pass"], flat["detail"]


def test_rss_judgement_tolerance_is_the_larger_of_mb_and_percent():
    ts = np.arange(0.0, 90.0, 0.25)
    step = np.where(ts >= 60, 12.0, 0.0)  # the floor rises by 12 MB
    assert judge_rss(ts, 300 + step)["pass"]  # above 10 MB, but 4% of 300 MB
    assert not judge_rss(ts, 100 + step)["pass"]  # above 10 MB and 12% of 100 MB
    assert judge_rss(ts, 100 + step, tolerance_mb=15)["pass"]
    assert judge_rss([], [])["pass"]  # nothing watched (--url): nothing to judge


def test_rss_judgement_passes_the_recorded_30_minute_soak():
    """docs/stability/samples.csv: a real 30-minute soak of a flat server."""
    with open(ROOT / "docs" / "stability" / "samples.csv") as f:
        rows = [(float(r["t_s"]), float(r["rss_mb"])) for r in csv.DictReader(f) if float(r["t_s"]) >= 120]
    verdict = judge_rss([t for t, _ in rows], [m for _, m in rows])
    assert verdict["pass"], verdict["detail"]


@pytest.mark.slow
def test_soak_120s_passes_every_check(tmp_path):
    # 120 s: 100 s after the 20 s warm-up, the floor of its first and last thirds compared
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


@pytest.mark.slow
def test_200_concurrent_clients_all_answered_correctly(tmp_path):
    proc = _run("load.py", "--clients", "200", "--duration", "30", "--out", str(tmp_path), timeout=400)
    result = json.loads((tmp_path / "load.json").read_text())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert result["wrong_answers"] == 0
    assert result["status_counts"] == {"200": result["ok"]}
    assert result["ok"] >= 200  # every client got answers
    print(proc.stdout)
