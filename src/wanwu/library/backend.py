"""The one step of indexing that can run elsewhere: classify files. Everything else (walk,
incremental planning, catalogue writes, sidecars) stays in the indexer.

A backend takes paths and yields one ``Classified`` per path, in any order. ``LocalBackend``
runs the wanwu pipeline here (``Stages``: threaded decode with JPEG draft decoding, batched
inference); ``ray_backend.RayBackend`` (``--ray``) runs one ``LocalBackend`` per Ray actor on
a cluster's workers. Each file is read once: its bytes are hashed, their EXIF read and decoded
from memory; its one forward pass gives both the tags and the embedding (``embeddings.py``).
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Iterator, Protocol

import numpy as np

from ..errors import EngineError, ImageInputError
from ..stages import ImageResult, Prepared
from .embeddings import pooled, sharpness


@dataclass
class FileFacts:
    """What a file's bytes say, besides the labels."""

    sha256: str
    taken: str | None = None
    camera: str | None = None


@dataclass
class Classified:
    path: str
    result: ImageResult  # predictions, width x height; or ``error``
    facts: FileFacts | None  # None when the file could not even be read
    embedding: np.ndarray | None = None  # the pooled features of the same forward pass (unit length)
    sharpness: float | None = None  # embeddings.sharpness of the model input


class ClassifyBackend(Protocol):
    """Classify files, yielding as results are ready, in any order: a ``Classified`` each, or a
    plain ``(path, ImageResult)`` pair (the indexer then hashes the file itself, on this
    machine). ``stop`` (optional) asks it to read no further files."""

    def classify(self, paths: Iterable[str]) -> Iterator[Classified | tuple[str, ImageResult]]: ...

    def close(self) -> None: ...


def as_classified(item: Classified | tuple[str, ImageResult]) -> Classified:
    """A backend's answer as a ``Classified``: facts read from the file when the backend gave none."""
    if isinstance(item, Classified):
        return item
    path, result = item
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return Classified(path, result, None)
    return Classified(path, result, FileFacts(hashlib.sha256(data).hexdigest(), *read_exif(data)))


def file_sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def read_exif(data: bytes) -> tuple[str | None, str | None]:
    """(date taken as ISO 8601, "Make Model") from the EXIF of image bytes, when present."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            exif = img.getexif()
            sub = exif.get_ifd(0x8769)  # Exif IFD: DateTimeOriginal lives there
    except Exception:
        return None, None
    when = sub.get(0x9003) or exif.get(0x0132)  # DateTimeOriginal, else DateTime
    taken = None
    if isinstance(when, str) and len(when) >= 19 and when[4] == ":":
        taken = when[:10].replace(":", "-") + "T" + when[11:19]
    make, model = (str(exif.get(t) or "").strip("\x00 ") for t in (0x010F, 0x0110))
    camera = model if model.startswith(make) else f"{make} {model}".strip()
    return taken, camera or None


def tagger_name(model: str, precision: str, weights_sha256: str) -> str:
    """What identifies the tags a model makes: ``model/precision/weights-hash-prefix``. A photo
    tagged by another tagger is re-tagged by the next ``wanwu index``. The engine is not part of
    it: ONNX Runtime, OpenVINO and torch give the same labels (tests/test_engines_parity.py)."""
    return f"{model}/{precision}/{weights_sha256[:12]}"


class UnreadableFileError(ImageInputError):
    code = "unreadable"
    http_status = 422


class LocalBackend:
    """The wanwu pipeline on this machine. At most ``window`` files are read or decoded ahead
    of inference, so memory stays bounded however many paths come in."""

    def __init__(self, classifier, top_k: int, batch_size: int = 8, threads: int = 2):
        self.classifier = classifier
        self.stages = classifier.stages
        self.top_k = top_k
        self.batch_size = batch_size
        self.window = batch_size * 2 + threads
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="wanwu-index")
        precision = getattr(classifier.engine, "precision", None) or "fp32"
        self.tagger = tagger_name(classifier.model_name, precision, classifier.weights.sha256)
        self._stop = threading.Event()

    def _front(self, path: str) -> tuple[Classified, Prepared | None]:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            error = UnreadableFileError(f"cannot read {path}: {exc.strerror or exc}")
            return Classified(path, ImageResult(path, error=error), None), None
        facts = FileFacts(hashlib.sha256(data).hexdigest(), *read_exif(data))
        try:
            prepared = self.stages.front(data, path)
        except ImageInputError as exc:
            return Classified(path, ImageResult(path, error=exc), facts), None
        found = Classified(path, ImageResult(path, width=prepared.width, height=prepared.height), facts)
        found.sharpness = sharpness(prepared.x)
        return found, prepared

    def classify(self, paths: Iterable[str]) -> Iterator[Classified]:
        pending: deque[Future] = deque()
        batch: list[tuple[Classified, Prepared | None]] = []
        it = iter(paths)
        exhausted = False
        while True:
            while not exhausted and len(pending) < self.window and not self._stop.is_set():
                path = next(it, None)
                if path is None:
                    exhausted = True
                    break
                pending.append(self.pool.submit(self._front, path))
            if not pending:
                break
            batch.append(pending.popleft().result())
            if len(batch) >= self.batch_size or (not pending and (exhausted or self._stop.is_set())):
                yield from self._finish(batch)
                batch = []
        if batch:
            yield from self._finish(batch)

    def _finish(self, batch: list[tuple[Classified, Prepared | None]]) -> Iterator[Classified]:
        ready = [(c, p) for c, p in batch if p is not None]
        if ready:
            logits, vectors = self._infer(np.stack([p.x for _, p in ready]))
            predictions, _ = self.stages.back(logits, self.top_k)
            for i, ((c, _), preds) in enumerate(zip(ready, predictions)):
                c.result.predictions = preds
                c.embedding = None if vectors is None else vectors[i]
        for c, _ in batch:
            yield c

    def _infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """One forward pass: logits and the pooled embeddings (None from an engine whose model has
        no feature output; the photos are then tagged without one)."""
        try:
            logits, features = self.classifier.infer_with_features(batch)
        except EngineError:
            return self.stages.infer_timed(batch)[0], None
        return logits, pooled(features)

    def stop(self) -> None:
        """Read no further files; what is in flight still comes out of ``classify``."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
