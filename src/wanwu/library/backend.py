"""The one step of indexing that can run elsewhere: classify files. Everything else (walk,
incremental planning, catalogue writes, sidecars) stays in the indexer.

A backend takes paths and yields one ``Classified`` per path, in any order. ``LocalBackend``
runs the wanwu pipeline here (``Runner.run_many``: threaded decode with JPEG draft decoding,
batched inference); ``ray_backend.RayBackend`` (``--ray``) runs one ``LocalBackend`` per Ray actor on
a cluster's workers. Each file is read once: its bytes are hashed, their EXIF read and decoded
from memory; its one forward pass gives both the tags and the embedding (``embeddings.py``).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator, Protocol

import numpy as np

from ..engines import DEFAULT_BATCH_SIZE, passes_at_once
from ..environment import DEFAULT_MAX_FILE_MB
from ..errors import ImageInputError, UnreadableFileError
from ..pipeline.results import ImageResult
from ..pipeline.runner import Prepared
from .embeddings import pooled, sharpness
from .files import open_regular, sha256_of, too_large
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
    """The wanwu pipeline on this machine: ``Runner.run_many`` with the indexer's hooks. Each
    file is opened once (``_read``: its bytes and their hash); once it is decoded, ``_inspect``
    reads the EXIF from those bytes, the sharpness of the model input and the faces in the
    decoded image before the pixels go; the forward pass also gives the feature map that
    becomes the embedding. At most ``window`` files are read or
    decoded ahead of inference, and at most ``max_file_bytes`` of file bytes are held at once,
    so memory stays bounded however many and however big the files. Only regular files up to
    ``max_file_bytes`` are read (others are per-file errors: ``file_too_large``,
    ``not_a_regular_file``).

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
        self.runner = classifier.runner
        self.top_k = top_k
        self.batch_size = batch_size
        self.threads = threads
        self.window = batch_size * 2 + threads
        self.max_file_bytes = max_file_bytes
        self.budget = _ByteBudget(max_file_bytes)
        if passes is None:
            passes = passes_at_once(classifier.engine)
        self.passes = passes
        self._stop = threading.Event()

    @contextmanager
    def _read(self, path: str) -> Iterator[tuple[bytes, Classified]]:
        """The runner's ``read`` hook: open a regular file once, read and hash its bytes (held
        within the byte budget until the image is prepared and inspected). Problems raise
        ``ImageInputError``."""
        try:
            fd, st = open_regular(path)
        except ImageInputError:  # not a regular file, or missing (some are OSErrors too): as they are
            raise
        except OSError as exc:
            raise UnreadableFileError(f"cannot read {path}: {exc.strerror or exc}") from None
        with os.fdopen(fd, "rb") as f:
            if st.st_size > self.max_file_bytes:
                raise too_large(path, st.st_size, self.max_file_bytes)
            with self.budget.hold(st.st_size):
                try:
                    data = f.read(self.max_file_bytes + 1)
                except OSError as exc:
                    raise UnreadableFileError(f"cannot read {path}: {exc.strerror or exc}") from None
                if len(data) > self.max_file_bytes:  # grew since the stat
                    raise too_large(path, len(data), self.max_file_bytes)
                yield data, Classified(path, ImageResult(path), FileFacts(hashlib.sha256(data).hexdigest()))

    def _inspect(self, data: bytes, prepared: Prepared, item: Classified) -> None:
        """The runner's ``inspect`` hook, once the file decoded (so within the pixel limit): its
        EXIF, the sharpness of the model input, and faces in the decoded image."""
        assert item.facts is not None
        item.facts.take(read_embedded(data))
        item.sharpness = sharpness(prepared.x)
        if self.faces is not None and prepared.image is not None and not self._stop.is_set():
            try:  # stopping: faces are found next run
                item.faces = self.faces.find(prepared.image)
            except Exception as exc:  # no faces this time (looked for again next run), never a failed photo
                log.warning("wanwu: faces: %s: %s", prepared.name, exc)

    def classify(self, paths: Iterable[str]) -> Iterator[Classified]:
        unstopped = itertools.takewhile(lambda _: not self._stop.is_set(), paths)
        for ran in self.runner.run_many(
            unstopped,
            self.top_k,
            self.batch_size,
            self.threads,
            window=self.window,
            read=self._read,
            inspect=self._inspect,
            features=True,
            passes=self.passes,
        ):
            item = ran.facts if ran.facts is not None else Classified(ran.source, ran.result, None)
            item.result = ran.result
            item.embedding = None if ran.features is None else pooled(ran.features[None])[0]
            yield item

    def stop(self) -> None:
        """Read no further files; what is in flight still comes out of ``classify``."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
