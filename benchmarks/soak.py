"""Soak test: run a real `wanwu serve` for a while under a realistic mix and judge whether it
stays flat and calm.

    python benchmarks/soak.py --duration 120 --out out/soak         # what CI runs
    python benchmarks/soak.py --duration 1800 --out docs/stability --report docs/stability.md

The mix: concurrent clients sending real photos at several sizes and formats — 60% as new
bytes every time (cache misses: full decode and inference), 30% a few popular photos (cache
hits) — and 10% bad uploads (random bytes, truncated, text, empty, a PNG header bomb). The
server's RSS and open file descriptors are sampled every second, or four times a second in runs
of up to 4 minutes. Writes samples.csv, requests.csv, soak.png and a verdict (verdict.md +
verdict.json); exits 0 on PASS, 1 on FAIL.

Pass criteria: zero 5xx, zero dropped connections, every good photo gets the same top-1 each
time, the RSS floor flat after warm-up (below), fd count flat, p99 latency in the last minute
within 1.5x of the first minute (first/last fifth of the run when it is shorter than 5 minutes).

The RSS floor: under load a forward pass's buffers come and go within a second, so the RSS of a
flat server wanders by ±10 MB around its plateau (the 30-minute run in docs/stability: median
~225 MB, 10th percentile 205-214 MB in every 150 s window). A slope fitted over the 40-100 s
after a short run's warm-up follows that wander: it read +5.4% and +7.4% on servers whose floor
did not move. A leak raises the floor, the memory the server holds between bursts, so the check
compares the 10th percentile of RSS in the last third of the time after warm-up with the same in
the first third, and fails when the floor rose by more than --rss-tolerance-mb and by more than
--rss-tolerance-pct of the first floor (defaults 10 MB and 5%). The fitted slope is still
reported (MB/hour), for reading a long run; it is not judged.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import itertools
import json
import os
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import Payload, ServerProcess, build_payloads, percentile, process_stats


@dataclass
class Record:
    t: float
    name: str
    status: int  # 0 = connection dropped / transport error
    ms: float
    top1: str | None


@dataclass
class Stats:
    records: list[Record] = field(default_factory=list)
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # t, rss MB, fds


async def client(url: str, payloads: list[Payload], stop_at: float, t0: float, stats: Stats, seed: int) -> None:
    rng = random.Random(seed)
    good = [p for p in payloads if p.expect_ok]
    bad = [p for p in payloads if not p.expect_ok]
    hot = good[: max(1, len(good) // 6)]  # a few popular photos: cache hits
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
        while time.monotonic() < stop_at:
            roll = rng.random()
            payload = rng.choice(bad if roll < 0.1 else hot if roll < 0.4 else good)
            data = payload.data
            if roll >= 0.4:  # same pixels, new bytes (trailing junk is ignored): a cache miss
                data = data + rng.randbytes(8)
            start = time.monotonic()
            try:
                resp = await http.post(
                    "/api/v1/classify",
                    params={"top_k": 3},
                    files={"file": (payload.name, data, payload.content_type)},
                )
                status = resp.status_code
                top1 = None
                if status == 200:
                    top1 = resp.json()["results"][0]["predictions"][0]["label"]
            except httpx.HTTPError:
                status, top1 = 0, None
            stats.records.append(Record(start - t0, payload.name, status, (time.monotonic() - start) * 1e3, top1))


def sampler(pid: int, t0: float, stop: threading.Event, stats: Stats, interval: float) -> None:
    while not stop.is_set():
        try:
            rss, fds = process_stats(pid)
        except Exception:
            break
        stats.samples.append((time.monotonic() - t0, rss, fds))
        stop.wait(interval)


RSS_TOLERANCE_MB = 10.0
RSS_TOLERANCE_PCT = 5.0
FLOOR_PERCENTILE = 10


def judge_rss(
    ts: list[float] | np.ndarray,
    rss_mb: list[float] | np.ndarray,
    tolerance_mb: float = RSS_TOLERANCE_MB,
    tolerance_pct: float = RSS_TOLERANCE_PCT,
) -> dict:
    """Whether the RSS floor stayed flat over samples taken after warm-up (``ts`` in seconds,
    ascending; ``rss_mb`` the server's RSS then): the 10th percentile of RSS in the last third of
    the time against the same in the first third. Fails when the floor rose by more than
    ``tolerance_mb`` and by more than ``tolerance_pct`` percent of the first floor. With fewer
    than 6 samples (no process watched, e.g. ``--url``) there is nothing to judge: it passes and
    says so."""
    ts, rss = np.asarray(ts, dtype=float), np.asarray(rss_mb, dtype=float)
    if len(ts) < 6:
        return {
            "pass": True,
            "first_floor": 0.0,
            "last_floor": 0.0,
            "growth_mb": 0.0,
            "growth_pct": 0.0,
            "allowed_mb": tolerance_mb,
            "slope_mb_per_hour": 0.0,
            "end": float(rss[-1]) if len(rss) else 0.0,
            "max": float(rss.max()) if len(rss) else 0.0,
            "detail": "no RSS samples to judge",
        }
    span = ts[-1] - ts[0]
    first = rss[ts <= ts[0] + span / 3]
    last = rss[ts >= ts[-1] - span / 3]
    first_floor = float(np.percentile(first, FLOOR_PERCENTILE))
    last_floor = float(np.percentile(last, FLOOR_PERCENTILE))
    growth_mb = last_floor - first_floor
    growth_pct = growth_mb / first_floor * 100 if first_floor > 0 else 0.0
    allowed_mb = max(tolerance_mb, tolerance_pct / 100 * first_floor)
    slope = float(np.polyfit(ts, rss, 1)[0]) * 3600 if span > 0 else 0.0
    return {
        "pass": bool(growth_mb <= allowed_mb),
        "first_floor": first_floor,
        "last_floor": last_floor,
        "growth_mb": growth_mb,
        "growth_pct": growth_pct,
        "allowed_mb": allowed_mb,
        "slope_mb_per_hour": slope,
        "end": float(rss[-1]),
        "max": float(rss.max()),
        "detail": (
            f"floor (p{FLOOR_PERCENTILE}) {first_floor:.0f} MB in the first third after warm-up, "
            f"{last_floor:.0f} MB in the last: {growth_mb:+.1f} MB ({growth_pct:+.2f}%; allowed "
            f"{allowed_mb:.1f} MB, the larger of {tolerance_mb:g} MB and {tolerance_pct:g}%); "
            f"fitted slope {slope:+.1f} MB/hour, not judged"
        ),
    }


def judge(
    stats: Stats,
    duration: float,
    warmup: float,
    payloads: list[Payload],
    tolerance_mb: float = RSS_TOLERANCE_MB,
    tolerance_pct: float = RSS_TOLERANCE_PCT,
) -> dict:
    recs = stats.records
    expected_ok = {p.name: p.expect_ok for p in payloads}
    five_xx = sum(1 for r in recs if r.status >= 500)
    dropped = sum(1 for r in recs if r.status == 0)
    wrong_status = sum(1 for r in recs if r.status and (r.status == 200) != expected_ok[r.name])
    top1_by_name: dict[str, set[str]] = {}
    for r in recs:
        if r.top1:
            top1_by_name.setdefault(r.name, set()).add(r.top1)
    inconsistent = sorted(n for n, labels in top1_by_name.items() if len(labels) > 1)

    post = [(t, rss, fds) for t, rss, fds in stats.samples if t >= warmup]
    if len(post) < 6:  # a run too short for its warm-up: judge its second half
        post = stats.samples[len(stats.samples) // 2 :]
    fds = np.array([s[2] for s in post])
    fd_spread = int(fds.max() - fds.min()) if len(fds) else 0
    memory = judge_rss([s[0] for s in post], [s[1] for s in post], tolerance_mb, tolerance_pct)

    window = 60.0 if duration >= 300 else duration / 5
    first = [r.ms for r in recs if r.status == 200 and warmup <= r.t < warmup + window]
    last = [r.ms for r in recs if r.status == 200 and r.t >= duration - window]
    p99_first, p99_last = percentile(first, 99), percentile(last, 99)
    ok_lat = [r.ms for r in recs if r.status == 200]

    checks = {
        "zero 5xx": (five_xx == 0, f"{five_xx} responses with status >= 500"),
        "zero dropped connections": (dropped == 0, f"{dropped} transport errors"),
        "right status for every payload": (
            wrong_status == 0,
            f"{wrong_status} good photos refused or bad uploads accepted",
        ),
        "consistent answers": (not inconsistent, f"{len(inconsistent)} photos with changing top-1 {inconsistent[:3]}"),
        "RSS floor flat after warm-up": (memory["pass"], memory["detail"]),
        "fd count flat": (
            fd_spread <= 8,
            f"spread {fd_spread} fds after warm-up (range {int(fds.min()) if len(fds) else 0}-{int(fds.max()) if len(fds) else 0})",
        ),
        "p99 last window <= 1.5x first": (
            p99_last <= 1.5 * p99_first or p99_last <= 50,
            f"first {p99_first:.1f} ms, last {p99_last:.1f} ms (window {window:.0f} s)",
        ),
    }
    return {
        "duration_s": duration,
        "requests": len(recs),
        "throughput_rps": len(recs) / duration if duration else 0.0,
        "status_counts": {str(s): sum(1 for r in recs if r.status == s) for s in sorted({r.status for r in recs})},
        "latency_ms": {"p50": percentile(ok_lat, 50), "p90": percentile(ok_lat, 90), "p99": percentile(ok_lat, 99)},
        "rss_mb": {
            "floor_first_third": memory["first_floor"],
            "floor_last_third": memory["last_floor"],
            "end": memory["end"],
            "max": memory["max"],
        },
        "rss_slope_mb_per_hour": memory["slope_mb_per_hour"],
        "checks": {k: {"pass": bool(v[0]), "detail": v[1]} for k, v in checks.items()},
        "verdict": "PASS" if all(v[0] for v in checks.values()) else "FAIL",
    }


def write_outputs(out: Path, stats: Stats, result: dict, args: argparse.Namespace) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "samples.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "rss_mb", "open_fds"])
        w.writerows((f"{t:.2f}", f"{r:.2f}", n) for t, r, n in stats.samples)
    with open(out / "requests.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "payload", "status", "ms", "top1"])
        w.writerows((f"{r.t:.3f}", r.name, r.status, f"{r.ms:.2f}", r.top1 or "") for r in stats.records)
    (out / "verdict.json").write_text(json.dumps(result, indent=2))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    ax1.plot([s[0] for s in stats.samples], [s[1] for s in stats.samples], color="tab:blue")
    ax1.set_ylabel("server RSS (MB)")
    ax1.axvline(args.warmup, color="grey", linestyle=":", label="end of warm-up")
    ax1.legend(loc="lower right")
    ax1.set_ylim(bottom=0)
    bucket = max(5.0, args.duration / 60)
    edges = np.arange(0, args.duration + bucket, bucket)
    p99s = [
        percentile([r.ms for r in stats.records if r.status == 200 and a <= r.t < b], 99)
        for a, b in itertools.pairwise(edges)
    ]
    ax2.plot(edges[1:], p99s, color="tab:red")
    ax2.set_ylabel(f"p99 latency (ms, {bucket:.0f} s buckets)")
    ax2.set_xlabel("time since start (s)")
    ax2.set_ylim(bottom=0)
    fig.suptitle(f"wanwu soak: {args.duration:.0f} s, {args.clients} clients — {result['verdict']}")
    fig.tight_layout()
    fig.savefig(out / "soak.png", dpi=110)
    plt.close(fig)

    lines = [
        f"# wanwu soak test — {result['verdict']}",
        "",
        f"Generated by `python benchmarks/soak.py --duration {args.duration:.0f} --clients {args.clients} --out {args.out}"
        + (f" --report {args.report}" if args.report else "")
        + "`"
        f" on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"- requests: {result['requests']} ({result['throughput_rps']:.1f}/s); statuses: {result['status_counts']}",
        f"- latency of successful requests: p50 {result['latency_ms']['p50']:.1f} ms, p90 {result['latency_ms']['p90']:.1f} ms, p99 {result['latency_ms']['p99']:.1f} ms",
        f"- server RSS floor (10th percentile): {result['rss_mb']['floor_first_third']:.0f} MB in the first third after warm-up, {result['rss_mb']['floor_last_third']:.0f} MB in the last; {result['rss_mb']['end']:.0f} MB at the end, max {result['rss_mb']['max']:.0f} MB; fitted slope {result['rss_slope_mb_per_hour']:+.1f} MB/hour",
        "",
        "| check | result | detail |",
        "|---|---|---|",
        *[f"| {k} | {'pass' if v['pass'] else '**FAIL**'} | {v['detail']} |" for k, v in result["checks"].items()],
        "",
        "![RSS and p99 latency over time](soak.png)",
        "",
        "Raw data: `samples.csv` (RSS and open fds over time), `requests.csv` (every request), `verdict.json`.",
    ]
    (out / "verdict.md").write_text("\n".join(lines) + "\n")
    if args.report:  # the same page elsewhere, with links relative to it
        report = Path(args.report)
        rel = os.path.relpath(out, report.parent)
        text = "\n".join(lines).replace("](soak.png)", f"]({rel}/soak.png)")
        text = text.replace("Raw data: `", f"Raw data in `{rel}/`: `")
        report.write_text(text + "\n")


async def drive(url: str, payloads: list[Payload], args: argparse.Namespace, stats: Stats, t0: float) -> None:
    stop_at = t0 + args.duration
    await asyncio.gather(*(client(url, payloads, stop_at, t0, stats, seed=i) for i in range(args.clients)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="seconds ignored for RSS growth (default: 1/6 of the run, at least 20, at most 120: under "
        "load the RSS climbs to its plateau in the first 15-30 s)",
    )
    parser.add_argument(
        "--rss-tolerance-mb",
        type=float,
        default=RSS_TOLERANCE_MB,
        help="how far the RSS floor may rise, in MB: the check fails only above this and above "
        "--rss-tolerance-pct (default %(default)s)",
    )
    parser.add_argument(
        "--rss-tolerance-pct",
        type=float,
        default=RSS_TOLERANCE_PCT,
        help="how far the RSS floor may rise, in percent of the first floor (default %(default)s)",
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--data", default=None, help="folder of photos (default: wanwu's calibration photos)")
    parser.add_argument("--out", default="out/soak", help="output folder")
    parser.add_argument("--report", default=None, help="also write the verdict page here (e.g. docs/stability.md)")
    parser.add_argument("--url", default=None, help="soak an already running server instead of starting one")
    parser.add_argument("server_args", nargs="*", help="extra `wanwu serve` arguments (after --)")
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = min(120.0, max(20.0, args.duration / 6))

    payloads = build_payloads(args.data)
    stats = Stats()
    server = None if args.url else ServerProcess(*args.server_args)
    try:
        url = args.url or server.url
        if server:
            print(f"starting wanwu serve on {url} …", flush=True)
            print(f"ready after {server.wait_ready():.1f} s", flush=True)
        pid = server.proc.pid if server else None
        t0 = time.monotonic()
        stop = threading.Event()
        interval = 0.25 if args.duration <= 240 else 1.0
        thread = threading.Thread(target=sampler, args=(pid, t0, stop, stats, interval), daemon=True) if pid else None
        if thread:
            thread.start()
        print(
            f"soaking for {args.duration:.0f} s with {args.clients} clients and {len(payloads)} payloads …", flush=True
        )
        asyncio.run(drive(url, payloads, args, stats, t0))
        stop.set()
        if thread:
            thread.join()
    finally:
        if server:
            code = server.stop()
            if code not in (0, -15):
                print(f"warning: server exited with {code}", file=sys.stderr)
    result = judge(stats, args.duration, args.warmup, payloads, args.rss_tolerance_mb, args.rss_tolerance_pct)
    write_outputs(Path(args.out), stats, result, args)
    print((Path(args.out) / "verdict.md").read_text())
    return 0 if result["verdict"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
