"""What a benchmark measures: a ``Variant`` (model, engine, precision, threads) and the weights it
runs with. Models whose official weights are missing can still be timed with random weights
(same architecture, same cost) when asked: their rows say "random weights, speed only"."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from ..engines import ENGINES, default_threads, get_engine
from ..models import get_spec
from ..paths import cache_dir, display_text

log = logging.getLogger("wanwu.bench")

BASELINE_ENGINE, BASELINE_PRECISION, BASELINE_THREADS = "torch", "fp32", 1
SECTIONS = ("latency", "throughput", "accuracy", "quantization", "decode", "memory")  # what `wanwu bench` can measure
RANDOM_SEED = 0


@dataclass(frozen=True)
class Variant:
    model: str
    engine: str
    precision: str
    threads: int

    @property
    def key(self) -> str:
        return f"{self.model}/{self.engine}/{self.precision}/t{self.threads}"

    @property
    def label(self) -> str:
        return f"{self.engine} {self.precision} {self.threads}t"

    @property
    def is_baseline(self) -> bool:
        return (self.engine, self.precision, self.threads) == (BASELINE_ENGINE, BASELINE_PRECISION, BASELINE_THREADS)

    def to_dict(self) -> dict:
        return {**asdict(self), "key": self.key, "baseline": self.is_baseline}


def baseline(model: str) -> Variant:
    """The baseline, the common textbook setup: torch eager, fp32, batch 1, one thread."""
    return Variant(model, BASELINE_ENGINE, BASELINE_PRECISION, BASELINE_THREADS)


def parse_threads(values: list[str] | None, default: list[str]) -> list[int]:
    """'1', '2', 'all' -> sorted distinct thread counts ('all' = the cores this process may use)."""
    out: list[int] = []
    for v in values or default:
        n = default_threads() if str(v).lower() == "all" else int(v)
        if n < 1:
            raise ValueError(f"thread count must be at least 1, got {v}")
        if n not in out:
            out.append(n)
    return sorted(out)


def engine_available(engine: str) -> tuple[bool, str | None]:
    return get_engine(engine).available()


def engine_variants(models: list[str], engines: list[str], precisions: list[str], threads: list[int]) -> list[Variant]:
    """Per model: the baseline first, then every engine x precision x threads that exists
    (each engine's precisions come from ``ENGINE_TABLE``; torch is fp32 only), engines in the
    table's order after the baseline's."""
    order = {**{name: i for i, name in enumerate(ENGINES)}, BASELINE_ENGINE: -1}
    out: list[Variant] = []
    for model in models:
        out.append(baseline(model))
        for engine in sorted(engines, key=lambda e: order.get(e, len(order))):
            for precision in precisions:
                if not get_engine(engine).supports(precision):
                    continue
                for n in threads:
                    v = Variant(model, engine, precision, n)
                    if v not in out:
                        out.append(v)
    return out


@dataclass(frozen=True)
class ModelWeights:
    """How a model is run in the bench: official weights (``path`` None) or random ones."""

    model: str
    path: Path | None
    random: bool
    note: str | None = None  # why it is random / missing


def random_weights_file(model: str) -> Path:
    """A state_dict of seeded random weights for ``model``, made once under the cache dir."""
    path = cache_dir() / "bench" / f"{model}-random-seed{RANDOM_SEED}.pth"
    if not path.is_file():
        import io

        import torch

        from ..atomic import write_atomic

        torch.manual_seed(RANDOM_SEED)
        buf = io.BytesIO()
        torch.save(get_spec(model).build().state_dict(), buf)
        write_atomic(path, buf.getvalue(), parents=True)
    return path


def plan_weights(models: list[str], random_ok: set[str]) -> tuple[list[ModelWeights], list[dict]]:
    """(models to run, models skipped with the reason and how to get their weights)."""
    from ..models.weights import availability, how_to_get

    run, skipped = [], []
    for model in models:
        spec = get_spec(model)
        ok, _ = availability(spec)
        if ok:
            run.append(ModelWeights(model, None, False))
        elif model in random_ok:
            note = f"official weights not present ({display_text(how_to_get(spec))}); timed with random weights: speed only"
            run.append(ModelWeights(model, random_weights_file(model), True, note))
        else:
            skipped.append(
                {"model": model, "reason": f"official weights not present; {display_text(how_to_get(spec))}"}
            )
    return run, skipped


def make_classifier(variant: Variant, weights: ModelWeights, draft: bool = False):
    """A ``Classifier`` for ``variant``. The torch engine sets torch's (process-wide) thread count
    before every call, so torch variants with different thread counts can be interleaved."""
    from ..pipeline import Classifier

    weights_log = logging.getLogger("wanwu.weights")
    level = weights_log.level
    if weights.random:  # "not the official weights file": known, and said once in the report
        weights_log.setLevel(logging.ERROR)
    try:
        clf = Classifier(
            variant.model,
            variant.engine,
            weights=weights.path,
            precision=variant.precision,
            threads=variant.threads,
            draft=draft,
        )
    finally:
        weights_log.setLevel(level)
    if variant.engine == "torch":
        import torch

        inner = clf.engine.run

        def run(batch, _inner=inner, _n=variant.threads):
            if torch.get_num_threads() != _n:
                torch.set_num_threads(_n)
            return _inner(batch)

        clf.engine.run = run  # type: ignore[method-assign]
    return clf
