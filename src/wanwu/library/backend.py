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
import logging
import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator, Protocol

import numpy as np

from ..engines import DEFAULT_BATCH_SIZE, default_threads
from ..errors import EngineError, ImageInputError, UnreadableFileError
from ..stages import ImageResult, Prepared
from .embeddings import pooled, sharpness
from .files import DEFAULT_MAX_FILE_MB, open_regular, sha256_of, too_large
from .metadata import Embedded, read_embedded

log = logging.getLogger("wanwu")


@dataclass
class FileFacts:
    """What a file's bytes say, besides the labels."""

    sha256: str
    taken: str | None = None
    camera: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    keywords: list | None = None  # ``xmp.Keyword``s of the file's own XMP/IPTC; None: not read

    def take(self, meta: Embedded) -> None:
        """Take what the file's metadata says (``metadata.read_embedded``)."""
        self.taken, self.camera, self.keywords = meta.taken, meta.camera, meta.keywords
        self.latitude, self.longitude = meta.latitude, meta.longitude


@dataclass
class Classified:
    path: str
    result: ImageResult  # predictions, width x height; or ``error``
    facts: FileFacts | None  # None when the file could not even be read
    faces: list | None = None  # ``wanwu.faces.detect.Face`` list; None: not looked for
    embedding: np.ndarray | None = None  # the pooled features of the same forward pass (unit length)
    sharpness: float | None = None  # embeddings.sharpness of the model input


class ClassifyBackend(Protocol):
    """Classify files, yielding a ``Classified`` for each as it is ready, in any order. ``stop``
    (optional) asks it to read no further files."""

    def classify(self, paths: Iterable[str]) -> Iterator[Classified]: ...

    def close(self) -> None: ...


def file_sha256(path: str) -> str:
    """SHA-256 of a regular file, streamed; ``NotARegularFileError`` for a FIFO, device ..."""
    return sha256_of(path)


def tagger_name(model: str, precision: str, weights_sha256: str) -> str:
    """What identifies the tags a model makes: ``model/precision/weights-hash-prefix``. A photo
    tagged by another tagger is re-tagged by the next ``wanwu index``. The engine is not part of
    it: ONNX Runtime, OpenVINO and torch give the same labels (tests/test_engines_parity.py)."""
    return f"{model}/{precision}/{weights_sha256[:12]}"


class _ByteBudget:
    """At most ``limit`` bytes of files held at once by the reading threads; a file bigger than
    what is free waits until the others are done (one bigger than ``limit`` is read alone)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, n: int) -> Iterator[None]:
        with self._cond:
            while self.used and self.used + n > self.limit:
                self._cond.wait()
            self.used += n
        try:
            yield
        finally:
            with self._cond:
                self.used -= n
                self._cond.notify_all()


class LocalBackend:
    """The wanwu pipeline on this machine. At most ``window`` files are read or decoded ahead
    of inference, and at most ``max_file_bytes`` of file bytes are held at once, so memory stays
    bounded however many and however big the files. Only regular files up to ``max_file_bytes``
    are read (others are per-file errors: ``file_too_large``, ``not_a_regular_file``).

    Forward passes run on ``passes`` threads at once (default: the cores over the engine's
    intra-op threads), beside the ``threads`` decoding ones. ``wanwu index`` gives the engine one
    intra-op thread and runs one pass per core: no intra-op thread then spins or waits for
    another while decoding needs the core (at two intra-op threads a pass cost 1.7-2x the CPU of
    one thread on the shared 2-core machine; benchmarks/index_throughput.py)."""

    def __init__(
        self,
        classifier,
        top_k: int,
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int = 2,
        max_file_bytes: int = DEFAULT_MAX_FILE_MB * 1_000_000,
        faces=None,
        passes: int | None = None,
    ):
        self.classifier = classifier
        self.faces = faces  # a ``wanwu.faces.detect.FaceFinder``: faces found in the decoded image
        self.stages = classifier.stages
        self.top_k = top_k
        self.batch_size = batch_size
        self.window = batch_size * 2 + threads
        self.max_file_bytes = max_file_bytes
        self.budget = _ByteBudget(max_file_bytes)
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="wanwu-index")
        if passes is None:
            passes = max(1, default_threads() // max(1, getattr(classifier.engine, "threads", None) or 1))
        self.passes = passes
        self.infer_pool = (
            ThreadPoolExecutor(max_workers=passes, thread_name_prefix="wanwu-infer") if passes > 1 else None
        )
        self._stop = threading.Event()

    def _front(self, path: str) -> tuple[Classified, Prepared | None]:
        """Read, hash, decode (the pixel count checked from the header before anything else
        reads the image), then EXIF."""

        def failed(error: ImageInputError, facts: FileFacts | None = None) -> tuple[Classified, None]:
            return Classified(path, ImageResult(path, error=error), facts), None

        try:
            fd, st = open_regular(path)
        except ImageInputError as exc:
            return failed(exc)
        except OSError as exc:
            return failed(UnreadableFileError(f"cannot read {path}: {exc.strerror or exc}"))
        with os.fdopen(fd, "rb") as f:
            if st.st_size > self.max_file_bytes:
                return failed(too_large(path, st.st_size, self.max_file_bytes))
            with self.budget.hold(st.st_size):
                try:
                    data = f.read(self.max_file_bytes + 1)
                except OSError as exc:
                    return failed(UnreadableFileError(f"cannot read {path}: {exc.strerror or exc}"))
                if len(data) > self.max_file_bytes:  # grew since the stat
                    return failed(too_large(path, len(data), self.max_file_bytes))
                facts = FileFacts(hashlib.sha256(data).hexdigest())
                try:
                    prepared = self.stages.front(data, path, keep_image=self.faces is not None)
                except ImageInputError as exc:
                    return failed(exc, facts)
                facts.take(read_embedded(data))
        found = None
        if prepared.image is not None and not self._stop.is_set():  # stopping: faces are found next run
            try:
                found = self.faces.find(prepared.image)
            except Exception as exc:  # no faces this time (looked for again next run), never a failed photo
                log.warning("wanwu: faces: %s: %s", path, exc)
            prepared.image = None  # the pixels go now, not after the batch's inference
        result = ImageResult(path, width=prepared.width, height=prepared.height)
        item = Classified(path, result, facts, found)
        item.sharpness = sharpness(prepared.x)
        return item, prepared

    def classify(self, paths: Iterable[str]) -> Iterator[Classified]:
        pending: deque[Future] = deque()
        passes: deque[Future[list[Classified]]] = deque()  # batches in their forward pass
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
                if self.infer_pool is None:
                    yield from self._finish(batch)
                else:
                    passes.append(self.infer_pool.submit(self._finish, batch))
                    while len(passes) >= self.passes or (passes and passes[0].done()):
                        yield from passes.popleft().result()
                batch = []
        if batch:
            yield from self._finish(batch)
        while passes:
            yield from passes.popleft().result()

    def _finish(self, batch: list[tuple[Classified, Prepared | None]]) -> list[Classified]:
        ready = [(c, p) for c, p in batch if p is not None]
        if ready:
            logits, vectors = self._infer(np.stack([p.x for _, p in ready]))
            predictions, _ = self.stages.back(logits, self.top_k)
            for i, ((c, _), preds) in enumerate(zip(ready, predictions)):
                c.result.predictions = preds
                c.embedding = None if vectors is None else vectors[i]
        return [c for c, _ in batch]

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
        if self.infer_pool is not None:
            self.infer_pool.shutdown(wait=True, cancel_futures=True)
