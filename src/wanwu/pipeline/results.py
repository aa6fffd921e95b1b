"""What the pipeline answers: ``Prediction``, ``ImageResult``, ``Timing`` (seconds per stage,
by name), and the one postprocess, logits -> probabilities (``softmax``) -> the top k classes
(``top_k_predictions``), used by every route: CLI, Python API, JSON API, v2 protocol, index."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Mapping

import numpy as np

from ..errors import WanwuError
from ..labels import DEFAULT_LANG, imagenet_classes, label_in

STAGES = ("decode", "preprocess", "inference", "postprocess")


@dataclass
class Timing:
    """Seconds one image spent in each stage. ``inference`` is the image's forward pass: its
    share of a batch's pass (``run_many``) or, in the server, its wait for the micro-batch that
    carried it (queueing included: what the caller experienced)."""

    decode: float = 0.0
    preprocess: float = 0.0
    inference: float = 0.0
    postprocess: float = 0.0

    @property
    def total(self) -> float:
        return sum(getattr(self, f.name) for f in fields(self))

    def as_ms(self) -> dict[str, float]:
        """``{"decode": ms, ..., "total": ms}``: what results show as ``timing_ms``."""
        out = {f.name: getattr(self, f.name) * 1e3 for f in fields(self)}
        out["total"] = self.total * 1e3
        return out

    def as_dict(self) -> dict[str, float]:
        """``{"decode": seconds, ...}``, one entry per stage: how a timing travels (Ray rows)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, seconds: Mapping[str, float | None]) -> Timing:
        """The inverse of ``as_dict``, by name: a stage missing (or None) is 0, an unknown one
        is ignored, so adding a stage never misaligns the others."""
        return cls(**{f.name: float(seconds.get(f.name) or 0.0) for f in fields(cls)})


@dataclass(frozen=True)
class Prediction:
    """One class and its probability. ``label`` is the English name; ``label_in(lang)`` and
    ``to_dict(lang)`` give the reader's language (the names come from ``wanwu.labels``)."""

    index: int
    wnid: str
    label: str
    score: float

    @property
    def label_en(self) -> str:
        return self.label

    @property
    def label_zh(self) -> str:
        return imagenet_classes()[self.index].label_zh

    def label_in(self, lang: str) -> str:
        return label_in(imagenet_classes()[self.index], lang)

    def to_dict(self, lang: str = DEFAULT_LANG) -> dict:
        """``label`` in ``lang``, plus ``label_en`` and ``label_zh`` whatever the language."""
        return {
            "index": self.index,
            "wnid": self.wnid,
            "label": self.label_in(lang),
            "label_en": self.label,
            "label_zh": self.label_zh,
            "score": self.score,
        }


@dataclass
class ImageResult:
    """The answer for one image, or the error that stopped it (``error`` set, no predictions)."""

    name: str
    predictions: list[Prediction] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    timing: Timing = field(default_factory=Timing)
    error: WanwuError | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. too small for a meaningful answer

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def timing_ms(self) -> dict[str, float]:
        return self.timing.as_ms()

    def to_dict(self, lang: str = DEFAULT_LANG) -> dict:
        out: dict = {"filename": self.name, "width": self.width, "height": self.height}
        if self.error is not None:
            out["error"] = self.error.to_dict(lang)
        else:
            out["predictions"] = [p.to_dict(lang) for p in self.predictions]
            out["timing_ms"] = {k: round(v, 3) for k, v in self.timing_ms.items()}
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Logits -> probabilities along the last axis (computed in the logits' dtype)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def probabilities(logits: np.ndarray) -> np.ndarray:
    """(N, classes) logits -> float64 probabilities: what ``top_k_predictions`` ranks and what
    the v2 protocol returns (as FP32)."""
    return softmax(logits.astype(np.float64))


def prediction(index: int, probs: np.ndarray) -> Prediction:
    """Class ``index`` with its probability from one row of ``probabilities``."""
    cls = imagenet_classes()[index]
    return Prediction(int(index), cls.wnid, cls.label, float(probs[index]))


def top_k_predictions(logits: np.ndarray, k: int) -> list[list[Prediction]]:
    """(N, classes) logits -> per row the k most probable classes, best first."""
    probs = probabilities(logits)
    k = max(1, min(int(k), probs.shape[-1]))
    idx = np.argpartition(-probs, k - 1, axis=-1)[:, :k]
    out = []
    for row, cand in zip(probs, idx):
        order = cand[np.argsort(-row[cand], kind="stable")]
        out.append([prediction(i, row) for i in order])
    return out
