"""How well embeddings find near-duplicates and similar photos, on real photos: imagenet-100's
originals mixed with six edited copies of each (resize to 50%, JPEG quality 60, crop to 90%,
brightness +20%, rotate 3 degrees, a 10-pixel border), embedded by the indexer's own backend.

Prints markdown tables (docs/library.md):
- storage: recall@10 of "more like this" and the near-duplicate pairs each storage keeps
  against float32 (float16, int8, random projections);
- threshold sweep: near-duplicate pair precision and recall, groups mixing two originals,
  "similar" recall@5 (an original's edited copies among its five nearest, and the reverse);
- the four sizes of ../shared/faces/same-photo as one group, and the highest similarity of two
  distinct portraits in ../shared/faces (when present).

    python benchmarks/similar_quality.py [--photos ../shared/imagenet-100] [--model efficientnet_lite0]

Not a test: a measurement to read.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

EDITS = ("resize50", "jpeg60", "crop90", "bright120", "rotate3", "border10")


def edited(img: Image.Image, kind: str) -> Image.Image:
    w, h = img.size
    if kind == "resize50":
        return img.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.LANCZOS)
    if kind == "jpeg60":
        return img  # the quality is applied when saving
    if kind == "crop90":
        dx, dy = int(w * 0.05), int(h * 0.05)
        return img.crop((dx, dy, w - dx, h - dy))
    if kind == "bright120":
        return ImageEnhance.Brightness(img).enhance(1.2)
    if kind == "rotate3":
        return img.rotate(3, resample=Image.Resampling.BICUBIC, expand=False)
    if kind == "border10":
        return ImageOps.expand(img, border=10, fill=(255, 255, 255))
    raise ValueError(kind)


def make_set(src: Path, out: Path) -> tuple[list[str], list[int]]:
    """Originals (copied as they are) and their edits; returns paths and each one's source index."""
    paths, source = [], []
    for i, photo in enumerate(sorted(src.glob("*.JPEG"))):
        with Image.open(photo) as im:
            img = im.convert("RGB")
        orig = out / f"{photo.stem}.jpg"
        orig.write_bytes(photo.read_bytes())
        paths.append(str(orig))
        source.append(i)
        for kind in EDITS:
            p = out / f"{photo.stem}.{kind}.jpg"
            edited(img, kind).save(p, quality=60 if kind == "jpeg60" else 92)
            paths.append(str(p))
            source.append(i)
    return paths, source


def embed(paths: list[str], model: str) -> np.ndarray:
    from wanwu.library.backend import LocalBackend
    from wanwu.pipeline import Classifier

    backend = LocalBackend(Classifier(model=model), top_k=1)
    got = {c.path: c.embedding for c in backend.classify(paths)}
    backend.close()
    return np.stack([got[p] for p in paths]).astype(np.float32)


def variants(x: np.ndarray) -> dict[str, np.ndarray]:
    from wanwu.library.embeddings import normalized, quantize

    out = {
        "float32": x,
        "float16": normalized(x.astype(np.float16).astype(np.float32)),
        "int8": normalized(quantize(x).astype(np.float32)),
    }
    rng = np.random.default_rng(0)
    for k in (128, 256):
        proj = np.linalg.qr(rng.standard_normal((x.shape[1], k)).astype(np.float32))[0]
        out[f"random projection {k}"] = normalized(x @ proj)
    return out


def top(sims: np.ndarray, k: int) -> np.ndarray:
    s = sims.copy()
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1)[:, :k]


def pair_set(sims: np.ndarray, t: float) -> set[tuple[int, int]]:
    i, j = np.nonzero(np.triu(sims >= t, 1))
    return set(zip(i.tolist(), j.tolist()))


def groups_mixing(pairs: set[tuple[int, int]], source: list[int], n: int) -> int:
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in pairs:
        parent[find(a)] = find(b)
    members: dict[int, set[int]] = {}
    for i in range(n):
        members.setdefault(find(i), set()).add(source[i])
    return sum(1 for s in members.values() if len(s) > 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", default=str(Path(__file__).resolve().parents[2] / "shared" / "imagenet-100"))
    ap.add_argument("--same-photo", default=str(Path(__file__).resolve().parents[2] / "shared/faces/same-photo"))
    ap.add_argument("--model", default="efficientnet_lite0")
    args = ap.parse_args()
    src = Path(args.photos)
    if not src.is_dir():
        raise SystemExit(f"no photos at {src} (--photos)")
    with tempfile.TemporaryDirectory(prefix="wanwu-similar-") as tmp:
        paths, source = make_set(src, Path(tmp))
        x = embed(paths, args.model)
    n, src_arr = len(paths), np.array(source)
    truth = {(i, j) for i in range(n) for j in range(i + 1, n) if source[i] == source[j]}
    print(f"{n} photos: {n // (len(EDITS) + 1)} originals and {len(EDITS)} edits of each; model {args.model}\n")

    ref = x @ x.T
    ref_top = top(ref, 10)
    ref_pairs = pair_set(ref, 0.9)
    print("| storage | bytes/photo | recall@10 vs float32 | near-dup pairs kept at 0.90 | extra pairs |")
    print("|---|---|---|---|---|")
    for name, v in variants(x).items():
        s = v @ v.T
        t10 = top(s, 10)
        rec = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ref_top, t10)])
        pairs = pair_set(s, 0.9)
        nbytes = {"float32": 4, "float16": 2, "int8": 1}.get(name, 4) * v.shape[1]
        print(
            f"| {name} | {nbytes} | {rec:.3f} | {len(pairs & ref_pairs) / max(1, len(ref_pairs)):.3f} | "
            f"{len(pairs - ref_pairs)} |"
        )

    from wanwu.library.embeddings import normalized, quantize

    stored = normalized(quantize(x).astype(np.float32))  # what the catalogue gives back
    s = stored @ stored.T
    print("\nwith int8 as stored:\n")
    print("| threshold | pair precision | pair recall | groups mixing originals | similar recall@5 |")
    print("|---|---|---|---|---|")
    t5 = top(s, 5)
    # recall@5: of each photo's 6 same-source photos, how many of the 5 slots they fill (max 5)
    r5 = np.mean([np.sum(src_arr[t5[i]] == src_arr[i]) / 5 for i in range(n)])
    for t in (0.70, 0.75, 0.80, 0.82, 0.85, 0.88, 0.90, 0.92, 0.95):
        pairs = pair_set(s, t)
        tp = len(pairs & truth)
        prec = tp / len(pairs) if pairs else 1.0
        print(f"| {t:.2f} | {prec:.4f} | {tp / len(truth):.4f} | {groups_mixing(pairs, source, n)} | {r5:.3f} |")
    per_edit = {}
    for k, kind in enumerate(EDITS, 1):
        idx = np.arange(0, n, len(EDITS) + 1)
        per_edit[kind] = np.sort(s[idx, idx + k])
    print("\ncosine of each edit to its original (min / 5th percentile / median):\n")
    for kind, v in per_edit.items():
        print(f"- {kind}: {v[0]:.3f} / {np.percentile(v, 5):.3f} / {np.median(v):.3f}")
    off = s[np.triu(src_arr[:, None] != src_arr[None, :], 1)]
    print(f"- different originals: max {off.max():.3f}, 99.9th percentile {np.percentile(off, 99.9):.3f}")

    same = Path(args.same_photo)
    if same.is_dir():
        files = sorted(str(p) for p in same.glob("*.jpg"))
        v = normalized(quantize(embed(files, args.model)).astype(np.float32))
        sims = v @ v.T
        print(f"\nsame-photo ({len(files)} sizes): lowest pairwise cosine {sims.min():.3f}")
        # distinct photos of one genre (portraits of men in suits): the hard case for false groups
        files = sorted(str(p) for p in same.parent.glob("*/*.jp*g") if p.parent != same)
        v = normalized(quantize(embed(files, args.model)).astype(np.float32))
        sims = v @ v.T
        np.fill_diagonal(sims, -1)
        print(f"distinct portraits ({len(files)} photos of {same.parent.name}/): highest cosine {sims.max():.3f}")


if __name__ == "__main__":
    main()
