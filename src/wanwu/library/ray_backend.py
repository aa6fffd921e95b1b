"""The classify step of ``wanwu index`` on a Ray cluster (``--ray ADDRESS|auto|local``).

Only classification moves: the driver walks the tree and decides which files need tags (the
catalogue's incremental rules), hands their paths to ``RayBackend.classify`` and writes the
answers to the catalogue as they stream back. On the cluster, Ray Data runs

    from_items(paths) -> map_batches(_ClassifyActor, compute=ActorPoolStrategy(size=N))

where each actor holds one wanwu ``Classifier`` and reads, decodes, preprocesses and infers its
batch itself (so pixels never travel: only paths go out and ~200 bytes of tags per photo come
back). Files must be readable at the same path on every node (a shared filesystem); a file a
worker cannot read or decode is that file's failure (``ImageResult.error``), never a failed job.
Ray Data has no job checkpoint: results reach the driver block by block, so an interrupted run
keeps what the catalogue already has and the next run sends only the rest.

Ray is the optional extra ``wanwu[ray]``; nothing here imports it before ``RayBackend`` is made.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from ..errors import ConfigError, WanwuError
from ..stages import ImageResult, Prediction, Timing

log = logging.getLogger("wanwu")

INSTALL_HINT = "--ray needs Ray: pip install 'wanwu[ray]'"

# Paths per map_batches call. Measured on this 2-core machine (docs/scale-out.md): 8 -> 16 -> 32
# gained ~nothing per photo once the actor was warm, while larger batches make an interrupted
# run lose more work and make the catalogue's progress lumpier; 16 it is.
DEFAULT_BATCH_SIZE = 16
# Forward passes inside one actor's batch (Classifier.classify_iter): the engine's sweet spot.
INFER_BATCH = 8

# The columns an actor returns per photo: plain Arrow types, no pickled objects.
RESULT_COLUMNS = ("path", "width", "height", "indices", "scores", "error_code", "error_message", "seconds")


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
    """Make the Ray node this process starts live on 127.0.0.1 only (before ``ray.init``)."""
    os.environ.update(LOOPBACK_ENV)
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
    common: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
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


def _error_classes() -> dict[str, type[WanwuError]]:
    """code -> error class, so a worker's failure comes back as the same wanwu error."""
    out: dict[str, type[WanwuError]] = {}
    todo: list[type[WanwuError]] = [WanwuError]
    while todo:
        cls = todo.pop()
        out.setdefault(cls.code, cls)
        todo.extend(cls.__subclasses__())
    return out


class _ClassifyActor:
    """One per Ray actor: a wanwu ``Classifier`` made once, then batches of paths -> tags."""

    def __init__(self, classifier_kwargs: dict, top_k: int, decode_threads: int):
        from ..pipeline import Classifier

        self.classifier = Classifier(**classifier_kwargs)
        self.top_k = top_k
        self.decode_threads = decode_threads

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        paths = [str(p) for p in batch.column("path").to_pylist()]
        try:
            results = list(
                self.classifier.classify_iter(
                    paths, top_k=self.top_k, batch_size=INFER_BATCH, decode_threads=self.decode_threads
                )
            )
        except Exception:  # a bug on one file must not fail the job: retry one by one
            results = [self._one(p) for p in paths]
        rows = [_to_row(path, r) for path, r in zip(paths, results)]
        return pa.Table.from_pylist(rows, schema=_result_schema())

    def _one(self, path: str) -> ImageResult:
        try:
            return self.classifier.classify_one(path, self.top_k, name=path)
        except Exception as exc:
            return ImageResult(path, error=WanwuError(f"{path}: {type(exc).__name__}: {exc}"))


def _result_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("path", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("indices", pa.list_(pa.int32())),
            ("scores", pa.list_(pa.float64())),
            ("error_code", pa.string()),
            ("error_message", pa.string()),
            ("seconds", pa.list_(pa.float64())),  # decode, preprocess, inference, postprocess
        ]
    )


def _to_row(path: str, r: ImageResult) -> dict:
    t = r.timing
    return {
        "path": path,
        "width": r.width,
        "height": r.height,
        "indices": [p.index for p in r.predictions],
        "scores": [p.score for p in r.predictions],
        "error_code": r.error.code if r.error is not None else None,
        "error_message": r.error.message if r.error is not None else None,
        "seconds": [t.decode, t.preprocess, t.inference, t.postprocess],
    }


def _from_row(row: dict, errors: dict[str, type[WanwuError]]) -> ImageResult:
    from ..labels import imagenet_classes

    path = row["path"]
    if row["error_code"] is not None:
        cls = errors.get(row["error_code"], WanwuError)
        return ImageResult(path, error=cls(row["error_message"]))
    classes = imagenet_classes()
    predictions = [
        Prediction(i, classes[i].wnid, classes[i].label, s) for i, s in zip(row["indices"], row["scores"])
    ]
    return ImageResult(path, predictions, row["width"], row["height"], Timing(*row["seconds"]))


@dataclass
class RayBackend:
    """``classify(paths)`` -> ``(path, ImageResult)`` as the cluster finishes them (any order).

    ``actors``: Classifier replicas (default: the cluster's CPUs / ``cpus_per_actor``);
    ``cpus_per_actor``: CPUs each actor reserves, and its inference threads;
    ``classifier_kwargs``: what each actor's ``Classifier(...)`` gets (model, engine, precision...).
    """

    address: str = "auto"
    top_k: int = 5
    classifier_kwargs: dict = field(default_factory=dict)
    actors: int | None = None
    cpus_per_actor: int = 1
    batch_size: int = DEFAULT_BATCH_SIZE
    num_cpus: int | None = None  # only for address="local"
    temp_dir: str | None = None  # only for address="local": Ray's session directory
    _joined: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self._ray = require_ray()

    def start(self) -> None:
        if not self._ray.is_initialized():
            self._joined = connect(self.address, num_cpus=self.num_cpus, temp_dir=self.temp_dir)

    def close(self) -> None:
        """Leave the cluster if ``start`` joined it (a cluster someone else started stays up)."""
        if self._joined:
            self._ray.shutdown()
            self._joined = False

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

    def classify(self, paths: Iterable[str]) -> Iterator[tuple[str, ImageResult]]:
        """Send ``paths`` to the cluster; yield each answer as its block arrives. Closing the
        iterator early (Ctrl-C in the caller) stops the Ray job; what was yielded is kept."""
        paths = [os.path.abspath(os.fspath(p)) for p in paths]
        if not paths:
            return
        self.start()
        ray = self._ray
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the indexer draws its own on stderr
        ctx.print_on_execution_start = False
        ctx.enable_operator_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-dataset INFO lines
        # a small job gets smaller batches (every actor busy) and no idle actors
        batch_size = max(1, min(self.batch_size, -(-len(paths) // self._actor_count())))
        actors = min(self._actor_count(), -(-len(paths) // batch_size))
        # one block per batch (capped): every actor gets work and results come back early
        blocks = max(1, min(-(-len(paths) // batch_size), actors * 64))
        ds = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=blocks)
        ds = ds.map_batches(
            _ClassifyActor,
            fn_constructor_kwargs={
                "classifier_kwargs": {"threads": self.cpus_per_actor, **self.classifier_kwargs},
                "top_k": self.top_k,
                "decode_threads": self.cpus_per_actor,
            },
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=self.cpus_per_actor,
        )
        errors = _error_classes()
        batches = ds.iter_batches(batch_size=None, batch_format="pyarrow")
        try:
            for table in batches:
                for row in table.to_pylist():
                    yield row["path"], _from_row(row, errors)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
