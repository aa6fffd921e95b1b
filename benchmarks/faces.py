"""Faces: what ``FaceFinder`` finds on ../shared/faces and what it costs, next to the classifier.

Both face detectors side by side: dlib's HOG (at several working sizes) and BlazeFace.

1. faces found per photo against ../shared/faces/README.md;
2. same-person and different-person descriptor distances (the clustering thresholds);
3. CPU per photo on 12 MP copies (the photos upscaled to 4000x3000-ish, decoded as the indexer
   does: draft JPEG decoding), for detection alone, the whole ``find``, and the classifier's
   decode + inference: CPU time (``time.process_time``; faces' by ``time.thread_time``, see
   below), because wall time on a shared machine says little. ``--dlib`` also times the same ``find`` with dlib's own descriptor (the path
   before the ONNX one), photo by photo interleaved, so the two figures share the load.

4. ``--index N``: the real ``wanwu index`` (a subprocess, a new catalogue each run) on N 12 MP
   copies of the photos (every photo has a face), with faces off, with HOG and with BlazeFace,
   runs alternating so all see the same load: wall and CPU time per photo, what faces add, peak RSS.

    python benchmarks/faces.py [--data ../shared/faces] [--sides 640,800,1024] [--dlib] [--index 48]
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "faces"))
from faces_data import PEOPLE  # noqa: E402

from wanwu.environment import FACE_DETECTORS  # noqa: E402
from wanwu.faces.detect import WORK_SIDE, FaceFinder  # noqa: E402
from wanwu.imaging import load_image  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "faces"))
    ap.add_argument("--sides", default="640,800,1024", help="HOG's working sizes whose counts are shown")
    ap.add_argument("--timed-sides", default="640", help="HOG's working sizes whose CPU cost is measured")
    ap.add_argument("--repeat", type=int, default=1, help="timing passes over the photos")
    ap.add_argument("--dlib", action="store_true", help="also time dlib's own descriptor (the old path), interleaved")
    ap.add_argument("--index", type=int, metavar="N", help="only: wanwu index on N 12 MP copies, faces off and on")
    ap.add_argument("--rounds", type=int, default=3, help="--index: runs of each kind (default: %(default)s)")
    args = ap.parse_args()
    data = Path(args.data)
    if args.index:
        index_with_and_without_faces(data, args.index, args.rounds)
        return
    finders = {name: FaceFinder(detector=name) for name in FACE_DETECTORS}
    hog = finders["hog"]
    images = {rel: load_image(data / rel).image for rel in PEOPLE}

    print("faces found per photo (expected: README.md; obama_and_biden.jpg: 2 clear + 1 half hidden)")
    for side in (int(s) for s in args.sides.split(",")):
        hog.work_side = side
        report_counts(f"hog, longer side {side:>5}", {rel: len(hog.find(im)) for rel, im in images.items()})
    hog.work_side = WORK_SIDE
    report_counts("blazeface (192x192)", {rel: len(finders["blazeface"].find(im)) for rel, im in images.items()})

    for name, finder in finders.items():
        names, rows = [], []
        for rel, im in images.items():
            faces = sorted(
                sorted(finder.find(im), key=lambda f: -f.box[2] * f.box[3])[: len(PEOPLE[rel])], key=lambda f: f.box[0]
            )
            for f, who in zip(faces, PEOPLE[rel]):
                names.append(who)
                rows.append(f.descriptor)
        d = np.stack(rows)
        dist = np.linalg.norm(d[:, None] - d[None], axis=2)
        pairs = list(itertools.combinations(range(len(names)), 2))
        same = [dist[i, j] for i, j in pairs if names[i] == names[j]]
        other = [dist[i, j] for i, j in pairs if names[i] != names[j]]
        print(
            f"distances ({name}): same person {min(same):.3f}-{max(same):.3f}, "
            f"different people {min(other):.3f}-{max(other):.3f}"
        )

    from wanwu import Classifier

    clf = Classifier()
    with tempfile.TemporaryDirectory() as tmp:
        paths = twelve_megapixel_copies(data, Path(tmp), 12)
        t = time.process_time()
        decoded = [clf.decode(p.read_bytes(), str(p)) for p in paths]
        t_decode = (time.process_time() - t) / len(paths)
        for dimg in decoded[:2]:  # warm-up: the first runs allocate
            clf.infer(clf.preprocess(dimg.image)[None])
            for finder in finders.values():
                finder.find(dimg.image)
        reference = FaceFinder(detector="hog", dlib_descriptor=True) if args.dlib else None
        # what is timed: (label, finder, HOG's working size or None)
        timed = [(f"hog {side}", hog, int(side)) for side in args.timed_sides.split(",")]
        timed.append(("blazeface", finders["blazeface"], None))
        load = os.getloadavg()
        print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (2 cores shared: CPU times, not wall)")
        # photo by photo, everything interleaved (the classifier's inference, detection alone,
        # the whole find with each detector, with dlib's descriptor): all see the same load, so the
        # ratios hold even when the figures move. Faces run on this thread (dlib, and ONNX Runtime
        # with one intra-op thread): time.thread_time, so the classifier's ONNX Runtime threads,
        # which spin on after a run, are not counted as faces' cost (they were: detection alone
        # measured more than the whole find); the classifier (its own threads) by process_time
        cpu: dict[str, float] = collections.defaultdict(float)
        found: dict[str, int] = collections.defaultdict(int)
        for _ in range(args.repeat):
            for x in decoded:
                t = time.process_time()
                clf.infer(clf.preprocess(x.image)[None])
                cpu["infer"] += time.process_time() - t
                for label, finder, side in timed:
                    if side is not None:
                        finder.work_side = side
                    t = time.thread_time()
                    finder.boxes(x.image)
                    cpu[f"detect {label}"] += time.thread_time() - t
                    t = time.thread_time()
                    found[label] += len(finder.find(x.image))
                    cpu[f"find {label}"] += time.thread_time() - t
                if reference is not None:
                    t = time.thread_time()
                    reference.find(x.image)
                    cpu["dlib"] += time.thread_time() - t
        hog.work_side = WORK_SIDE
        ms = {k: v / len(paths) / args.repeat * 1e3 for k, v in cpu.items()}
        classifier = t_decode * 1e3 + ms["infer"]
        print(f"12 MP, CPU ms per photo: classifier decode {t_decode * 1e3:.0f} + inference {ms['infer']:.0f}")
        for label, _, _ in timed:
            print(
                f"  faces, {label}: detection alone {ms[f'detect {label}']:.1f}, all ({found[label] // args.repeat} faces "
                f"in {len(paths)} photos) {ms[f'find {label}']:.1f} = +{ms[f'find {label}'] / classifier:.0%} of the classifier"
            )
        if reference is not None:
            print(f"  hog {WORK_SIDE} with dlib's descriptor: {ms['dlib']:.0f} = +{ms['dlib'] / classifier:.0%}")


def report_counts(what: str, counts: dict[str, int]) -> None:
    wrong = {rel: n for rel, n in counts.items() if n != len(PEOPLE[rel])}
    print(f"  {what}: {sum(counts.values())} faces; differing from the README: {wrong or 'none'}")


def twelve_megapixel_copies(data: Path, folder: Path, n: int) -> list[Path]:
    """``n`` JPEGs (quality 90) of about 12 MP from the photos of ``PEOPLE``, aspect kept (a crop
    could cut the face off); past the number of photos, mirrored copies."""
    sources = list(PEOPLE)
    paths = []
    for i in range(n):
        im = ImageOps.exif_transpose(Image.open(data / sources[i % len(sources)])).convert("RGB")
        if (i // len(sources)) % 2:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        s = (12e6 / (im.width * im.height)) ** 0.5
        path = folder / f"{i:04d}_{sources[i % len(sources)].replace('/', '_')}"
        im.resize((round(im.width * s), round(im.height * s)), Image.Resampling.BICUBIC).save(
            path.with_suffix(".jpg"), quality=90
        )
        paths.append(path.with_suffix(".jpg"))
    return paths


def index_with_and_without_faces(data: Path, n: int, rounds: int) -> None:
    """What faces add to ``wanwu index`` of 12 MP photos, with each detector: wall and CPU per
    photo, same files, runs alternating (faces off, hog, blazeface, off, ...) so that all kinds
    share the machine's load."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from index_throughput import run_index

    kinds = ["off", *FACE_DETECTORS]
    with tempfile.TemporaryDirectory(prefix="wanwu-bench-faces-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        twelve_megapixel_copies(data, folder, n)
        for name in FACE_DETECTORS:  # caches: the ONNX graphs, the detector
            run_index(str(folder), Path(tmp) / f"warm-{name}.db", 8, [], faces=True, face_detector=name)
        runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
        for r in range(rounds):
            for kind in kinds:
                db = Path(tmp) / f"{kind}-{r}.db"
                faces = kind != "off"
                runs[kind].append(run_index(str(folder), db, 8, [], faces=faces, face_detector=kind if faces else None))
        print(
            f"wanwu index on {n} 12 MP photos (each with a face), {rounds} runs each, alternating; load {os.getloadavg()[0]:.1f}"
        )
        print(
            "| faces | wall s (best) | wall s (median) | CPU ms per photo (median) | peak RSS MB (max) |\n|---|---|---|---|---|"
        )
        best, med, cpu = {}, {}, {}
        for kind, rs in runs.items():
            walls = sorted(r["wall"] for r in rs)
            cpus = sorted(r["cpu"] for r in rs)
            best[kind], med[kind], cpu[kind] = walls[0], walls[len(walls) // 2], cpus[len(cpus) // 2]
            print(
                f"| {kind} | {walls[0]:.1f} | {med[kind]:.1f} | {cpu[kind] / n * 1e3:.0f} "
                f"| {max(r['rss_mb'] for r in rs):.0f} |"
            )
        for kind in FACE_DETECTORS:
            print(
                f"faces ({kind}) add {best[kind] / best['off'] - 1:+.0%} to the index time (best runs), "
                f"{med[kind] / med['off'] - 1:+.0%} (medians), {cpu[kind] / cpu['off'] - 1:+.0%} CPU (medians); "
                "per-run wall off/on: "
                + ", ".join(f"{a['wall']:.1f}/{b['wall']:.1f}" for a, b in zip(runs["off"], runs[kind]))
            )


if __name__ == "__main__":
    main()
