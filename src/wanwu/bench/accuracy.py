"""Accuracy on ImageNet-named photos: a folder of ``<wnid>_*.JPEG`` files, or an ImageFolder
tree whose sub-folders are wnids. Top-1/3/5, mean top-1 confidence, and agreement (same top-1)
with the reference engine (torch fp32)."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from ..errors import WanwuError
from ..imaging import IMAGE_EXTENSIONS
from ..labels import wnid_to_index

_WNID = re.compile(r"^(n\d{8})")


@dataclass(frozen=True)
class LabeledPhoto:
    path: Path
    wnid: str
    index: int


def labeled_photos(data_dir: str | os.PathLike, limit: int | None = None) -> list[LabeledPhoto]:
    """Photos under ``data_dir`` whose wnid is known from their file name (``n01440764_x.JPEG``)
    or their parent folder (``n01440764/x.JPEG``), sorted by path."""
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise WanwuError(f"--data {root}: not a folder")
    index = wnid_to_index()
    out = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()):
        for text in (path.name, path.parent.name):
            m = _WNID.match(text)
            if m and m.group(1) in index:
                out.append(LabeledPhoto(path, m.group(1), index[m.group(1)]))
                break
    if not out:
        raise WanwuError(
            f"--data {root}: no ImageNet-named photos found (expected <wnid>_*.JPEG files, e.g. "
            "n01440764_tench.JPEG, or sub-folders named by wnid)"
        )
    return out[:limit] if limit else out


def prepare_inputs(clf, photos: list[Path], progress: bool = True, desc: str = "decode") -> np.ndarray:
    """Decode + preprocess each photo through ``clf``'s runner -> (N, 3, H, W)."""
    arrays = []
    for path in tqdm(photos, desc=desc, unit="img", file=sys.stderr, disable=not progress or None, leave=False):
        arrays.append(clf.runner.prepare(path, str(path)).x)
    return np.stack(arrays)


def predict(run: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Logits for all inputs, ``batch_size`` at a time."""
    return np.concatenate([run(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)])


def scores(logits: np.ndarray, labels: np.ndarray, reference_top1: np.ndarray | None = None) -> dict:
    """top-1/3/5 (%), mean top-1 confidence (%), and agreement (%) with ``reference_top1``."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    probs = np.exp(z)
    probs /= probs.sum(axis=1, keepdims=True)
    order = np.argsort(-probs, axis=1)[:, :5]
    hit = order == labels[:, None]
    out = {
        "n": int(len(labels)),
        "top1": float(hit[:, :1].any(axis=1).mean() * 100),
        "top3": float(hit[:, :3].any(axis=1).mean() * 100),
        "top5": float(hit[:, :5].any(axis=1).mean() * 100),
        "mean_confidence": float(probs.max(axis=1).mean() * 100),
    }
    if reference_top1 is not None:
        out["agreement"] = float((order[:, 0] == reference_top1).mean() * 100)
    return out
