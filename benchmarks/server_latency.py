"""Lone-request latency: what the server adds over the pipeline it serves (issue 10, item 1).

    python benchmarks/server_latency.py --rounds 12 --per-round 25 [--data DIR] [-- extra wanwu serve args]

Starts `wanwu serve` (default model, default settings) and, in this process, a
``wanwu.Classifier`` with the same model. Sends one photo at a time (distinct bytes every time,
so the result cache never answers) in rounds. Every round draws one sequence of photos and
runs it on each side in turn, so all sides see the same photos (their sizes vary widely, and
a p50 over different draws moved by ±0.1x between runs):

- **in process**: ``Classifier.classify_one``;
- **HTTP, http.client**: Python's standard-library client on one kept-alive connection, a
  lean client (~0.5 ms of its own CPU per request here), as curl or a browser would be;
- **HTTP, httpx**: the client the tests and the other benchmarks use (~1.2 ms of its own CPU
  per request here).

The order of the sides rotates every round, and each side starts after a pause (``--settle``):
ONNX Runtime's threads in this process keep spinning for tens of milliseconds after the last
in-process image, and took CPU from the server during the next HTTP requests (the client's CPU
per request fell from 2.7 to 1.2 ms with the pause). Prints p50/p90 of each side, the ratios
HTTP p50 / in-process p50 (target: <= 1.25), the median of each photo's own ratio (HTTP time
over in-process time of the same photo in the same round: steadier, since a p50 over photos
of a few distinct sizes sits in a gap between them and jumps) and each client's CPU per
request. Latency only: not asserted anywhere, run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import time
from pathlib import Path
from typing import Callable

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import HOST, ServerProcess, build_payloads, percentile

PATH = "/api/v1/classify"
HEADERS = {"content-type": "image/jpeg"}


def stdlib_sender(port: int) -> Callable[[bytes], None]:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)

    def send(data: bytes) -> None:
        conn.request("POST", PATH, body=data, headers=HEADERS)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {body[:200]!r}")

    return send


def httpx_sender(client: httpx.Client) -> Callable[[bytes], None]:
    def send(data: bytes) -> None:
        client.post(PATH, content=data, headers=HEADERS).raise_for_status()

    return send


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--per-round", type=int, default=25, help="photos per round (each side sends them all)")
    parser.add_argument("--settle", type=float, default=0.2, help="seconds of pause before each side's turn")
    parser.add_argument("--data", default=None, help="folder of photos (default: the bundled calibration photos)")
    parser.add_argument("--out", default=None, help="also write server_latency.md and .json to this folder")
    parser.add_argument("server_args", nargs="*", help="extra `wanwu serve` arguments (after --)")
    args = parser.parse_args(argv)

    from wanwu import Classifier

    rng = random.Random(0)
    photos = [p for p in build_payloads(args.data) if p.expect_ok and p.content_type == "image/jpeg"]
    clf = Classifier()

    def in_process(data: bytes) -> None:
        if not clf.classify_one(data).ok:
            raise RuntimeError("in-process classification failed")

    with ServerProcess(*args.server_args) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        server.wait_ready()
        sides: dict[str, Callable[[bytes], None]] = {
            "in process": in_process,
            "HTTP, http.client": stdlib_sender(server.port),
            "HTTP, httpx": httpx_sender(client),
        }
        ms: dict[str, list[float]] = {name: [] for name in sides}
        cpu: dict[str, float] = dict.fromkeys(sides, 0.0)
        for send in sides.values():  # warm every side
            for p in photos[:3]:
                send(p.data + rng.randbytes(8))
        names = list(sides)
        for r in range(args.rounds):
            sequence = [rng.choice(photos) for _ in range(args.per_round)]
            for name in names[r % len(names) :] + names[: r % len(names)]:
                time.sleep(args.settle)
                send, out = sides[name], ms[name]
                cpu0 = time.thread_time()
                for p in sequence:
                    data = p.data + rng.randbytes(8)  # new bytes: no cache hit
                    t0 = time.perf_counter()
                    send(data)
                    out.append((time.perf_counter() - t0) * 1e3)
                cpu[name] += time.thread_time() - cpu0

    n = args.rounds * args.per_round
    local = percentile(ms["in process"], 50)
    lines = [
        f"{n} lone requests each side, {args.rounds} rounds (the same photos on every side, sides in turn), "
        f"model {clf.model_name}, JPEG photos from {args.data or 'the bundled calibration set'} "
        "(new bytes every request)",
    ]
    for name, values in ms.items():
        lines.append(f"{name:<18s} p50 {percentile(values, 50):5.1f} ms  p90 {percentile(values, 90):5.1f} ms")
    paired = {name: percentile([h / i for h, i in zip(ms[name], ms["in process"])], 50) for name in names[1:]}
    for name in names[1:]:
        lines.append(
            f"{name}: p50 / in-process p50 {percentile(ms[name], 50) / local:.2f}x (target <= 1.25x), "
            f"median of each photo's ratio {paired[name]:.2f}x; the client's own CPU {cpu[name] / n * 1e3:.2f} ms "
            "per request"
        )
    print("\n".join(lines))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "server_latency.json").write_text(
            json.dumps(
                {
                    "model": clf.model_name,
                    "ms": ms,
                    "ratio_p50": {name: percentile(ms[name], 50) / local for name in names[1:]},
                    "median_photo_ratio": paired,
                    "client_cpu_ms_per_request": {name: cpu[name] / n * 1e3 for name in names[1:]},
                },
                indent=1,
            )
        )
        data = f" --data {args.data}" if args.data else ""
        (out / "server_latency.md").write_text(
            "# Lone-request latency: HTTP against in process\n\nGenerated by `python benchmarks/server_latency.py"
            f" --rounds {args.rounds} --per-round {args.per_round}{data} --out {args.out}`. The clients, the server "
            "and the in-process classifier share the machine; every side runs the same photos, in turn.\n\n```\n"
            + "\n".join(lines)
            + "\n```\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
