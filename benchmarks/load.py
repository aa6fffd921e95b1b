"""Load test: many concurrent clients against a real `wanwu serve`; every answer is checked.

    python benchmarks/load.py --clients 200 --duration 30

Each client (asyncio + httpx, its own connection) sends real photos in a loop. The expected
top-1 of every photo is computed first, in this process, with the same pipeline; every 200
answer must match it. Prints throughput, latency percentiles and the status counts, writes
load.json to --out; exits 1 when any request failed or any answer was wrong.
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


async def run_clients(url: str, photos, expected: dict[str, str], clients: int, duration: float) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    wrong: list[str] = []
    stop_at = time.monotonic() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as http:

        async def one(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < stop_at:
                p = rng.choice(photos)
                t = time.monotonic()
                try:
                    r = await http.post("/api/v1/classify", files={"file": (p.name, p.data, p.content_type)})
                    status = r.status_code
                except httpx.HTTPError:
                    status = 0
                latencies.append((time.monotonic() - t) * 1e3)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200 and r.json()["results"][0]["predictions"][0]["label"] != expected[p.name]:
                    wrong.append(p.name)
                elif status == 503:
                    await asyncio.sleep(float(r.headers.get("Retry-After", "1")))

        t0 = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(clients)))
        elapsed = time.monotonic() - t0
    ok = statuses.get(200, 0)
    return {
        "clients": clients,
        "duration_s": elapsed,
        "requests": sum(statuses.values()),
        "ok": ok,
        "throughput_img_s": ok / elapsed,
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        "wrong_answers": len(wrong),
        "latency_ms": {q: percentile(latencies, float(q[1:])) for q in ("p50", "p90", "p99")},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--data", default=None, help="folder of photos (default: wanwu's calibration photos)")
    parser.add_argument("--out", default="out/load")
    parser.add_argument("--url", default=None, help="use an already running server")
    parser.add_argument("server_args", nargs="*", help="extra `wanwu serve` arguments (after --)")
    args = parser.parse_args(argv)

    from wanwu import Classifier

    photos = [p for p in build_payloads(args.data) if p.expect_ok]
    clf = Classifier()
    expected = {p.name: clf.classify(p.data, top_k=1)[0].label for p in photos}
    del clf

    server = None if args.url else ServerProcess(*args.server_args)
    try:
        url = args.url or server.url
        if server:
            server.wait_ready()
        print(f"{args.clients} clients for {args.duration:.0f} s against {url} …", flush=True)
        result = asyncio.run(run_clients(url, photos, expected, args.clients, args.duration))
    finally:
        if server:
            server.stop()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "load.json").write_text(json.dumps(result, indent=2))
    lat = result["latency_ms"]
    print(
        f"{result['ok']} images in {result['duration_s']:.1f} s = {result['throughput_img_s']:.1f} img/s; "
        f"p50 {lat['p50']:.0f} ms, p90 {lat['p90']:.0f} ms, p99 {lat['p99']:.0f} ms; "
        f"statuses {result['status_counts']}; wrong answers {result['wrong_answers']}"
    )
    failed = result["requests"] - result["ok"]  # a 503 under this load counts as a failure too
    return 1 if failed or result["wrong_answers"] or not result["ok"] else 0


if __name__ == "__main__":
    sys.exit(main())
