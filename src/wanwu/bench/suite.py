"""Runs the sections of a benchmark (latency, throughput, accuracy, quantization, decode,
memory) over the chosen models and variants, building each Classifier once, and collects
everything into one JSON-able dict that ``targets`` and ``report`` read."""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..engines import DEFAULT_ENGINE, default_threads
from ..errors import WanwuError
from ..imaging import IMAGE_EXTENSIONS
from ..models import DEFAULT_MODEL, get_spec
from ..paths import display_path
from ..pipeline import Classifier
from ..pipeline.defaults import DEFAULT_PRECISION
from .machine import load_average, machine_info
from .stats import ratio
from .variants import (
    SECTIONS,
    ModelWeights,
    Variant,
    baseline,
    engine_available,
    engine_variants,
    make_classifier,
    plan_weights,
)

log = logging.getLogger("wanwu.bench")

LATENCY_PHOTOS = 10  # photos cycled through in the latency runs
# draft decoding targets: shorter side >= factor x resize size (the Classifier default is 2: wanwu.pipeline.DRAFT_MARGIN)
DRAFT_FACTORS = (1.0, 2.0)
THROUGHPUT_ROUNDS = 5


@dataclass
class BenchOptions:
    command: str
    sections: list[str]
    models: list[str]
    engines: list[str]
    precisions: list[str]
    threads: list[int]
    throughput_threads: list[int]
    batch_sizes: list[int]
    data: Path | None = None
    runs: int = 100
    warmup: int = 10
    min_time: float = 0.6
    limit: int | None = None
    images: int = 100
    decode_mp: float = 12.0
    decode_photos: int | None = None
    random_weights: list[str] = field(default_factory=lambda: ["resnet18"])
    throughput_models: list[str] | None = None  # None: all of ``models``
    progress: bool = True

    def to_dict(self) -> dict:
        d = asdict(self)
        d["data"] = display_path(self.data) if self.data else None
        return d


@contextlib.contextmanager
def quiet():
    """Silence libraries that print or log progress (ONNX Runtime's quantization tools)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def bundled_photos() -> list[Path]:
    root = Path(str(resources.files("wanwu").joinpath("data/calibration")))
    return sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def spread(items: list, n: int) -> list:
    """``n`` items evenly spread over ``items`` (all of them when there are fewer)."""
    if len(items) <= n:
        return list(items)
    return [items[int(i * len(items) / n)] for i in range(n)]


class Bench:
    def __init__(self, opts: BenchOptions):
        self.opts = opts
        self.started = time.time()
        engines = []
        self.results: dict = {
            "command": opts.command,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(self.started)),
            "machine": machine_info(),
            "load_average": {"start": load_average()},
            "options": opts.to_dict(),
            "default": {
                "model": DEFAULT_MODEL,
                "engine": DEFAULT_ENGINE,
                "precision": DEFAULT_PRECISION,
                "threads": default_threads(),
            },
            "skipped_engines": [],
            "errors": [],
        }
        for engine in opts.engines:
            ok, why = engine_available(engine)
            if ok:
                engines.append(engine)
            else:
                self.results["skipped_engines"].append({"engine": engine, "reason": why})
        self.engines = engines
        self.plan, skipped = plan_weights(opts.models, set(opts.random_weights))
        self.weights = {w.model: w for w in self.plan}
        self.models = [w.model for w in self.plan]
        self.results["models"] = [self._model_info(w) for w in self.plan]
        self.results["skipped_models"] = skipped
        self._classifiers: dict[str, Classifier | None] = {}
        self._inputs: dict[str, np.ndarray] = {}
        if opts.data is not None:
            from .accuracy import labeled_photos

            self.labeled = labeled_photos(opts.data, opts.limit)
            self.photo_paths = [p.path for p in self.labeled]
        else:
            self.labeled = []
            self.photo_paths = bundled_photos()
        self.latency_paths = spread(self.photo_paths, LATENCY_PHOTOS)
        self.latency_bytes = [p.read_bytes() for p in self.latency_paths]

    @staticmethod
    def _model_info(w: ModelWeights) -> dict:
        spec = get_spec(w.model)
        return {
            "model": w.model,
            "title": spec.title,
            "random_weights": w.random,
            "note": w.note,
            "gflops": spec.gflops,
            "params_m": spec.params_m,
            "published_top1": spec.top1,
            "input_size": spec.input_size,
        }

    # -- building blocks ------------------------------------------------------------------
    def classifier(self, v: Variant) -> Classifier | None:
        """The Classifier of ``v``, built once; None (and an error noted) when it cannot be built."""
        if v.key not in self._classifiers:
            self._classifiers[v.key] = self._build(v)
        return self._classifiers[v.key]

    def required(self, v: Variant) -> Classifier:
        """The Classifier of ``v``; a section that cannot run without it stops with its error."""
        clf = self.classifier(v)
        if clf is None:
            raise WanwuError(f"{v.key} could not be built (see the errors above)")
        return clf

    def _build(self, v: Variant) -> Classifier | None:
        try:
            with quiet():  # ONNX Runtime's quantizer prints its progress to stdout
                return make_classifier(v, self.weights[v.model])
        except (WanwuError, RuntimeError, ImportError) as exc:
            msg = getattr(exc, "message", None) or str(exc)
            if not any(e["variant"] == v.key for e in self.results["errors"]):
                log.warning("skipping %s: %s", v.key, msg)
                self.results["errors"].append({"variant": v.key, "error": msg})
            return None

    def variants(self, threads: list[int], models: list[str] | None = None) -> list[Variant]:
        return engine_variants(models or self.models, self.engines, self.opts.precisions, threads)

    def model_inputs(self, model: str) -> np.ndarray:
        """The latency photos, decoded and preprocessed for ``model`` (for throughput)."""
        if model not in self._inputs:
            clf = self.required(baseline(model))
            self._inputs[model] = np.stack([clf.runner.prepare(b, "bench").x for b in self.latency_bytes])
        return self._inputs[model]

    def _built(self, variants: list[Variant]) -> dict[str, tuple[Variant, Classifier]]:
        out = {}
        for v in variants:
            clf = self.classifier(v)
            if clf is not None:
                out[v.key] = (v, clf)
        return out

    # -- sections -------------------------------------------------------------------------
    def run(self) -> dict:
        for name in SECTIONS:
            if name in self.opts.sections:
                t0 = time.perf_counter()
                getattr(self, f"run_{name}")()
                self.results.setdefault("section_seconds", {})[name] = round(time.perf_counter() - t0, 1)
        from .targets import engine_comparison, evaluate_targets

        self.results["targets"] = evaluate_targets(self.results)
        self.results["openvino_vs_onnxruntime"] = engine_comparison(self.results)
        self.results["duration_s"] = round(time.time() - self.started, 1)
        self.results["load_average"]["end"] = load_average()
        return self.results

    def run_latency(self) -> None:
        from .latency import measure_latency

        built = self._built(self.variants(self.opts.threads))
        stages = measure_latency(
            {k: clf for k, (_, clf) in built.items()},
            self.latency_bytes,
            self.opts.runs,
            self.opts.warmup,
            progress=self.opts.progress,
        )
        rows = {}
        for key, (v, _) in built.items():
            base = stages.get(baseline(v.model).key)
            rows[key] = {
                "variant": v.to_dict(),
                "stages": stages[key],
                "speedup_p50": ratio(base["total"]["p50"] if base else None, stages[key]["total"]["p50"]),
            }
        self.results["latency"] = {
            "runs": self.opts.runs,
            "warmup": self.opts.warmup,
            "photos": [p.name for p in self.latency_paths],
            "photo_sizes": [list(self._size(b)) for b in self.latency_bytes],
            "results": rows,
        }

    @staticmethod
    def _size(data: bytes) -> tuple[int, int]:
        import io

        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            return im.size

    def run_throughput(self) -> None:
        import gc

        from .throughput import measure_throughput

        measured: dict[str, dict] = {}
        built: dict[str, tuple[Variant, Classifier | None]] = {}
        for model in self.opts.throughput_models or self.models:
            if model not in self.weights:
                continue
            # fresh engines, dropped after the model: large batches grow ONNX Runtime's memory arena
            fresh = {}
            for v in self.variants(self.opts.throughput_threads, [model]):
                clf = self.classifier(v) if v.is_baseline else self._build(v)
                if clf is not None:
                    fresh[v.key] = (v, clf)
            runners: dict[str, tuple[Callable[[np.ndarray], np.ndarray], np.ndarray, list[int]]] = {}
            for key, (v, clf) in fresh.items():
                # torch eager is the reference, not a contender: batch 1 only (large batches take seconds)
                sizes = [1] if v.engine == "torch" else self.opts.batch_sizes
                runners[key] = (clf.infer, self.model_inputs(v.model), sizes)
            measured.update(measure_throughput(runners, self.opts.min_time, THROUGHPUT_ROUNDS, self.opts.progress))
            built.update({k: (v, None) for k, (v, _) in fresh.items()})
            del fresh, runners
            gc.collect()
        rows = {}
        for key, (v, _) in built.items():
            by_batch = measured[key]
            best_b = max(by_batch, key=lambda b: by_batch[b]["img_s"])
            base = measured.get(baseline(v.model).key, {}).get(1, {}).get("img_s")
            rows[key] = {
                "variant": v.to_dict(),
                "by_batch": {str(b): r for b, r in by_batch.items()},
                "best_batch": best_b,
                "best_img_s": by_batch[best_b]["img_s"],
                "speedup_best": ratio(base, by_batch[best_b]["img_s"], higher_is_better=True),
            }
        self.results["throughput"] = {
            "batch_sizes": self.opts.batch_sizes,
            "threads": self.opts.throughput_threads,
            "min_time_s": self.opts.min_time,
            "rounds": THROUGHPUT_ROUNDS,
            "results": rows,
        }

    def run_accuracy(self) -> None:
        from .accuracy import predict, prepare_inputs, scores

        if not self.labeled:
            self.results["accuracy"] = {"skipped": "no --data folder of ImageNet-named photos given"}
            return
        labels = np.array([p.index for p in self.labeled])
        rows, skipped = {}, []
        for model in self.models:
            if self.weights[model].random:
                skipped.append({"model": model, "reason": "random weights: accuracy is meaningless"})
                continue
            base_clf = self.classifier(baseline(model))
            inputs = prepare_inputs(base_clf, self.photo_paths, self.opts.progress, desc=f"decode {model}")
            built = self._built(self.variants(self.opts.threads, [model]))
            reference = None
            top1: dict[str, np.ndarray] = {}
            for key, (v, clf) in built.items():
                logits = predict(clf.infer, inputs, batch_size=1)  # the serving path; keeps arenas small
                top1[key] = logits.argmax(axis=1)
                if reference is None:  # the baseline comes first: torch fp32 is the reference
                    reference = top1[key]
                rows[key] = {"variant": v.to_dict(), **scores(logits, labels, reference)}
            for key, (v, _) in built.items():  # int8 against fp32 of the same engine
                same = Variant(v.model, v.engine, "fp32", v.threads).key
                if v.precision != "fp32" and same in top1:
                    rows[key]["agreement_vs_fp32"] = float((top1[key] == top1[same]).mean() * 100)
            base_top1 = rows[baseline(model).key]["top1"]
            for key in built:
                rows[key]["top1_delta"] = rows[key]["top1"] - base_top1
        self.results["accuracy"] = {
            "data": display_path(self.opts.data) if self.opts.data else None,
            "n": len(self.labeled),
            "reference": "torch fp32",
            "results": rows,
            "skipped": skipped,
        }

    def run_quantization(self) -> None:
        from ..engines.onnx_cache import load_or_export
        from ..engines.onnxruntime_engine import OnnxRuntimeEngine
        from ..engines.quantize import CALIBRATION_METHOD, calibration_photos, load_or_quantize
        from .latency import measure_forward
        from .quantization import dynamic_quantize_linear, int8_verdict, linear_macs

        threads = max(self.opts.threads)
        per_model: dict[str, dict[str, Any]] = {}
        runners: dict[str, tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]] = {}
        for model in self.models:
            clf = self.required(baseline(model))
            fp32 = load_or_export(clf.spec, clf.weights)
            with quiet():
                dyn = dynamic_quantize_linear(fp32)
                static = load_or_quantize(clf.spec, clf.weights)
            macs = linear_macs(fp32)
            x = self.model_inputs(model)[:1]
            for name, data in (("fp32", fp32), ("dynamic_linear_int8", dyn), ("static_int8", static)):
                runners[f"{model}/{name}"] = (OnnxRuntimeEngine(data, threads=threads).run, x)
            total_macs = (clf.spec.gflops or 0.0) * 1e9
            per_model[model] = {
                "linear_macs": macs,
                "total_macs": total_macs,
                "linear_share": macs / total_macs if total_macs else None,
            }
        forward = measure_forward(
            runners, self.opts.runs, self.opts.warmup, progress=self.opts.progress, desc="quantization"
        )
        for model, info in per_model.items():
            info["forward_ms"] = {
                name: forward[f"{model}/{name}"] for name in ("fp32", "dynamic_linear_int8", "static_int8")
            }
            f32 = info["forward_ms"]["fp32"]["p50"]
            info["speedup_dynamic"] = ratio(f32, info["forward_ms"]["dynamic_linear_int8"]["p50"])
            info["speedup_static"] = ratio(f32, info["forward_ms"]["static_int8"]["p50"])
        verdicts = {}
        lat = self.results.get("latency", {}).get("results", {})
        acc = self.results.get("accuracy", {}).get("results", {})
        for model in self.models:
            if self.weights[model].random:
                continue
            k32 = Variant(model, "onnxruntime", "fp32", threads).key
            k8 = Variant(model, "onnxruntime", "int8", threads).key
            speed = None
            if k32 in lat and k8 in lat:
                speed = ratio(lat[k32]["stages"]["total"]["p50"], lat[k8]["stages"]["total"]["p50"])
            verdicts[model] = int8_verdict(
                speed, acc.get(k32, {}).get("top1"), acc.get(k8, {}).get("top1"), acc.get(k8, {}).get("agreement")
            )
        self.results["quantization"] = {
            "threads": threads,
            "static": {
                "format": "QDQ",
                "weights": "int8 per-channel",
                "activations": "uint8",
                "calibration": CALIBRATION_METHOD,
                "calibration_photos": len(calibration_photos()),
                "calibration_samples": 2 * len(calibration_photos()),
            },
            "models": per_model,
            "int8_default_verdict": verdicts,
        }

    def decode_model(self) -> str:
        return (
            DEFAULT_MODEL if DEFAULT_MODEL in self.models and not self.weights[DEFAULT_MODEL].random else self.models[0]
        )

    def run_decode(self) -> None:
        from .decode import compare_draft, draft_verdict, upscale_photos

        model = self.decode_model()
        clf = self.classifier(Variant(model, DEFAULT_ENGINE, DEFAULT_PRECISION, max(self.opts.threads)))
        if clf is None:
            return
        photos = self.photo_paths
        big_sources = photos[: self.opts.decode_photos] if self.opts.decode_photos else photos
        mp = f"{self.opts.decode_mp:g} MP"
        sets: dict[str, dict] = {}
        with tempfile.TemporaryDirectory(prefix="wanwu-bench-big-") as tmp:
            big = upscale_photos(big_sources, Path(tmp), self.opts.decode_mp, progress=self.opts.progress)
            for factor in DRAFT_FACTORS:
                for name, paths in (("original", photos), (mp, big)):
                    sets[f"{name}, margin {factor:g}x"] = compare_draft(
                        clf, paths, self.opts.progress, desc=f"draft vs exact ({name}, {factor:g}x)", factor=factor
                    )
        verdicts = {
            f"{factor:g}": draft_verdict({k: s["agreement"] for k, s in sets.items() if s["factor"] == factor})
            for factor in DRAFT_FACTORS
        }
        self.results["decode"] = {
            "model": model,
            "engine": clf.engine.name,
            "resize_size": clf.spec.preprocessing.resize_size,
            "photos": display_path(self.opts.data) if self.opts.data else "bundled calibration photos",
            "sets": sets,
            "verdict": verdicts["1"],
            "verdicts": verdicts,
        }

    def run_memory(self) -> None:
        from .memory import measure_memory

        model = self.decode_model()
        threads = default_threads()
        cases = [
            (Variant(model, DEFAULT_ENGINE, DEFAULT_PRECISION, threads), False),
            (Variant(model, DEFAULT_ENGINE, DEFAULT_PRECISION, threads), True),
        ]
        if "int8" in self.opts.precisions:
            cases += [
                (Variant(model, "onnxruntime", "int8", threads), False),
                (Variant(model, "onnxruntime", "int8", threads), True),
            ]
        cases.append((baseline(model), False))
        if "openvino" in self.engines:
            cases += [(Variant(model, "openvino", p, threads), False) for p in self.opts.precisions]
        photos = self.latency_paths
        rows = []
        from tqdm import tqdm

        for v, cold in tqdm(
            cases, desc="memory", unit="process", file=sys.stderr, disable=not self.opts.progress or None, leave=False
        ):
            try:
                r = measure_memory(
                    v, self.weights[model], photos, self.opts.images, repeats=1 if cold else 3, cold=cold
                )
            except WanwuError as exc:
                self.results["errors"].append({"variant": v.key, "error": exc.message})
                continue
            rows.append({"variant": v.to_dict(), **r})
        self.results["memory"] = {"model": model, "images": self.opts.images, "results": rows}
