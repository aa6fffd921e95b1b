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
request. Then where a lone request's time goes: each side's own timing of its stages (the
server's forward pass is timed from the image being ready to its answer being made on the event
loop, so it holds the hand-over back), what is outside them, and the event loop's CPU per request
for a new photo, for one the result cache answers (the fixed cost of a request: HTTP,
middleware, the route, JSON) and for a health check. Latency only: not asserted anywhere, run
it on a quiet machine.
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
from workload import HOST, ServerProcess, build_payloads, cpu_seconds, percentile

PATH = "/api/v1/classify"
HEADERS = {"content-type": "image/jpeg"}


Send = Callable[[bytes], float]  # one photo -> the stages' total in ms, as the side itself timed them


def stages_ms(body: bytes) -> float:
    """The server's own timing of its stages (decode, preprocess, inference, postprocess) for
    the one photo of a classify answer."""
    return float(json.loads(body)["results"][0]["timing_ms"]["total"])


def stdlib_sender(port: int) -> Send:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)

    def send(data: bytes) -> float:
        conn.request("POST", PATH, body=data, headers=HEADERS)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {body[:200]!r}")
        return stages_ms(body)

    return send


def httpx_sender(client: httpx.Client) -> Send:
    def send(data: bytes) -> float:
        response = client.post(PATH, content=data, headers=HEADERS)
        response.raise_for_status()
        return stages_ms(response.content)

    return send


def where_the_time_goes(server: ServerProcess, photos: list, rng: random.Random, n: int = 200) -> list[str]:
    """What a lone request costs besides the pipeline, on one kept-alive http.client connection:
    the event loop's CPU per request (the server's main thread: HTTP parsing, middleware, the
    route, JSON, the hand-over to a decode thread and back) for new photos and for a photo the
    result cache answers (no decode, no forward pass: the fixed cost of a request), and the
    round trip of a request that does nothing (``/v2/health/ready``)."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
    pid = server.proc.pid

    def request(method: str, path: str, body: bytes | None = None) -> None:
        conn.request(method, path, body=body, headers=HEADERS if body is not None else {})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status}")

    cached = photos[0].data
    kinds = {
        "a new photo": lambda: request("POST", PATH, rng.choice(photos).data + rng.randbytes(8)),
        "a photo the result cache answers": lambda: request("POST", PATH, cached),
        "GET /v2/health/ready": lambda: request("GET", "/v2/health/ready"),
    }
    lines = []
    for kind, run in kinds.items():
        for _ in range(5):
            run()
        time.sleep(0.2)
        loop0, wall = cpu_seconds(pid, pid), []
        for _ in range(n):
            t0 = time.perf_counter()
            run()
            wall.append((time.perf_counter() - t0) * 1e3)
        loop = (cpu_seconds(pid, pid) - loop0) / n * 1e3
        lines.append(f"{kind:<33s} round trip p50 {percentile(wall, 50):5.2f} ms, event loop CPU {loop:4.2f} ms")
    conn.close()
    return lines


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

    def in_process(data: bytes) -> float:
        result = clf.classify_one(data)
        if not result.ok:
            raise RuntimeError("in-process classification failed")
        return result.timing.total * 1e3

    with ServerProcess(*args.server_args) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        server.wait_ready()
        sides: dict[str, Send] = {
            "in process": in_process,
            "HTTP, http.client": stdlib_sender(server.port),
            "HTTP, httpx": httpx_sender(client),
        }
        ms: dict[str, list[float]] = {name: [] for name in sides}
        staged: dict[str, list[float]] = {name: [] for name in sides}  # each side's own stage total
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
                    staged[name].append(send(data))
                    out.append((time.perf_counter() - t0) * 1e3)
                cpu[name] += time.thread_time() - cpu0
        time.sleep(args.settle)
        breakdown = where_the_time_goes(server, photos, rng)

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
    lines.append(
        "the stages as each side timed them (decode, preprocess, forward pass, postprocess), p50: "
        + ", ".join(f"{name} {percentile(staged[name], 50):.2f} ms" for name in names)
    )
    for name in names[1:]:
        outside = [w - t for w, t in zip(ms[name], staged[name])]
        lines.append(
            f"{name}: outside the server's stages (HTTP, the event loop, hand-overs, the client) {percentile(outside, 50):.2f} ms"
        )
    lines += breakdown
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
                    "stages_ms": staged,
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
