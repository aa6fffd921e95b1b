"""Does dynamic batching pay? And how fast is a cache hit? Measured against real servers.

    python benchmarks/server_batching.py --clients 16 --duration 20 --out docs/bench

Starts `wanwu serve` twice — batching on (default settings) and off (`--batch-size 1`) — and
drives each with N concurrent clients sending *different* photos (every request new bytes,
so the result cache never helps), interleaving the two servers in rounds so machine noise
hits both alike. Then sends one photo repeatedly to measure the server time of a cache hit.
Prints a table and writes server_batching.json (+ .md) to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import ServerProcess, build_payloads, percentile


async def drive(url: str, photos, clients: int, duration: float, seed: int) -> tuple[int, list[float]]:
    rng = random.Random(seed)
    done = 0
    lat: list[float] = []
    stop_at = time.monotonic() + duration
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=clients)) as http:

        async def one(i: int) -> None:
            nonlocal done
            r_local = random.Random(seed * 1000 + i)
            while time.monotonic() < stop_at:
                p = r_local.choice(photos)
                data = p.data + rng.randbytes(8)  # new bytes every time: no cache hits
                t = time.monotonic()
                r = await http.post("/api/v1/classify", files={"file": (p.name, data, p.content_type)})
                if r.status_code != 200:
                    raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")
                lat.append((time.monotonic() - t) * 1e3)
                done += 1

        await asyncio.gather(*(one(i) for i in range(clients)))
    return done, lat


def cache_hit_ms(url: str, photo, n: int = 200) -> dict:
    with httpx.Client(base_url=url, timeout=30) as http:
        files = {"file": (photo.name, photo.data, photo.content_type)}
        http.post("/api/v1/classify", files=files)  # miss, fills the cache
        server_ms, client_ms = [], []
        for _ in range(n):
            t = time.monotonic()
            body = http.post("/api/v1/classify", files=files).json()["results"][0]
            client_ms.append((time.monotonic() - t) * 1e3)
            assert body.get("cached") is True, "the server must run with --show-cache-hits"
            server_ms.append(body["timing_ms"]["total"])
    return {
        "server_p50_ms": percentile(server_ms, 50),
        "server_p99_ms": percentile(server_ms, 99),
        "round_trip_p50_ms": percentile(client_ms, 50),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per round per server")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="out/server_batching")
    ap.add_argument("server_args", nargs="*", help="extra `wanwu serve` arguments for both servers (after --)")
    args = ap.parse_args(argv)

    photos = [p for p in build_payloads() if p.expect_ok and p.content_type == "image/jpeg"] or [
        p for p in build_payloads() if p.expect_ok
    ]
    # --show-cache-hits: answers say "cached" and carry the hit's own server time (hidden by default)
    variants = {"batching on": ["--show-cache-hits"], "batching off (--batch-size 1)": ["--batch-size", "1"]}
    servers = {name: ServerProcess(*extra, *args.server_args) for name, extra in variants.items()}
    results: dict[str, dict] = {name: {"images": 0, "seconds": 0.0, "latency": []} for name in variants}
    try:
        for s in servers.values():
            s.wait_ready()
        for r in range(args.rounds):
            for name, s in servers.items() if r % 2 == 0 else reversed(servers.items()):
                t = time.monotonic()
                n, lat = asyncio.run(drive(s.url, photos, args.clients, args.duration, seed=r))
                results[name]["images"] += n
                results[name]["seconds"] += time.monotonic() - t
                results[name]["latency"] += lat
                print(f"round {r + 1}: {name}: {n / (time.monotonic() - t):.1f} img/s", flush=True)
        hit = cache_hit_ms(servers["batching on"].url, photos[0])
    finally:
        for s in servers.values():
            s.stop()

    summary = {}
    for name, r in results.items():
        summary[name] = {
            "img_per_s": r["images"] / r["seconds"],
            "p50_ms": percentile(r["latency"], 50),
            "p99_ms": percentile(r["latency"], 99),
            "images": r["images"],
        }
    on, off = summary["batching on"], summary["batching off (--batch-size 1)"]
    report = {
        "clients": args.clients,
        "rounds": args.rounds,
        "seconds_per_round": args.duration,
        "servers": summary,
        "speedup": on["img_per_s"] / off["img_per_s"],
        "cache_hit": hit,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "server_batching.json").write_text(json.dumps(report, indent=2))
    lines = [
        f"{args.clients} concurrent clients, every request a different photo (no cache hits), "
        f"{args.rounds} interleaved rounds of {args.duration:.0f} s per server:",
        "",
        "| server | images/s | p50 latency | p99 latency |",
        "|---|---|---|---|",
        *[f"| {n} | {s['img_per_s']:.1f} | {s['p50_ms']:.0f} ms | {s['p99_ms']:.0f} ms |" for n, s in summary.items()],
        "",
        f"Batching gives **{report['speedup']:.2f}x** the images/s (target ≥ 1.5x).",
        "",
        f"Cache hit (same photo again): server time p50 **{hit['server_p50_ms']:.2f} ms**, p99 {hit['server_p99_ms']:.2f} ms "
        f"(target < 2 ms); full HTTP round trip p50 {hit['round_trip_p50_ms']:.1f} ms.",
    ]
    (out / "server_batching.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
