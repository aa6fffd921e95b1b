"""The classify step of ``wanwu index`` on a Ray cluster (``--ray ADDRESS|auto|local``).

Only classification moves: the driver walks the tree and decides which files need tags (the
catalogue's incremental rules), hands their paths to ``RayBackend.classify`` and writes the
answers to the catalogue as they stream back. On the cluster, Ray Data runs

    from_items(paths) -> map_batches(_ClassifyActor, compute=ActorPoolStrategy(size=N))

where each actor holds one ``LocalBackend`` (one wanwu ``Classifier``, the one-machine
indexer's per-file step): it reads each file once, hashes it, reads its EXIF, decodes and
classifies it, so pixels never travel: paths go out, ~300 bytes of hash and tags and the
1,280-byte int8 embedding per photo come back (the bytes the catalogue stores). Files must be
readable at the same path on every node (a shared filesystem); a file a worker cannot read or
decode is that file's failure (``ImageResult.error``), never a failed job. An actor that cannot
make its Classifier (weights missing on a node) ends the job with that reason (``EngineError``);
a worker process, raylet or node that dies ends it too, in one line that says so
(``RayWorkerLostError``): Ray does not restart wanwu's actors.
Ray Data has no job checkpoint: results reach the driver block by block, so an interrupted run
keeps what the catalogue already has and the next run sends only the rest.

Ray is the optional extra ``wanwu-tagger[ray]``; nothing here imports it before ``RayBackend`` is made.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from ..engines import DEFAULT_BATCH_SIZE as INFER_BATCH  # forward passes inside an actor
from ..environment import env_value
from ..errors import ConfigError, EngineError, RayWorkerLostError, WanwuError
from ..install import pip_install
from ..pipeline.defaults import DEFAULT_TOP_K
from ..pipeline.results import ImageResult, Prediction, Timing
from .embeddings import decode, encode

log = logging.getLogger("wanwu")

INSTALL_HINT = f"--ray needs Ray: {pip_install('ray')}"

# Paths per map_batches call. Measured on this 2-core machine (docs/scale-out.md): 4 and 64
# were both slower than 16 (small batches pay Ray's per-task cost, large ones leave an actor
# idle at the end and make an interrupted run lose more work); 16 it is.
DEFAULT_BATCH_SIZE = 16


def ray_available() -> bool:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


def require_ray() -> Any:
    """Import Ray, or raise the one-line install hint (a ``ConfigError``: exit 2)."""
    if not ray_available():
        raise ConfigError(INSTALL_HINT)
    import ray

    return ray


# Ray resolves 127.0.0.1 given as the node address to the machine's own network address
# (services.resolve_ip_for_localhost), so `ray.init(_node_ip_address="127.0.0.1")` and
# `ray start --node-ip-address 127.0.0.1` alone still bind and connect on it (checked with
# `ss -tanp` on Ray 2.60). Ray keeps a node on loopback only where it thinks clusters are not
# supported (macOS, Windows), a switch this variable sets; its gRPC servers then bind to
# 127.0.0.1 too. Child processes read it from the environment, this process from the constant.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def pin_loopback() -> None:
    """Make the Ray node this process starts live on 127.0.0.1 only (before ``ray.init``), with
    a token of its own held in the environment: Ray's default would write ~/.ray/auth_token."""
    os.environ.update(LOOPBACK_ENV)
    if not any(k in os.environ for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")):
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
        # sets RAY_AUTH_MODE=token and refreshes the config Ray read when it was imported
        from ray._private.authentication.authentication_token_setup import _enable_token_auth

        _enable_token_auth()
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def connect(address: str, *, num_cpus: int | None = None, temp_dir: str | None = None) -> bool:
    """Join the Ray cluster at ``address`` unless this process already did; True if we joined
    (and so should leave). ``auto`` finds a cluster started with ``ray start`` on this node,
    ``HOST:PORT`` or ``ray://HOST:10001`` names one, ``local`` starts a private one-node Ray
    on 127.0.0.1 only, without dashboard: what the tests and the benchmark use."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    # wanwu works offline: Ray's usage report stays off unless the user turned it on
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # log_to_driver off: Ray would copy what its workers print to this process's stdout and
    # stderr, e.g. a worker's C++ stack trace when its raylet dies. wanwu's workers report
    # through their results; a failed job ends in one wanwu line naming Ray's logs folder.
    common: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if address == "local":
            pin_loopback()
            ray.init(
                num_cpus=num_cpus,
                _node_ip_address="127.0.0.1",
                include_dashboard=False,
                _temp_dir=temp_dir,
                **common,
            )
        else:
            ray.init(address=address, **common)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"--ray {address}: cannot join the Ray cluster: {exc}") from None
    return True


def _root_cause(exc: BaseException) -> str:
    """The last line of the innermost error Ray wrapped (a worker's traceback is in Ray's logs)."""
    while (cause := getattr(exc, "cause", None)) is not None and cause is not exc:
        exc = cause
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


def _lost(exc: BaseException) -> str | None:
    """What went away when ``exc`` (or what it wraps) says a Ray worker, raylet or node died,
    else None (e.g. wanwu's own error on a worker, such as an unknown model)."""
    from ray import exceptions as rx

    for _ in range(8):
        if isinstance(exc, (rx.ActorUnavailableError, rx.LocalRayletDiedError, rx.NodeDiedError)):
            return "a node stopped answering (its raylet died, or its machine or network went away)"
        if isinstance(exc, rx.OutOfMemoryError):
            return "Ray stopped a worker for lack of memory"
        if (isinstance(exc, rx.RayActorError) and not exc.actor_init_failed) or isinstance(exc, rx.WorkerCrashedError):
            return "a worker process died (killed, crashed, or out of memory)"
        if isinstance(exc, (rx.ObjectLostError, rx.RaySystemError)):
            return "part of it was lost with a worker or node"
        inner = getattr(exc, "cause", None) or exc.__cause__
        if inner is None or inner is exc:
            return None
        exc = inner
    return None


def _ray_logs() -> str:
    """`` (Ray's logs: DIR)`` for this driver's Ray session, when it has one here."""
    try:
        import ray

        node = ray._private.worker._global_node
        return f" (Ray's logs: {os.path.join(node.get_session_dir_path(), 'logs')})" if node is not None else ""
    except Exception:  # a private API: the message goes out without it
        return ""


def _raylet_errors_to_the_log() -> Callable[[], None]:
    """Ray's driver prints what its raylets report (a worker or a raylet died, with a page of
    details) on this process's stdout, where the summary goes, and has no setting for it. Those
    lines go to the ``wanwu`` log instead (``wanwu -v`` shows them): the failure reaches wanwu
    as an exception as well, reported in one line. Returns the undo."""
    try:
        from ray._private import worker as ray_worker

        original = ray_worker.print_to_stdstream  # what its error listener calls, by name
    except (ImportError, AttributeError):  # another Ray: its own printing stays
        return lambda: None

    def to_log(data: dict, ignore_prefix: bool) -> None:
        if data.get("pid") != "raylet":
            original(data, ignore_prefix)
            return
        for line in data.get("lines", ()):
            log.info("ray: %s", line)

    ray_worker.print_to_stdstream = to_log

    def undo() -> None:
        if ray_worker.print_to_stdstream is to_log:
            ray_worker.print_to_stdstream = original

    return undo


class _DropErrors(logging.Filter):
    """Ray Data logs a failed job's traceback on the console, then raises the error, which
    wanwu reports in one line: the console copy goes (its log file keeps it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


@contextmanager
def _ray_data_console_without_errors() -> Iterator[None]:
    logger = logging.getLogger("ray.data")
    consoles = [
        h for h in logger.handlers if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
    ]
    drop = _DropErrors()
    for h in consoles:
        h.addFilter(drop)
    try:
        yield
    finally:
        for h in consoles:
            h.removeFilter(drop)


def _error_classes() -> dict[str, type[WanwuError]]:
    """code -> error class, so a worker's failure comes back as the same wanwu error (every
    class is in ``wanwu.errors``, imported above)."""
    out: dict[str, type[WanwuError]] = {}
    todo: list[type[WanwuError]] = [WanwuError]
    while todo:
        cls = todo.pop()
        out.setdefault(cls.code, cls)
        todo.extend(cls.__subclasses__())
    return out


class _ClassifyActor:
    """One per Ray actor: a wanwu ``LocalBackend`` (one ``Classifier``) made once, then batches
    of paths -> rows. Each file is read once on the worker: hashed, its EXIF read, decoded."""

    def __init__(
        self, classifier_kwargs: dict, top_k: int, threads: int, faces: bool = False, face_detector: str | None = None
    ):
        from ..pipeline import Classifier
        from .backend import LocalBackend

        finder = None
        if faces:  # the faces extra on the workers too; without it the driver finds them afterwards
            from ..faces import faces_available

            if faces_available():
                from ..faces.detect import FaceFinder

                finder = FaceFinder(detector=face_detector)
        self.local = LocalBackend(
            Classifier(**classifier_kwargs), top_k, batch_size=INFER_BATCH, threads=threads, faces=finder
        )

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        paths = [str(p) for p in batch.column("path").to_pylist()]
        try:
            items = list(self.local.classify(paths))
        except Exception:  # a bug on one file must not fail the job: retry one by one
            items = [self._one(p) for p in paths]
        return pa.Table.from_pylist([_to_row(c) for c in items], schema=_result_schema())

    def _one(self, path: str) -> Any:
        from .backend import Classified

        try:
            return next(iter(self.local.classify([path])))
        except Exception as exc:
            return Classified(path, ImageResult(path, error=WanwuError(f"{path}: {type(exc).__name__}: {exc}")), None)


def _result_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("path", pa.string()),
            ("sha256", pa.string()),  # null: the file could not be read on the worker
            ("taken", pa.string()),
            ("camera", pa.string()),
            ("latitude", pa.float64()),
            ("longitude", pa.float64()),
            # the file's own keywords (metadata.read_embedded); null: not read
            ("keywords", pa.list_(pa.struct([("name", pa.string()), ("path", pa.string())]))),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("indices", pa.list_(pa.int32())),
            ("scores", pa.list_(pa.float64())),
            ("error_code", pa.string()),
            ("error_message", pa.string()),
            # seconds per stage, by name (Timing.as_dict): a stage added to Timing is a field here
            ("seconds", pa.struct([(stage, pa.float64()) for stage in Timing().as_dict()])),
            ("faces", pa.binary()),  # null: not looked for; else float32 rows (see _faces_blob)
            ("embedding", pa.binary()),  # int8 as the catalogue stores it (embeddings.encode)
            ("sharpness", pa.float64()),
        ]
    )


def _to_row(c: Any) -> dict:
    r, facts, t = c.result, c.facts, c.result.timing
    return {
        "path": c.path,
        "sha256": facts.sha256 if facts else None,
        "taken": facts.taken if facts else None,
        "camera": facts.camera if facts else None,
        "latitude": facts.latitude if facts else None,
        "longitude": facts.longitude if facts else None,
        "keywords": None
        if facts is None or facts.keywords is None
        else [{"name": k.name, "path": k.path} for k in facts.keywords],
        "width": r.width,
        "height": r.height,
        "indices": [p.index for p in r.predictions],
        "scores": [p.score for p in r.predictions],
        "error_code": r.error.code if r.error is not None else None,
        "error_message": r.error.message if r.error is not None else None,
        "seconds": t.as_dict(),
        "faces": _faces_blob(c.faces),
        "embedding": None if c.embedding is None else encode(c.embedding),
        "sharpness": c.sharpness,
    }


FACE_ROW = 4 + 10 + 128  # box, 5 landmarks, descriptor: one float32 row per face


def _faces_blob(faces: list | None) -> bytes | None:
    """Faces as one float32 array's bytes (568 bytes a face), None when not looked for."""
    if faces is None:
        return None
    import numpy as np

    rows = [np.concatenate([f.box, np.ravel(f.landmarks), f.descriptor]) for f in faces]
    return np.asarray(rows, dtype=np.float32).reshape(-1, FACE_ROW).tobytes()


def _faces_from_blob(blob: bytes | None) -> list | None:
    if blob is None:
        return None
    import numpy as np

    from ..faces.detect import Face

    rows = np.frombuffer(blob, dtype=np.float32).reshape(-1, FACE_ROW)
    return [
        Face(
            tuple(float(v) for v in r[:4]),  # type: ignore[arg-type]
            tuple((float(r[4 + 2 * i]), float(r[5 + 2 * i])) for i in range(5)),
            r[14:].copy(),
        )
        for r in rows
    ]


def _from_row(row: dict, errors: dict[str, type[WanwuError]]) -> Any:
    from ..labels import imagenet_classes
    from .backend import Classified, FileFacts
    from .xmp import Keyword

    path = row["path"]
    facts = None
    if row["sha256"] is not None:
        keywords = row.get("keywords")
        facts = FileFacts(
            row["sha256"],
            row["taken"],
            row["camera"],
            row.get("latitude"),
            row.get("longitude"),
            None if keywords is None else [Keyword(k["name"], k["path"]) for k in keywords],
        )
    if row["error_code"] is not None:
        cls = errors.get(row["error_code"], WanwuError)
        return Classified(path, ImageResult(path, error=cls(row["error_message"])), facts)
    classes = imagenet_classes()
    predictions = [Prediction(i, classes[i].wnid, classes[i].label, s) for i, s in zip(row["indices"], row["scores"])]
    result = ImageResult(path, predictions, row["width"], row["height"], Timing.from_dict(row["seconds"] or {}))
    vector = row.get("embedding")
    return Classified(
        path,
        result,
        facts,
        _faces_from_blob(row.get("faces")),
        embedding=None if vector is None else decode(vector),
        sharpness=row.get("sharpness"),
    )


@dataclass
class RayBackend:
    """The indexer's ``ClassifyBackend`` on Ray: ``classify(paths)`` yields a ``Classified`` per
    path as the cluster finishes them (any order).

    ``actors``: Classifier replicas (default: the cluster's CPUs / ``cpus_per_actor``);
    ``cpus_per_actor``: CPUs each actor reserves, its inference and decode threads;
    ``classifier_kwargs``: what each actor's ``Classifier(...)`` gets (model, engine, precision...).
    """

    address: str = "auto"
    top_k: int = DEFAULT_TOP_K
    classifier_kwargs: dict = field(default_factory=dict)
    actors: int | None = None
    cpus_per_actor: int = 1
    batch_size: int = DEFAULT_BATCH_SIZE
    num_cpus: int | None = None  # only for address="local"
    temp_dir: str | None = None  # only for address="local": Ray's session directory
    faces: bool = False  # find faces on the workers too (the faces extra installed there)
    _joined: bool = field(default=False, init=False, repr=False)
    _undo_printing: Callable[[], None] | None = field(default=None, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    def __post_init__(self) -> None:
        self._ray = require_ray()

    def start(self) -> None:
        if not self._ray.is_initialized():
            self._joined = connect(self.address, num_cpus=self.num_cpus, temp_dir=self.temp_dir)
            if self._joined:
                self._undo_printing = _raylet_errors_to_the_log()

    def stop(self) -> None:
        """End the job at the next block of results (the indexer's Ctrl-C): what arrived is kept."""
        self._stop.set()

    def close(self) -> None:
        """Leave the cluster if ``start`` joined it (a cluster someone else started stays up)."""
        self._stop.set()
        if self._joined:
            self._ray.shutdown()
            self._joined = False
        if self._undo_printing is not None:
            self._undo_printing()
            self._undo_printing = None

    def __enter__(self) -> RayBackend:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _actor_count(self) -> int:
        if self.actors:
            return self.actors
        cpus = int(self._ray.cluster_resources().get("CPU", 1))
        return max(1, cpus // max(1, self.cpus_per_actor))

    def classify(self, paths: Iterable[str]) -> Iterator[Any]:
        """Send ``paths`` (absolute, the same on every node) to the cluster; yield each file's
        ``Classified`` as its block arrives. ``stop()`` or closing the iterator ends the Ray job."""
        paths = [os.fspath(p) for p in paths]
        if not paths or self._stop.is_set():
            return
        self.start()
        ray = self._ray
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the indexer draws its own on stderr
        ctx.enable_operator_progress_bars = False
        ctx.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-dataset INFO lines
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled"
        # a small job gets smaller batches (every actor busy) and no idle actors
        batch_size = max(1, min(self.batch_size, -(-len(paths) // self._actor_count())))
        actors = min(self._actor_count(), -(-len(paths) // batch_size))
        # one block per batch (capped): every actor gets work and results come back early
        blocks = max(1, min(-(-len(paths) // batch_size), actors * 64))
        kwargs = dict(self.classifier_kwargs)
        if kwargs.get("threads") is None:
            kwargs["threads"] = self.cpus_per_actor
        ds = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=blocks)
        with warnings.catch_warnings():
            # Ray 2.60 takes max_restarts only among the remote args it calls deprecated
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated", category=DeprecationWarning)
            ds = ds.map_batches(
                _ClassifyActor,
                fn_constructor_kwargs={
                    "classifier_kwargs": kwargs,
                    "top_k": self.top_k,
                    "threads": self.cpus_per_actor,
                    "faces": self.faces,
                    # the driver's choice: a worker's own environment may not carry WANWU_FACE_DETECTOR
                    "face_detector": env_value("face_detector") if self.faces else None,
                },
                batch_size=batch_size,
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=self.cpus_per_actor,
                # Ray Data gives each actor its context and function as object-store references,
                # which Ray cannot bring back for a restarted actor (ray-project/ray#53727 and
                # #57733): with Ray Data's default, max_restarts=-1, every run logged an error
                # saying so. wanwu needs no restarts: a dead actor ends the job (RayWorkerLostError)
                # with what arrived in the catalogue, and the next run sends only the rest.
                max_restarts=0,
            )
        errors = _error_classes()
        with _ray_data_console_without_errors():
            batches = iter(ds.iter_batches(batch_size=None, batch_format="pyarrow"))
            try:
                for table in batches:
                    for row in table.to_pylist():
                        yield _from_row(row, errors)
                    if self._stop.is_set():
                        break
            except ray.exceptions.RayError as exc:
                what = _lost(exc)
                if what is not None:
                    raise RayWorkerLostError(
                        f"the Ray job stopped: {what} [{type(exc).__name__}]; the photos classified until then "
                        f"are kept in the catalogue: run the same command again to classify the rest{_ray_logs()}"
                    ) from None
                raise EngineError(f"the Ray job failed: {_root_cause(exc)}") from None  # e.g. no Classifier
            finally:
                close = getattr(batches, "close", None)
                if close is not None:
                    close()  # shuts the streaming executor down: actors go, queued blocks are dropped
