"""``FaceFinder``: an already decoded, upright RGB image -> the faces in it.

1. detect on a copy whose longer side is at most ``WORK_SIDE`` (dlib's HOG frontal detector,
   no upsampling): it finds faces of about 80 px and more at that size;
2. landmarks (5 points) and the descriptor on the image as given (sharper than the working
   copy: the indexer hands over its draft-decoded image, about 1000 px on the longer side for
   a 12 MP JPEG), from a 150 px aligned chip.

Measured on ../shared/faces (16 photos, 18 faces; a loaded 2-core machine, so only roughly),
detecting on the grey copy: longer side 400 missed a face in two photos, 560 one of the two
clear faces of obama_and_biden.jpg; 600 and 640 find every portrait's face and both faces of
each group photo; 800 and more also find the child half hidden in obama_and_biden.jpg. We detect
at 640, which keeps a margin over 560.

Cost, CPU per 12 MP photo (``benchmarks/faces.py --dlib``, 14 faces in 12 photos, load average
2.5): the grey copy and HOG 33 ms at 640 (48 at 800; an RGB copy cost ~20% more); the
descriptor ~11 ms a face in ONNX Runtime (``descriptor.OnnxDescriptor``: dlib's network and
numbers, where dlib-bin's ``compute_face_descriptor``, built without BLAS, costs ~110-180 ms); a
whole ``find`` 52 ms, against 203 ms with dlib's descriptor in the same run. That is +73% of
the classifier's 71 ms (decode 28 + inference 43): the +50% goal is not met, and HOG is now
most of what is left.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from .descriptor import DESCRIPTOR_SIZE, OnnxDescriptor
from .models import DESCRIPTOR_FILE, LANDMARKS_FILE, require_faces

log = logging.getLogger("wanwu.faces")

WORK_SIDE = 640  # longer side of the image the detector sees (see above)
MAX_FACES = 20  # a crowd: the largest 20 faces get descriptors, the rest are not counted
CHIP_SIZE = 150  # what dlib's ResNet expects
CHIP_PADDING = 0.25


@dataclass(frozen=True)
class Face:
    """One face. ``box`` is (left, top, width, height) and ``landmarks`` five (x, y) points,
    all as fractions (0-1) of the upright image's width and height; ``descriptor`` 128 float32."""

    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]
    descriptor: np.ndarray


def _frontal_face_detector(dlib):
    """dlib's HOG frontal face detector. ``get_frontal_face_detector`` parses it from text built
    into dlib: ~0.85 s of CPU at every start, 70 ms a photo for a 12-photo ``wanwu index``. Saved
    once in dlib's binary form under the cache dir (checksummed like the ONNX graphs), it loads
    in ~3 ms and detects the same boxes with the same scores."""
    import tempfile

    from ..engines.onnx_cache import cached
    from ..paths import cache_dir

    path = cache_dir() / "faces" / f"frontal_face_detector-dlib{dlib.__version__}.svm"
    built = []

    def build() -> bytes:
        built.append(dlib.get_frontal_face_detector())
        with tempfile.TemporaryDirectory() as tmp:
            built[0].save(f"{tmp}/detector.svm")
            return Path(tmp, "detector.svm").read_bytes()

    cached(path, build)
    if built:  # built just now (and stored, unless the cache is read-only)
        return built[0]
    try:
        return dlib.fhog_object_detector(str(path))
    except RuntimeError as exc:  # checksum right but dlib cannot read it: built again next time
        log.warning("cannot load the cached face detector %s (%s); using dlib's built-in one", path, exc)
        path.unlink(missing_ok=True)
        return dlib.get_frontal_face_detector()


class FaceFinder:
    """Loads the weights once (~30 MB). ``find`` may be called from any thread: calls are
    serialised (dlib's networks keep per-call state)."""

    def __init__(self, work_side: int = WORK_SIDE, max_faces: int = MAX_FACES, dlib_descriptor: bool = False):
        """``dlib_descriptor=True`` computes descriptors with dlib itself (the reference, for
        tests and ``benchmarks/faces.py``); the default runs the same network in ONNX Runtime."""
        folder = require_faces()
        import dlib

        self._dlib = dlib
        self.work_side = work_side
        self.max_faces = max_faces
        self._detector = _frontal_face_detector(dlib)
        self._landmarks = dlib.shape_predictor(str(folder / LANDMARKS_FILE))
        self._describe: Callable[[list[np.ndarray]], np.ndarray]
        if dlib_descriptor:
            network = dlib.face_recognition_model_v1(str(folder / DESCRIPTOR_FILE))
            self._describe = lambda chips: np.array(
                [network.compute_face_descriptor(c) for c in chips], dtype=np.float32
            ).reshape(len(chips), DESCRIPTOR_SIZE)
        else:
            self._describe = OnnxDescriptor(folder / DESCRIPTOR_FILE).describe
        self._lock = threading.Lock()

    def detection_copy(self, image: Image.Image) -> tuple[np.ndarray, float]:
        """What HOG looks at: a grey copy whose longer side is at most ``work_side``, and its
        scale. Grey as dlib's own C++ example (face_detection_ex) runs this detector: ~20% less
        CPU than RGB, where HOG takes each pixel's strongest channel gradient."""
        width, height = image.size
        scale = min(1.0, self.work_side / max(width, height))
        grey = image.convert("L")
        if scale < 1:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            grey = grey.resize(size, Image.Resampling.BILINEAR)
        return np.asarray(grey), scale

    def find(self, image: Image.Image) -> list[Face]:
        """Faces in ``image`` (RGB, upright), largest first."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = image.size
        if width < 16 or height < 16:
            return []
        small, scale = self.detection_copy(image)
        full = np.asarray(image)
        dlib = self._dlib
        with self._lock:
            rects = self._detector(small, 0)
            boxes = []
            for r in rects:
                left, top = max(0, int(r.left() / scale)), max(0, int(r.top() / scale))
                right, bottom = min(width - 1, int(r.right() / scale)), min(height - 1, int(r.bottom() / scale))
                if right > left and bottom > top:
                    boxes.append((left, top, right, bottom))
            boxes.sort(key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)
            shapes = [self._landmarks(full, dlib.rectangle(*b)) for b in boxes[: self.max_faces]]
            chips = [dlib.get_face_chip(full, s, size=CHIP_SIZE, padding=CHIP_PADDING) for s in shapes]
            descriptors = self._describe(chips)  # all faces of the photo in one run
        faces = []
        for (left, top, right, bottom), shape, descriptor in zip(boxes, shapes, descriptors):
            points = tuple((shape.part(i).x / width, shape.part(i).y / height) for i in range(shape.num_parts))
            box = (left / width, top / height, (right - left) / width, (bottom - top) / height)
            faces.append(Face(box, points, np.asarray(descriptor, dtype=np.float32)))
        return faces
