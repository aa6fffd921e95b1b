"""``wanwu index`` throughput against this machine's limit (issue 23, goal 1), in one command:

    python benchmarks/index_throughput.py [--photos ../shared/imagenet-100] [-n 100] [--rounds 2]

1. Builds the test sets in a temporary folder (``make_set``, the one place benchmarks make them):
   n 12-MP JPEGs (4000x3000, quality 90) and n 500x375 ones, each from a real photo of
   ``--photos`` (default ../shared/imagenet-100; scikit-image's sample photos when absent), with
   camera-like EXIF (Make, Model, DateTimeOriginal, Orientation 1).
2. Measures, in this process on the same files, the CPU per photo of each stage the indexer runs
   (``time.thread_time`` on one thread): read, SHA-256, EXIF, decode at draft size, preprocess,
   sharpness, postprocess, a thumbnail from the decoded draft image, and the forward pass
   (``time.process_time``: intra-op threads included) at batch 1/4/8/16 with 1 and 2 intra-op
   threads. The limit is 2 cores / (sum of the stages + the forward pass at its best layout).
3. Runs the real ``wanwu index --quiet --no-faces --json`` on each set (a subprocess, a new
   catalogue each round; its CPU time and peak RSS from ``getrusage(RUSAGE_CHILDREN)``) and prints
   photos/s, the fraction of the limit, the cores it kept busy, peak RSS, photos/hour and the time
   for 100,000 photos.

The machine is shared: absolute figures move with the load; the fraction is measured in one run.
``wanwu index`` makes no thumbnails (the Library view makes them on demand), so the limit is
printed with and without one; the fraction is taken against the limit of what index does.
Embeddings come from the same forward pass as the tags (no switch: they cost one mean per photo).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_PHOTOS = Path(__file__).resolve().parent.parent.parent / "shared" / "imagenet-100"
SIZES = {"12 MP (4000x3000)": (4000, 3000), "500x375": (500, 375)}
BATCHES = (1, 4, 8, 16)
THREADS = (1, 2)
CORES = 2


def source_photos(folder: Path | None) -> list[Path]:
    """The JPEGs of ``folder`` (sorted), else scikit-image's sample photos."""
    if folder is not None and folder.is_dir():
        found = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if found:
            return found
    import skimage

    data = Path(skimage.__file__).parent / "data"
    names = ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png")
    return [data / n for n in names if (data / n).exists()]


def camera_exif(i: int) -> bytes:
    """EXIF as a phone writes it: Make, Model, DateTime(Original), Orientation 1."""
    exif = Image.Exif()
    exif[0x010F] = "Wanwu"  # Make
    exif[0x0110] = "Wanwu Phone 12"  # Model
    exif[0x0112] = 1  # Orientation
    when = f"2024:{1 + i % 12:02d}:{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:00"
    exif[0x0132] = when  # DateTime
    exif.get_ifd(0x8769)[0x9003] = when  # DateTimeOriginal
    return exif.tobytes()


def make_set(folder: Path, n: int, size: tuple[int, int], photos: Path | None = DEFAULT_PHOTOS) -> list[str]:
    """``n`` distinct JPEGs of exactly ``size`` (quality 90, camera EXIF) in ``folder``: real photos
    cropped to the aspect ratio and resized (bicubic); past the number of sources, mirrored and
    shifted crops of them."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = source_photos(photos)
    w_out, h_out = size
    paths = []
    for i in range(n):
        with Image.open(sources[i % len(sources)]) as opened:
            img = opened.convert("RGB")
        w, h = img.size
        cw, ch = (w, round(w * h_out / w_out)) if w * h_out <= h * w_out else (round(h * w_out / h_out), h)
        cw, ch = min(cw, w), min(ch, h)
        round_ = i // len(sources)
        shift = (round_ * 7) % 8 / 7  # later rounds: another crop of the same photo
        left, top = int((w - cw) * shift), int((h - ch) * (1 - shift))
        img = img.crop((left, top, left + cw, top + ch))
        if round_ % 2:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        out = folder / f"{i:05d}_{sources[i % len(sources)].stem}.jpg"
        img.resize(size, Image.Resampling.BICUBIC).save(out, "JPEG", quality=90, exif=camera_exif(i))
        paths.append(str(out))
    return paths


def _cpu_per_item(fn, items, clock=time.thread_time, rounds: int = 2) -> float:
    """The least CPU seconds per item of ``fn`` over ``items`` in ``rounds`` passes."""
    best = math.inf
    for _ in range(rounds):
        t0 = clock()
        for item in items:
            fn(item)
        best = min(best, (clock() - t0) / len(items))
    return best


def thumbnail_from(image: Image.Image) -> bytes:
    """What ``library.thumbnails`` makes (320 px, JPEG quality 80, optimized), from an image
    already decoded at draft size (no second decode)."""
    from wanwu.library.thumbnails import THUMBNAIL_SIZE

    img = image.copy()
    img.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80, optimize=True)
    return buf.getvalue()


def stage_cpu(paths: list[str], clf) -> dict[str, float]:
    """CPU seconds per photo of each per-photo stage of ``LocalBackend`` (its read and inspect
    hooks and the runner's stages), the postprocess and a thumbnail, one thread, on ``paths``."""
    from wanwu.library.embeddings import sharpness
    from wanwu.library.metadata import read_embedded

    blobs = [Path(p).read_bytes() for p in paths]
    decoded = [clf.decode(b).image for b in blobs]
    inputs = [clf.preprocess(img) for img in decoded]
    logits = clf.infer(np.stack(inputs[:8]))
    return {
        "read": _cpu_per_item(lambda p: Path(p).read_bytes(), paths),
        "sha256": _cpu_per_item(lambda b: hashlib.sha256(b).hexdigest(), blobs),
        "exif (+ XMP/IPTC keywords)": _cpu_per_item(read_embedded, blobs),
        "decode (draft)": _cpu_per_item(clf.decode, blobs),
        "preprocess": _cpu_per_item(clf.preprocess, decoded),
        "sharpness": _cpu_per_item(sharpness, inputs),
        "postprocess": _cpu_per_item(lambda _: clf.postprocess(logits, 10), range(20)) / len(logits),
        "thumbnail": _cpu_per_item(thumbnail_from, decoded),
    }


def _pass_cpu(clf, x: np.ndarray, n: int, rounds: int = 2) -> float:
    """The least process CPU seconds per photo of ``n`` forward passes of batch ``x``."""
    best = math.inf
    for _ in range(rounds):
        t0 = time.process_time()
        for _ in range(n):
            clf.infer_with_features(x)
        best = min(best, (time.process_time() - t0) / n / len(x))
    return best


def forward_cpu(inputs: list[np.ndarray], model_kwargs: dict) -> dict[tuple[int, int], float]:
    """CPU seconds per photo of the forward pass (logits + features, as the indexer runs it) by
    (intra-op threads, batch), process CPU time: what every thread of the pass spent, spinning too."""
    from wanwu.pipeline import Classifier

    out = {}
    for threads in THREADS:
        clf = Classifier(**{**model_kwargs, "threads": threads})
        for batch in BATCHES:
            x = np.stack([inputs[i % len(inputs)] for i in range(batch)])
            clf.infer_with_features(x)  # warm this shape
            out[(threads, batch)] = _pass_cpu(clf, x, max(3, 32 // batch))
        del clf
    return out


# the child's own peak RSS (VmHWM): ``ru_maxrss`` of children counts the forked parent's pages
_CHILD = (
    "import sys\nfrom wanwu.cli import main\ntry:\n    rc = main()\nfinally:\n"
    "    sys.stderr.write(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')))\nsys.exit(rc)"
)


def run_index(
    folder: str, db: Path, batch: int, extra: list[str], faces: bool = False, face_detector: str | None = None
) -> dict:
    """``wanwu index`` as a user runs it, in a subprocess: its summary, wall seconds, CPU seconds
    and peak RSS. Faces are off unless ``faces`` (``benchmarks/faces.py --index`` compares both),
    found by ``face_detector`` (WANWU_FACE_DETECTOR) when given."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [sys.executable, "-c", _CHILD]
    cmd += ["index", folder, "--db", str(db), "--quiet", "--json", "--batch-size", str(batch), *extra]
    if not faces:
        cmd.append("--no-faces")
    env = dict(os.environ, WANWU_FACE_DETECTOR=face_detector) if face_detector else None
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"wanwu index failed ({done.returncode}):\n{done.stderr}")
    summary = json.loads(done.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    hwm = [line for line in done.stderr.splitlines() if line.startswith("VmHWM:")]
    return {"summary": summary, "wall": wall, "cpu": cpu, "rss_mb": int(hwm[-1].split()[1]) / 1024}


def _thread_cpu() -> dict[int, float]:
    """CPU seconds of each thread of this process, by native thread id (/proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def index_cpu_by_thread(folder: str, batch: int) -> dict[str, float]:
    """CPU seconds per photo of each kind of thread of an in-process index run (the indexer and
    ``LocalBackend`` as ``wanwu index`` builds them): reading + decoding + forward passes (the
    runner's pool threads), and the main thread (walk, hand-over, SQLite writes). Threads come
    and go with each run of the runner, so their CPU is sampled every 20 ms while the run goes
    (the last reading of a thread counts; it misses at most its last 20 ms)."""
    import threading

    from wanwu.library.backend import LocalBackend
    from wanwu.library.catalogue import open_catalogue
    from wanwu.library.indexer import Indexer
    from wanwu.pipeline import Classifier

    clf = Classifier(threads=1)  # as `wanwu index` makes it
    names: dict[int, str] = {}
    last: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            last.update(_thread_cpu())
            names.update({t.native_id: t.name.rstrip("0123456789_-") for t in threading.enumerate() if t.native_id})

    with tempfile.TemporaryDirectory(prefix="wanwu-bench-threads-") as tmp:
        conn = open_catalogue(Path(tmp) / "catalogue.db")
        before = _thread_cpu()
        sampler = threading.Thread(target=sample, name="bench-sampler", daemon=True)
        sampler.start()
        summary = Indexer(conn, "bench", lambda: LocalBackend(clf, top_k=10, batch_size=batch)).run([folder])
        last.update(_thread_cpu())
        done.set()
        sampler.join()
        conn.close()
    out: dict[str, float] = {}
    for tid, cpu in last.items():
        name = names.get(tid, "other")
        if name != "bench-sampler":
            out[name] = out.get(name, 0.0) + (cpu - before.get(tid, 0.0)) / summary.classified
    return out


def _load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="folder of source photos")
    ap.add_argument("-n", type=int, default=100, help="photos per set (default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=2, help="index runs per set, best kept (default: %(default)s)")
    ap.add_argument("--only", choices=("12mp", "small"), help="one set only")
    ap.add_argument("--keep", type=Path, help="build the sets here and keep them (reused when present)")
    a = ap.parse_args()

    from wanwu import __version__
    from wanwu.models import DEFAULT_MODEL
    from wanwu.pipeline import Classifier

    sizes = dict(SIZES)
    if a.only:
        sizes = {k: v for k, v in sizes.items() if (a.only == "12mp") == (v[0] > 1000)}
    kwargs = {"model": DEFAULT_MODEL}
    print(f"wanwu {__version__}, {DEFAULT_MODEL} fp32, ONNX Runtime; {os.cpu_count()} CPUs; load average {_load()}")
    with tempfile.TemporaryDirectory(prefix="wanwu-bench-index-") as tmp:
        root = a.keep or Path(tmp)
        rows = []
        for name, size in sizes.items():
            folder = root / f"{size[0]}x{size[1]}-{a.n}"
            paths = sorted(str(p) for p in folder.glob("*.jpg")) if folder.is_dir() else []
            if len(paths) != a.n:
                t0 = time.perf_counter()
                paths = make_set(folder, a.n, size, a.photos)
                print(f"made {a.n} JPEGs of {name} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            mb = sum(os.path.getsize(p) for p in paths) / len(paths) / 1e6
            clf = Classifier(**kwargs)
            stages = stage_cpu(paths, clf)
            inputs = [clf.preprocess(clf.decode(Path(p).read_bytes()).image) for p in paths[:16]]
            del clf
            forward = forward_cpu(inputs, kwargs)
            (best_threads, best_batch), fwd = min(forward.items(), key=lambda kv: kv[1])
            index_stages = sum(v for k, v in stages.items() if k != "thumbnail")
            limit = CORES / (index_stages + fwd)
            limit_thumb = CORES / (index_stages + stages["thumbnail"] + fwd)
            print(f"\n## {name}: {a.n} photos, {mb:.2f} MB each (load average {_load()})")
            print("| stage | CPU ms per photo |\n|---|---|")
            for k, v in stages.items():
                print(f"| {k} | {v * 1e3:.2f} |")
            print(
                "| forward pass (logits + features) | "
                + ", ".join(f"{t} thr b{b}: {v * 1e3:.1f}" for (t, b), v in forward.items())
                + " |"
            )
            print(f"| **forward pass, best: {best_threads} thread(s), batch {best_batch}** | **{fwd * 1e3:.2f}** |")
            print(f"| **sum (what index does)** | **{(index_stages + fwd) * 1e3:.2f}** |")
            print(
                f"limit = {CORES} cores / {(index_stages + fwd) * 1e3:.1f} ms = {limit:.1f} photos/s "
                f"(with a thumbnail from the draft image: {limit_thumb:.1f} photos/s)"
            )
            one = root / f"{size[0]}x{size[1]}-1"  # start-up alone: model load, walk, catalogue
            one.mkdir(exist_ok=True)
            if not (one / Path(paths[0]).name).exists():
                (one / Path(paths[0]).name).write_bytes(Path(paths[0]).read_bytes())
            startup = run_index(str(one), Path(tmp) / f"{size[0]}-startup.db", best_batch, [])
            runs = []
            for r in range(a.rounds):
                runs.append(run_index(str(folder), Path(tmp) / f"{size[0]}-{r}.db", best_batch, []))
                assert runs[-1]["summary"]["new"] == a.n, runs[-1]["summary"]
            best = max(runs, key=lambda run: run["summary"]["photos_per_second"])
            rate = best["summary"]["photos_per_second"]  # photos / seconds of the classify step
            end_to_end = a.n / best["wall"]
            busy = best["cpu"] / best["wall"] / CORES
            per_photo = min((run["cpu"] - startup["cpu"]) / (a.n - 1) for run in runs)
            efficiency = (index_stages + fwd) / per_photo
            rows.append((name, a.n, rate, end_to_end, limit, rate / limit, busy, efficiency, best["rss_mb"], _load()))
            print(
                f"wanwu index: {rate:.1f} photos/s in its classify step ({end_to_end:.1f} end to end, model load "
                f"and walk included), {rate / limit:.0%} of the limit; CPU busy {busy:.0%} of {CORES} cores "
                f"(end to end); peak RSS {best['rss_mb']:.0f} MB; rounds: "
                + ", ".join(f"{run['summary']['photos_per_second']:.1f}" for run in runs)
            )
            threads = index_cpu_by_thread(str(folder), best_batch)
            print(
                "CPU ms per photo by thread in an in-process index run: "
                + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in sorted(threads.items(), key=lambda kv: -kv[1]))
            )
            print(
                f"CPU per photo in wanwu index (start-up of {startup['cpu']:.2f} s taken off): {per_photo * 1e3:.1f} ms "
                f"against the stages' {(index_stages + fwd) * 1e3:.1f} ms: {efficiency:.0%} of its CPU is the stages' "
                "work (the fraction of the limit it would reach with both cores its own)"
            )
        print(f"\n## wanwu index --no-faces (batch {best_batch}), load average {_load()}")
        print(
            "| photos | n | photos/s | end to end | limit | fraction | cores busy | stage CPU / index CPU "
            "| peak RSS MB | photos/hour | 100,000 photos | load average |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for name, n, rate, e2e, limit, frac, busy, eff, rss, load in rows:
            hours = 100_000 / rate / 3600
            print(
                f"| {name} | {n} | {rate:.1f} | {e2e:.1f} | {limit:.1f} | {frac:.0%} | {busy:.0%} | {eff:.0%} "
                f"| {rss:.0f} | {rate * 3600:,.0f} | {hours * 60:.0f} min | {load} |"
            )


if __name__ == "__main__":
    main()
