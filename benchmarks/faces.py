"""Faces: what ``FaceFinder`` finds on ../shared/faces and what it costs, next to the classifier.

1. faces found per photo against ../shared/faces/README.md, at several working sizes;
2. same-person and different-person descriptor distances (the clustering thresholds);
3. CPU per photo on 12 MP copies (the photos upscaled to 4000x3000-ish, decoded as the indexer
   does: draft JPEG decoding), for detection alone, the whole ``find``, and the classifier's
   decode + inference: CPU time (``time.process_time``), because wall time on a shared machine
   says little.

    python benchmarks/faces.py [--data ../shared/faces] [--sides 640,800,1024]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "faces"))
from faces_data import PEOPLE  # noqa: E402

from wanwu.faces.detect import FaceFinder  # noqa: E402
from wanwu.imaging import load_image  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "faces"))
    ap.add_argument("--sides", default="640,800,1024")
    args = ap.parse_args()
    data = Path(args.data)
    finder = FaceFinder()
    images = {rel: load_image(data / rel).image for rel in PEOPLE}

    print("faces found per photo (expected: README.md; obama_and_biden.jpg: 2 clear + 1 half hidden)")
    for side in (int(s) for s in args.sides.split(",")):
        finder.work_side = side
        counts = {rel: len(finder.find(im)) for rel, im in images.items()}
        wrong = {rel: n for rel, n in counts.items() if n != len(PEOPLE[rel])}
        print(f"  longer side {side:>5}: {sum(counts.values())} faces; differing from the README: {wrong or 'none'}")

    finder.work_side = 800
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
    print(f"distances: same person {min(same):.3f}-{max(same):.3f}, different people {min(other):.3f}-{max(other):.3f}")

    from wanwu import Classifier

    clf = Classifier()
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for rel in list(PEOPLE)[:12]:
            im = ImageOps.exif_transpose(Image.open(data / rel).convert("RGB"))
            s = (12e6 / (im.width * im.height)) ** 0.5
            path = Path(tmp) / (rel.replace("/", "_") + ".jpg")
            im.resize((round(im.width * s), round(im.height * s)), Image.Resampling.BICUBIC).save(path, quality=90)
            paths.append(path)
        t = time.process_time()
        decoded = [clf.decode(p.read_bytes(), str(p)) for p in paths]
        t_decode = (time.process_time() - t) / len(paths)
        t = time.process_time()
        for dimg in decoded:
            clf.infer(clf.preprocess(dimg.image)[None])
        t_infer = (time.process_time() - t) / len(paths)
        for side in (640, 800):
            finder.work_side = side
            small = [
                np.asarray(
                    x.image.resize(
                        (
                            round(x.image.width * side / max(x.image.size)),
                            round(x.image.height * side / max(x.image.size)),
                        )
                    )
                )
                for x in decoded
            ]
            t = time.process_time()
            for a in small:
                finder._detector(a, 0)
            t_hog = (time.process_time() - t) / len(paths)
            t = time.process_time()
            n = sum(len(finder.find(x.image)) for x in decoded)
            t_find = (time.process_time() - t) / len(paths)
            print(
                f"12 MP, CPU ms per photo: classifier decode {t_decode * 1e3:.0f} + inference {t_infer * 1e3:.0f}; "
                f"faces at {side}: detection {t_hog * 1e3:.0f}, all ({n} faces in {len(paths)} photos) {t_find * 1e3:.0f}"
            )


if __name__ == "__main__":
    main()
