"""Pillow JPEG draft mode (DCT scaling) against exact decoding: the time saved per megapixel
and the top-1 agreement between the two paths. Large photos are made by upscaling real ones
(``upscale_photos``) because the ImageNet photos are small (about 500x375), where draft mode
rarely applies. The issue's rule: draft mode may be the default at >= 99% agreement."""

from __future__ import annotations

import copy
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

DRAFT_MIN_AGREEMENT = 99.0  # %


def upscale_photos(
    photos: list[Path], out_dir: Path, megapixels: float, quality: int = 90, progress: bool = True
) -> list[Path]:
    """Each photo resized (bicubic) to about ``megapixels`` MP and saved as a JPEG in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for path in tqdm(
        photos,
        desc=f"make {megapixels:g} MP JPEGs",
        unit="img",
        file=sys.stderr,
        disable=not progress or None,
        leave=False,
    ):
        with Image.open(path) as opened:
            im = opened.convert("RGB")
            s = math.sqrt(megapixels * 1e6 / (im.width * im.height))
            big = im.resize((round(im.width * s), round(im.height * s)), Image.Resampling.BICUBIC)
        dest = out_dir / f"{path.stem}-{megapixels:g}mp.jpg"
        big.save(dest, quality=quality)
        out.append(dest)
    return out


def _decoding_as(clf, *, draft: bool, factor: float):
    """A shallow copy of ``clf`` (the same engine) that decodes exactly (``draft=False``) or in
    draft mode keeping the shorter side >= ``factor`` x the resize size, with its own runner."""
    from ..pipeline.runner import Runner

    copy_ = copy.copy(clf)
    copy_.draft, copy_.draft_margin = draft, factor
    copy_.runner = Runner(copy_)
    return copy_


def compare_draft(
    clf, photos: list[Path], progress: bool = True, desc: str = "draft vs exact", factor: float = 1.0
) -> dict:
    """Decode + preprocess every photo exactly and in draft mode (alternating which goes first),
    classify both, and report time per image and per megapixel, and top-1 agreement.
    ``clf`` is any Classifier; its engine is shared by both paths. ``factor`` > 1 keeps a margin:
    the draft decode keeps the shorter side >= factor x the resize size (the Classifier's
    default is ``DRAFT_MARGIN``). The times are the runner's decode + preprocess."""
    exact = _decoding_as(clf, draft=False, factor=factor)
    draft = _decoding_as(clf, draft=True, factor=factor)
    t_exact, t_draft, mp, applied = [], [], [], 0
    x_exact, x_draft = [], []
    for i, path in enumerate(
        tqdm(photos, desc=desc, unit="img", file=sys.stderr, disable=not progress or None, leave=False)
    ):
        data = path.read_bytes()
        order = (exact, draft) if i % 2 == 0 else (draft, exact)
        for c in order:
            prepared = c.runner.prepare(data, path.name, keep_image=True)
            ms = (prepared.timing.decode + prepared.timing.preprocess) * 1e3
            if c is exact:
                t_exact.append(ms)
                x_exact.append(prepared.x)
                mp.append(prepared.width * prepared.height / 1e6)
            else:
                t_draft.append(ms)
                x_draft.append(prepared.x)
                applied += sorted(prepared.image.size) != sorted((prepared.width, prepared.height))
    from .accuracy import predict

    top_exact = predict(clf.infer, np.stack(x_exact)).argmax(axis=1)
    top_draft = predict(clf.infer, np.stack(x_draft)).argmax(axis=1)
    te, td, mpa = np.asarray(t_exact), np.asarray(t_draft), np.asarray(mp)
    return {
        "factor": factor,
        "n": len(photos),
        "draft_applied": int(applied),
        "megapixels_mean": float(mpa.mean()),
        "exact_ms_mean": float(te.mean()),
        "draft_ms_mean": float(td.mean()),
        "exact_ms_p50": float(np.median(te)),
        "draft_ms_p50": float(np.median(td)),
        "speedup": float(te.mean() / td.mean()),
        "saving_ms_per_mp": float(((te - td) / mpa).mean()),
        "agreement": float((top_exact == top_draft).mean() * 100),
    }


def draft_verdict(agreements: dict[str, float]) -> dict:
    """Draft mode may be the default when every photo set keeps >= 99% agreement."""
    worst = min(agreements.values()) if agreements else None
    return {
        "qualifies": worst is not None and worst >= DRAFT_MIN_AGREEMENT,
        "worst_agreement": worst,
        "threshold": DRAFT_MIN_AGREEMENT,
        "agreements": agreements,
    }
