"""Inference engines, and the table that says which exist and what each supports.

``onnxruntime`` (default) runs the ONNX graph that ``wanwu.graph`` builds from the weights
(cached; torch is never imported); ``torch`` is the eager reference (the ``wanwu-tagger[torch]`` extra); ``openvino`` (optional package) runs the same ONNX
files. ``ENGINE_TABLE`` is the one source of truth about them: ``Classifier`` creates engines
through it, the settings validate engine x precision against it, the server takes its engine
options and the v2 platform name from it, and the bench builds its variants from it.

How to add an engine:
  1. write ``engines/<name>_engine.py`` with a class that has ``name``, ``precision`` and
     ``run(batch) -> logits`` and ``run_with_features(batch) -> (logits, features)`` (the
     ``Engine`` protocol) and a module-level
     ``create(spec, weights, *, precision, threads, **options) -> Engine``;
  2. add one ``EngineSpec`` to ``ENGINE_TABLE`` below (and, if it needs a package that is not a
     dependency, a pip extra in pyproject.toml).
Nothing else changes: ``--engine`` choices, validation, the bench and ``/v2`` metadata follow.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol

from ..errors import ConfigError, EngineError
from ..install import DISTRIBUTION, pip_install

if TYPE_CHECKING:  # NumPy only for the annotations: the CLI's parser imports this module
    import numpy as np

    from ..models.spec import ModelSpec


class Engine(Protocol):
    name: str
    precision: str

    def run(self, batch: np.ndarray) -> np.ndarray:
        """float32 NCHW batch -> float32 logits (N, classes)."""

    def run_with_features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The same forward pass, also returning the last feature map (N, C, h, w) that the
        classifier head reads (``wanwu.graph``: before global average pooling)."""


@dataclass(frozen=True)
class EngineSpec:
    """Every fact about one engine. ``factory`` is ``"module:function"`` inside this package,
    imported only when an engine is created (so listing engines imports neither torch nor
    onnxruntime)."""

    name: str
    precisions: tuple[str, ...]  # the first one is the engine's own default
    factory: str
    module: str  # importable module the engine needs (its availability test)
    package: str  # pip distribution that provides ``module``
    extra: str | None  # wanwu's pip extra that installs it (None: a core dependency)
    install: str  # the command that installs what is missing
    v2_platform: str  # Open Inference Protocol / Triton "platform" of a model run by it
    v2_backend: str  # Triton "backend"
    runs_onnx: bool = False  # runs the cached ONNX files (what `wanwu models --prepare` builds)
    # engine options a long-running server passes (measured choices; see the comments in the table)
    server_options: Mapping[str, Any] = field(default_factory=dict)

    def supports(self, precision: str) -> bool:
        return precision in self.precisions

    def available(self) -> tuple[bool, str | None]:
        """(True, None), or (False, how to install what is missing)."""
        if importlib.util.find_spec(self.module) is not None:
            return True, None
        return False, f"the {self.name} engine needs {self.package}: {self.install}"

    def create(
        self,
        spec: ModelSpec,
        weights: Any,  # models.weights.ResolvedWeights: not imported here (weights -> paths -> settings -> here)
        *,
        precision: str,
        threads: int | None = None,
        **options: Any,
    ) -> Engine:
        check_engine(self.name, precision)
        ok, why = self.available()
        if not ok:
            raise EngineError(why or f"the {self.name} engine is not available")
        module, func = self.factory.split(":")
        return getattr(importlib.import_module(module, __name__), func)(
            spec, weights, precision=precision, threads=threads, **options
        )


ENGINE_TABLE: tuple[EngineSpec, ...] = (
    EngineSpec(
        name="onnxruntime",
        precisions=("fp32", "int8"),
        factory=".onnxruntime_engine:create",
        module="onnxruntime",
        package="onnxruntime",
        extra=None,
        install="pip install onnxruntime",
        v2_platform="onnxruntime_onnx",
        v2_backend="onnxruntime",
        runs_onnx=True,
        # the memory arena stays (a lone Lite0 pass: 5.6 ms with it, 9-11 ms without, where every
        # run mmapped its activations afresh: ~2,000 page faults a request) and hands a batch's
        # memory back after every run of more than one image, so what it keeps is one image's
        # worth; threads spin during a run only and stop when it ends, since decode threads share
        # the cores (benchmarks/server_latency.py)
        server_options={"arena": True, "shrink_arena": True, "spin_idle": False},
    ),
    EngineSpec(
        name="torch",
        precisions=("fp32",),
        factory=".torch_engine:create",
        # the CPU wheel first: a bare `pip install torch` may pull a multi-GB CUDA build
        module="torch",
        package="torch",
        extra="torch",
        install=f"pip install torch==2.13.0 '{DISTRIBUTION}[torch]' (the default onnxruntime engine does not need it)",
        v2_platform="pytorch_libtorch",
        v2_backend="pytorch",
    ),
    EngineSpec(
        name="openvino",
        precisions=("fp32", "int8"),
        factory=".openvino_engine:create",
        module="openvino",
        package="openvino",
        extra="openvino",
        install=pip_install("openvino"),
        v2_platform="openvino",
        v2_backend="openvino",
        runs_onnx=True,  # and compiles them in memory at each start: it keeps no cache of its own
    ),
)
ENGINES: tuple[str, ...] = tuple(e.name for e in ENGINE_TABLE)
DEFAULT_ENGINE = "onnxruntime"
DEFAULT_PRECISION = "fp32"  # int8 is faster but moves some labels (docs/benchmarks.md)
# Most images per forward pass, wherever images come in batches (classify, index, the server's
# micro-batcher, a Ray actor). 8, not 16: on 2-4 cores the same images/s (forward passes gain <5%
# past 8) with ~60 MB less at the peak (benchmarks/server_throughput.py)
DEFAULT_BATCH_SIZE = 8
PRECISIONS: tuple[str, ...] = tuple(dict.fromkeys(p for e in ENGINE_TABLE for p in e.precisions))


def get_engine(name: str) -> EngineSpec:
    """The table entry of engine ``name``; ``ConfigError`` naming the choices otherwise."""
    for entry in ENGINE_TABLE:
        if entry.name == name:
            return entry
    raise ConfigError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}")


def check_engine(engine: str, precision: str) -> EngineSpec:
    """The entry of ``engine`` if it runs ``precision``; else a ``ConfigError`` that says which do."""
    entry = get_engine(engine)
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if not entry.supports(precision):
        others = [e.name for e in ENGINE_TABLE if e.supports(precision)]
        raise ConfigError(
            f"the {engine} engine runs {', '.join(entry.precisions)} only; for {precision} use "
            f"--engine {' or '.join(others)}"
        )
    return entry


def default_threads() -> int:
    """Cores this process may run on (affinity/cgroup aware where the OS tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def passes_at_once(engine: Any) -> int:
    """Forward passes worth running at once on this machine: the cores over the engine's threads
    per pass (one pass using every core, or one pass per core with one intra-op thread each, as
    ``wanwu index`` runs them)."""
    return max(1, default_threads() // max(1, getattr(engine, "threads", None) or 1))
