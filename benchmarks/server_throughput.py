"""Server throughput and memory under load, against the textbook baseline (issue 10, item 1).

    python benchmarks/server_throughput.py --clients 16 --rounds 3 --duration 10 \
        -- --model resnet18 --weights FILE --precision int8

In one run, interleaved in rounds so machine noise hits every side alike:

- **baseline**: ``wanwu.Classifier(engine="torch", threads=1)`` classifying the same photos one
  at a time, in this process (torch eager, fp32, batch 1, one thread: the reference every
  ``x baseline`` in wanwu means), as images/s end to end;
- **server**: `wanwu serve` with the given arguments, N concurrent clients (each its own
  connection, raw-body POSTs, new bytes every request so the result cache never answers),
  images/s and latency, and the server's RSS sampled every 50 ms (peak and at the end). The
  clients are lean (``workload.LeanConnection``) unless ``--client httpx``: they share the two
  cores with the server, and httpx's ~2 ms of CPU per request cost the server ~12% of its rate;
- **engine ceiling**: the same model, engine and precision as the server, in this process,
  on preprocessed batches of 8 (no decoding, no HTTP): what the forward passes alone allow;
- **pipeline**: the same model, engine and precision, in this process, ``Classifier.classify``
  of a list of the same photos' bytes (decode and preprocess threads, batches of 8): what wanwu
  does without HTTP (issue 23 goal 3: the server should make >= 85% of it).

Prints the ratios server / baseline, server / pipeline and server / ceiling. Needs the `torch` extra for the
baseline (without it, the baseline is skipped). Not asserted anywhere: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import HOST, LeanConnection, ServerProcess, build_payloads, cpu_seconds, percentile, process_stats

PATH = "/api/v1/classify"


def _serve_option(args: list[str], name: str, default: str | None = None) -> str | None:
    return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else default


async def drive(
    port: int, photos, clients: int, duration: float, seed: int, lean: bool
) -> tuple[float, list[float], int]:
    """images/s and latencies of ``clients`` concurrent clients, each on its own connection:
    ``LeanConnection``s, or one httpx client (``lean=False``), after a second of warm-up; and
    the images sent in all, warm-up included."""
    rng = random.Random(seed)
    done = total = 0
    latencies: list[float] = []
    async with contextlib.AsyncExitStack() as stack:
        if lean:
            connections = [await LeanConnection.open(port) for _ in range(clients)]
            for conn in connections:
                stack.push_async_callback(conn.close)

            async def post(i: int, data: bytes, content_type: str) -> tuple[int, bytes]:
                return await connections[i].post(PATH, data, content_type)
        else:
            limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
            http = await stack.enter_async_context(
                httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=120, limits=limits)
            )

            async def post(i: int, data: bytes, content_type: str) -> tuple[int, bytes]:
                r = await http.post(PATH, content=data, headers={"content-type": content_type})
                return r.status_code, r.content

        async def client(i: int, until: float) -> None:
            nonlocal done, total
            mine = random.Random(seed * 1000 + i)
            while time.monotonic() < until:
                p = mine.choice(photos)
                t = time.monotonic()
                status, body = await post(i, p.data + rng.randbytes(8), p.content_type)
                if status != 200:
                    raise RuntimeError(f"{status}: {body[:200]!r}")
                latencies.append((time.monotonic() - t) * 1e3)
                done += 1
                total += 1

        warm_until = time.monotonic() + 1.0  # connections open, batches form
        await asyncio.gather(*(client(i, warm_until) for i in range(clients)))
        done, latencies = 0, []
        t0 = time.monotonic()
        await asyncio.gather(*(client(i, t0 + duration) for i in range(clients)))
        return done / (time.monotonic() - t0), latencies, total


class RssSampler:
    """The server's RSS (MB, as the soak reports it) every 50 ms while a round runs."""

    def __init__(self, pid: int):
        self.pid, self.samples, self._stop = pid, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss_mb(self) -> float:
        return process_stats(self.pid)[0]

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.samples.append(self.rss_mb())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def images_per_s(fn, items, seconds: float) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn(items[n % len(items)])
        n += 1
    return n / (time.perf_counter() - t0)


def pipeline_images_per_s(clf, photos, seconds: float) -> tuple[float, float]:
    """Images/s of ``clf.classify(list of bytes)`` (decode threads, batched passes), whole lists
    of 64 photos until ``seconds`` have passed, and its CPU seconds per image (this process:
    nothing else runs in it meanwhile)."""
    n, t0, cpu0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        items = [photos[(n + i) % len(photos)].data for i in range(64)]
        n += len(clf.classify(items))
    return n / (time.perf_counter() - t0), (time.process_time() - cpu0) / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of load per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--client",
        choices=("lean", "httpx"),
        default="lean",
        help="load generator: lean (~0.2 ms of CPU per request, default) or httpx (~2 ms, which on 2 cores "
        "takes ~12%% of the machine from the server)",
    )
    ap.add_argument("--out", default=None, help="also write server_throughput.md and .json to this folder")
    ap.add_argument("server_args", nargs="*", help="`wanwu serve` arguments (after --)")
    args = ap.parse_args(argv)

    from wanwu import Classifier
    from wanwu.models import DEFAULT_MODEL

    model = _serve_option(args.server_args, "--model", DEFAULT_MODEL)
    weights = _serve_option(args.server_args, "--weights")
    engine = _serve_option(args.server_args, "--engine", "onnxruntime")
    precision = _serve_option(args.server_args, "--precision", "fp32")
    photos = [p for p in build_payloads() if p.expect_ok and p.content_type == "image/jpeg"]

    try:
        baseline_clf = Classifier(model, "torch", weights=weights, threads=1)
    except Exception as exc:  # no torch extra: the ratios against the baseline are skipped
        print(f"baseline skipped: {exc}", file=sys.stderr)
        baseline_clf = None
    ceiling_clf = Classifier(model, engine, weights=weights, precision=precision)
    batches = [
        np.stack([ceiling_clf.preprocess(ceiling_clf.decode(p.data).image) for p in photos[i : i + 8]])
        for i in range(0, len(photos) - 7, 8)
    ]
    ceiling_clf.infer(batches[0])

    ceiling_clf.classify([p.data for p in photos[:8]])  # warm the pipeline's shapes
    base, ceiling, pipeline, served, latencies, peak, end = [], [], [], [], [], [], []
    # CPU ms per image: the pipeline in process; the server (whole, and its event loop); the clients
    cpu: dict[str, list[float]] = {"pipeline": [], "server": [], "event loop": [], "clients": []}
    with ServerProcess(*args.server_args) as server:
        server.wait_ready()
        ready_rss = RssSampler(server.proc.pid).rss_mb()
        for r in range(args.rounds):
            if baseline_clf is not None:
                base.append(images_per_s(lambda p: baseline_clf.classify_one(p.data), photos, args.duration / 2))
            ceiling.append(8 * images_per_s(ceiling_clf.infer, batches, args.duration / 4))
            rate, pipeline_cpu = pipeline_images_per_s(ceiling_clf, photos, args.duration / 2)
            pipeline.append(rate)
            pid = server.proc.pid
            server0, loop0, clients0 = cpu_seconds(pid), cpu_seconds(pid, pid), time.thread_time()
            with RssSampler(pid) as rss:
                ips, lat, n = asyncio.run(
                    drive(server.port, photos, args.clients, args.duration, seed=r, lean=args.client == "lean")
                )
            for key, used in (
                ("pipeline", pipeline_cpu * n),
                ("server", cpu_seconds(pid) - server0),
                ("event loop", cpu_seconds(pid, pid) - loop0),
                ("clients", time.thread_time() - clients0),
            ):
                cpu[key].append(used / n * 1e3)
            served.append(ips)
            latencies += lat
            peak.append(max(rss.samples))
            end.append(rss.samples[-1])
            print(f"round {r + 1}: server {ips:.1f} img/s, RSS peak {peak[-1]:.0f} MB", file=sys.stderr, flush=True)

    name = ceiling_clf.model_name
    srv, ceil, pipe = float(np.median(served)), float(np.median(ceiling)), float(np.median(pipeline))
    b = float(np.median(base)) if base else None
    report = {
        "model": name,
        "engine": engine,
        "precision": precision,
        "clients": args.clients,
        "client": args.client,
        "server_img_per_s": srv,
        "server_p50_ms": percentile(latencies, 50),
        "server_p99_ms": percentile(latencies, 99),
        "baseline_img_per_s": b,
        "engine_ceiling_img_per_s": ceil,
        "pipeline_img_per_s": pipe,
        "rss_mb": {"ready": ready_rss, "peak": max(peak), "end_of_load": float(np.median(end))},
        "cpu_ms_per_image": {key: float(np.median(values)) for key, values in cpu.items()},
    }
    c = report["cpu_ms_per_image"]
    lines = [
        f"{name} {engine} {precision}, {args.clients} {args.client} clients, {args.rounds} interleaved rounds of "
        f"{args.duration:.0f} s (client, server and baseline share the machine):",
        f"server           {srv:7.1f} img/s   p50 {report['server_p50_ms']:.0f} ms  p99 {report['server_p99_ms']:.0f} ms",
    ]
    if b:
        lines.append(f"baseline         {b:7.1f} img/s   (torch eager fp32, batch 1, 1 thread, end to end)")
    lines += [
        f"pipeline         {pipe:7.1f} img/s   (Classifier.classify of a list, in process: decode threads, batches of 8)",
        f"engine ceiling   {ceil:7.1f} img/s   ({engine} {precision}, forward passes of 8 preprocessed images only)",
        (f"server / baseline {srv / b:.2f}x;  " if b else "")
        + f"server / pipeline {srv / pipe:.2f}x;  server / engine ceiling {srv / ceil:.2f}x"
        + (f";  engine ceiling / baseline {ceil / b:.2f}x" if b else ""),
        f"server RSS: {ready_rss:.0f} MB ready, peak {max(peak):.0f} MB under load, "
        f"{report['rss_mb']['end_of_load']:.0f} MB at the end of a round",
        f"CPU per image: pipeline {c['pipeline']:.1f} ms; server {c['server']:.1f} ms (its event loop "
        f"{c['event loop']:.1f}: HTTP, middleware, routes, hand-overs) + the clients {c['clients']:.1f} ms on the same "
        f"cores: with both cores busy, server / pipeline can reach about {c['pipeline'] / (c['server'] + c['clients']):.2f}",
    ]
    print("\n".join(lines))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "server_throughput.json").write_text(json.dumps(report, indent=1))
        from wanwu.paths import display_path

        given = argv if argv is not None else sys.argv[1:]
        cmd = "python benchmarks/server_throughput.py " + " ".join(
            display_path(a) if Path(a).exists() and a != "--" else a for a in given
        )
        (out / "server_throughput.md").write_text(
            f"# Server throughput under load\n\nGenerated by `{cmd}`.\n\n```\n" + "\n".join(lines) + "\n```\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
