"""Class activation maps: where in the photo the model found the class it names. The maths
only: ``Runner.explain`` (``runner.py``) runs the stages and calls ``class_map`` and ``crop_box``.

Every wanwu model reads its last feature map F (C x h x w, the engines' ``features`` output)
with a small head. The map of class c is Grad-CAM (Selvaraju et al. 2017):

    alpha_k = mean_ij d logit_c / d F_kij        map_ij = ReLU(sum_k alpha_k F_kij) / max

For a head that is global average pooling and one linear layer (EfficientNet-Lite, ResNet)
this is exactly CAM (Zhou et al. 2016), ``W[c] . F`` at each position (alpha_k = W[c, k] / hw).
VGG's head is three linear layers: the gradient is taken through them at the image's own
activations. The gradient comes from the weights the engine runs: the torch engine uses autograd
on its model's head (the reference); the ONNX engines back-propagate in NumPy through the head
read from the fp32 graph they were built from (``wanwu.graph.head.head_layers``; an int8 model
is explained with its fp32 head). Logits and features come from one forward pass.

``Explanation.heatmap`` maps the (h, w) map back to the whole original, EXIF-rotated image
through the model's resize and center crop, with 0 outside the crop.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..imaging import Preprocessing, resize_geometry
from ..labels import resolve_class
from .results import Prediction, Timing

if TYPE_CHECKING:
    from PIL import Image

    from ..graph.head import HeadLayer

HEATMAP_CELLS = 64  # the JSON grid's longer side; the other side keeps the photo's aspect ratio

Gradient = Callable[[np.ndarray, int], np.ndarray]  # (features (C, h, w), class) -> d logit / d features


# --- the map -------------------------------------------------------------------------------
def class_map(features: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """Grad-CAM of one image: (C, h, w) features and the class score's gradient -> (h, w) in
    [0, 1] (all zeros when nothing speaks for the class)."""
    alpha = gradient.astype(np.float64).mean(axis=(1, 2))
    cam = np.maximum(np.tensordot(alpha, features.astype(np.float64), axes=1), 0.0)
    top = float(cam.max())
    return (cam / top if top > 0 else cam).astype(np.float32)


def head_gradient(layers: list[HeadLayer], features: np.ndarray, index: int) -> np.ndarray:
    """d logits[index] / d features for one image (C, h, w), back-propagated in NumPy through
    ``layers`` (``wanwu.graph.head.head_layers``, ending in a linear layer) at these features.
    The last layer is not run forwards: its gradient is the row ``W[index]`` (for a linear head
    that row is all there is to it)."""
    *body, last = layers
    x = features[None].astype(np.float32)
    inputs = []
    for layer in body:
        inputs.append(x)
        kind = layer[0]
        if kind == "gemm":
            x = x @ layer[1].T + layer[2]
        elif kind == "relu":
            x = np.maximum(x, 0)
        elif kind == "flatten":
            x = x.reshape(len(x), -1)
        elif kind == "gap":
            x = x.mean(axis=(2, 3), keepdims=True)
        elif kind == "avgpool":
            k = layer[1]
            n, c, h, w = x.shape
            x = x.reshape(n, c, h // k, k, w // k, k).mean(axis=(3, 5))
    if last[0] != "gemm":
        raise ValueError(f"the head ends in {last[0]}, not a linear layer")
    g = last[1][index][None].astype(np.float32)
    for layer, a in zip(reversed(body), reversed(inputs)):
        kind = layer[0]
        if kind == "gemm":
            g = g @ layer[1]
        elif kind == "relu":
            g = g * (a > 0)
        elif kind == "flatten":
            g = g.reshape(a.shape)
        elif kind == "gap":
            g = np.broadcast_to(g / (a.shape[2] * a.shape[3]), a.shape)
        elif kind == "avgpool":
            k = layer[1]
            g = np.repeat(np.repeat(g, k, axis=2), k, axis=3) / (k * k)
    return np.ascontiguousarray(g[0], dtype=np.float32)


class HeadGradients:
    """The gradient source of one classifier, made on first use (reading an ONNX head parses
    the fp32 graph once: VGG-16's keeps about 400 MB of head weights in memory)."""

    def __init__(self, clf: Any):
        self.clf = clf
        self._fn: Gradient | None = None
        self._lock = threading.Lock()

    def __call__(self, features: np.ndarray, index: int) -> np.ndarray:
        if self._fn is None:
            with self._lock:
                if self._fn is None:
                    self._fn = self._make()
        return self._fn(features, index)

    def _make(self) -> Gradient:
        engine = self.clf.engine
        if hasattr(engine, "class_gradient"):  # the torch engine: autograd on its own head
            return engine.class_gradient
        from ..engines.onnx_files import onnx_model
        from ..graph.head import head_layers

        layers = head_layers(onnx_model(self.clf.spec, self.clf.weights, "fp32"))
        return lambda features, index: head_gradient(layers, features, index)


# --- which class -----------------------------------------------------------------------------
def resolve_target(target: int | str) -> int:
    """A class index from an index, a wnid, or a name in English or Chinese (``wanwu.labels``);
    ``UnknownLabelError`` / ``AmbiguousLabelError`` say what to type instead."""
    text = str(target).strip()
    return resolve_class(int(text) if text.isdigit() else text).index


# --- back to the photo -------------------------------------------------------------------------
def crop_box(width: int, height: int, prep: Preprocessing) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) in the original image's pixels of what the model saw: the
    center crop of the resized image (``wanwu.imaging.preprocess``), clipped to the image."""
    new_w, new_h, left, top = resize_geometry(width, height, prep)
    sx, sy, c = width / new_w, height / new_h, prep.crop_size
    return (
        max(0.0, left * sx),
        max(0.0, top * sy),
        min(float(width), (left + c) * sx),
        min(float(height), (top + c) * sy),
    )


def _interpolation(n_out: int, extent: float, lo: float, hi: float, cells: int) -> np.ndarray:
    """(n_out, cells) bilinear weights (half-pixel centres, edges clamped) that sample a row of
    ``cells`` values spread over [lo, hi) at the centres of ``n_out`` pixels covering [0, extent);
    rows of pixels outside [lo, hi) are 0."""
    centre = (np.arange(n_out) + 0.5) * (extent / n_out)
    u = (centre - lo) / max(hi - lo, 1e-9)
    f = np.clip(u * cells - 0.5, 0, cells - 1)
    i0 = np.floor(f).astype(int)
    i1 = np.minimum(i0 + 1, cells - 1)
    w1 = f - i0
    m = np.zeros((n_out, cells))
    rows = np.arange(n_out)
    np.add.at(m, (rows, i0), 1 - w1)
    np.add.at(m, (rows, i1), w1)
    m[(u < 0) | (u >= 1)] = 0.0
    return m


def map_to_image(
    cam: np.ndarray, width: int, height: int, box: tuple[float, float, float, float], out_w: int, out_h: int
) -> np.ndarray:
    """The (h, w) map over the crop ``box`` -> (out_h, out_w) covering the whole width x height
    image, bilinearly upsampled, 0 outside the box."""
    left, top, right, bottom = box
    rows = _interpolation(out_h, height, top, bottom, cam.shape[0]).astype(np.float32)
    cols = np.ascontiguousarray(_interpolation(out_w, width, left, right, cam.shape[1]).T, dtype=np.float32)
    return np.clip((rows @ cam.astype(np.float32)) @ cols, 0.0, 1.0)  # contiguous operands: BLAS, not a slow path


def grid_shape(width: int, height: int, cells: int = HEATMAP_CELLS) -> tuple[int, int]:
    """(rows, columns) of a grid whose longer side has ``cells`` cells, in the image's aspect."""
    if width >= height:
        return max(1, round(cells * height / width)), cells
    return cells, max(1, round(cells * width / height))


def labelled(prediction: Prediction, lang: str) -> dict:
    """A prediction as JSON with its label in ``lang`` (and ``label_en``, ``label_zh``)."""
    return prediction.to_dict(lang)


@dataclass
class Explanation:
    """One image's predictions and the class activation map of ``target``."""

    name: str
    predictions: list[Prediction]
    target: Prediction
    cam: np.ndarray  # (h, w) in [0, 1] over the model's crop
    width: int  # the original image, as displayed (EXIF rotation applied)
    height: int
    crop: tuple[float, float, float, float]  # what the model saw, in original pixels
    image: Image.Image | None = field(default=None, repr=False)  # decoded (maybe at a reduced JPEG scale)
    timing: Timing = field(default_factory=Timing)

    def heatmap(self, out_w: int | None = None, out_h: int | None = None) -> np.ndarray:
        """The map over the whole original image at (out_h, out_w) (default: its full size)."""
        return map_to_image(self.cam, self.width, self.height, self.crop, out_w or self.width, out_h or self.height)

    def grid(self, cells: int = HEATMAP_CELLS) -> np.ndarray:
        rows, cols = grid_shape(self.width, self.height, cells)
        return self.heatmap(cols, rows)

    def to_dict(self, cells: int = HEATMAP_CELLS, lang: str = "en") -> dict:
        """The JSON answer: labels in ``lang``, ``heatmap`` rows top to bottom over the whole image."""
        left, top, right, bottom = self.crop
        return {
            "filename": self.name,
            "width": self.width,
            "height": self.height,
            "predictions": [labelled(p, lang) for p in self.predictions],
            "target": labelled(self.target, lang),
            "crop": {
                "left": round(left, 2),
                "top": round(top, 2),
                "right": round(right, 2),
                "bottom": round(bottom, 2),
            },
            "heatmap": [[round(float(v), 4) for v in row] for row in self.grid(cells)],
            "timing_ms": {k: round(v, 3) for k, v in self.timing.as_ms().items()},
        }
