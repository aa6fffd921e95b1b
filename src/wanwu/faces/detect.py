"""``FaceFinder``: an already decoded, upright RGB image -> the faces in it.

1. detect: by default MediaPipe's BlazeFace full range (``blazeface``: the whole image
   letterboxed into 192x192, a small CNN in ONNX Runtime); or dlib's HOG frontal detector on a
   grey copy whose longer side is at most ``WORK_SIDE`` (no upsampling), ``WANWU_FACE_DETECTOR=hog``;
2. landmarks (5 points) and the descriptor on the image as given (sharper than the working
   copy: the indexer hands over its draft-decoded image, about 1000 px on the longer side for
   a 12 MP JPEG), from a 150 px aligned chip, read from a crop of the face and one face size
   around it (the same numbers as from the whole image, without copying all of it).

Which detector (``benchmarks/faces.py``; 2026-12-03, a shared 2-core machine with AVX-512, load
average 0.8-1.6 from another engineer's work, so CPU times, interleaved photo by photo):
- ../shared/faces (16 photos, 18 faces): both find every face the README lists, and no more;
  descriptors of one person stay 0.05-0.43 apart (HOG: 0.06-0.43), of two people 0.69 or more
  (HOG: 0.70): the clustering thresholds (0.5, 0.6) hold. A face's descriptor from the
  BlazeFace box is within 0.05 (median; at most 0.1) of the one from the HOG box.
- small faces, pasted into 1000x750 photos (the indexer's draft of 12 MP): BlazeFace finds
  every face 70 px wide, 16 of 18 at 55 px, 5 at 45; HOG at 640 finds 12 of 18 at 90 px and
  none at 70 (at 640 it needs ~80 px; 800 px and more also find the child half hidden in
  obama_and_biden.jpg, 560 loses a clear face).
- false faces: on ../shared/imagenet-100, HOG marks 6 photos (5 with real faces, and a pill
  bottle), BlazeFace 11 (8 with real faces: it also finds two bobsledders, a helmeted football
  player, a basketball player; and 3 without: flamingos, a pencil sharpener, a traffic light,
  scored 0.53-0.58, where the real faces there scored 0.64 or more).
- CPU per 12 MP photo (12 photos, 14 faces): detection alone 5.5-5.7 ms (the network ~3.8 of
  it) against HOG's 21-23 at 640 (34 at 800); a whole ``find`` 13-14 ms against 29-32 (the
  descriptors ~5 ms a face, the landmarks ~1); the classifier's decode + inference 29-33 ms.
  ``wanwu index`` of 48 12 MP photos (``--index 48``, runs alternating; three invocations of
  3, 5 and 7 rounds): faces add +45-50% wall (best runs; medians +45-47%) and +41-42% CPU with
  BlazeFace, +105-113% wall and +81-84% CPU with HOG: issue 21's goal (<= +50%) is met, just.
  Again on a quiet machine (nothing else running, ``--index 48 --rounds 5``): +46% wall (best
  runs), +49% (medians), +46% CPU with BlazeFace; +113% / +113% / +87% with HOG; peak RSS
  347 MB (310 without faces).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..environment import FACE_DETECTORS, env_value
from .blazeface import BlazeFace
from .descriptor import DESCRIPTOR_SIZE, OnnxDescriptor
from .models import DESCRIPTOR_FILE, LANDMARKS_FILE, require_faces

log = logging.getLogger("wanwu.faces")

WORK_SIDE = 640  # longer side of the image HOG sees (see above)
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

    def __init__(
        self,
        work_side: int = WORK_SIDE,
        max_faces: int = MAX_FACES,
        dlib_descriptor: bool = False,
        detector: str | None = None,
    ):
        """``detector``: "blazeface" or "hog" (dlib's HOG on the grey copy of longer side
        ``work_side``); None: the ``WANWU_FACE_DETECTOR`` setting. ``dlib_descriptor=True``
        computes descriptors with dlib itself (the reference, for tests and
        ``benchmarks/faces.py``); the default runs the same network in ONNX Runtime."""
        if detector is None:
            detector = env_value("face_detector")
        elif detector not in FACE_DETECTORS:
            raise ValueError(f"unknown face detector {detector!r}: one of {', '.join(FACE_DETECTORS)}")
        folder = require_faces()
        import dlib

        self._dlib = dlib
        self.work_side = work_side
        self.max_faces = max_faces
        self.detector = detector
        self._detect: Callable[[Image.Image], list[tuple[float, float, float, float]]]
        if detector == "hog":
            self._hog = _frontal_face_detector(dlib)
            self._detect = self._hog_boxes
        else:
            self._detect = BlazeFace().boxes
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

    def boxes(self, image: Image.Image) -> list[tuple[int, int, int, int]]:
        """Face boxes (left, top, right, bottom) in ``image``'s pixels (RGB, upright), clipped to
        it, largest first: what the landmarks start from."""
        width, height = image.size
        boxes = []
        for left, top, right, bottom in self._detect(image):
            box = (max(0, int(left)), max(0, int(top)), min(width - 1, int(right)), min(height - 1, int(bottom)))
            if box[2] > box[0] and box[3] > box[1]:
                boxes.append(box)
        boxes.sort(key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)
        return boxes

    def _hog_boxes(self, image: Image.Image) -> list[tuple[float, float, float, float]]:
        small, scale = self.detection_copy(image)
        with self._lock:  # dlib's detector keeps per-call state
            rects = self._hog(small, 0)
        return [(r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale) for r in rects]

    def find(self, image: Image.Image) -> list[Face]:
        """Faces in ``image`` (RGB, upright), largest first."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = image.size
        if width < 16 or height < 16:
            return []
        boxes = self.boxes(image)[: self.max_faces]
        dlib = self._dlib
        shapes, chips, offsets = [], [], []
        with self._lock:
            for left, top, right, bottom in boxes:
                # the face and a margin of one box size: all the landmarks and the chip read (the
                # chip spans 1.5 faces, turned at most 45 degrees: 0.56 box sizes past the box);
                # the same numbers as from the whole image, without copying all of it (~1 ms)
                m = max(right - left, bottom - top)
                x0, y0 = max(0, left - m), max(0, top - m)
                pixels = np.asarray(image.crop((x0, y0, min(width, right + m + 1), min(height, bottom + m + 1))))
                shape = self._landmarks(pixels, dlib.rectangle(left - x0, top - y0, right - x0, bottom - y0))
                shapes.append(shape)
                chips.append(dlib.get_face_chip(pixels, shape, size=CHIP_SIZE, padding=CHIP_PADDING))
                offsets.append((x0, y0))
            descriptors = self._describe(chips)  # all faces of the photo in one run
        faces = []
        for (left, top, right, bottom), shape, (x0, y0), descriptor in zip(boxes, shapes, offsets, descriptors):
            points = tuple(
                ((shape.part(i).x + x0) / width, (shape.part(i).y + y0) / height) for i in range(shape.num_parts)
            )
            box = (left / width, top / height, (right - left) / width, (bottom - top) / height)
            faces.append(Face(box, points, np.asarray(descriptor, dtype=np.float32)))
        return faces
