"""Which ONNX Runtime session options suit this machine? Prints interleaved p50 latency (bare
forward pass) and peak RSS for the options the engine could use. The numbers chose the settings
in ``wanwu/engines/onnxruntime_engine.py``; re-run after changing them or the machine.

    python benchmarks/ort_session_options.py [--models efficientnet_lite0 resnet18] [--runs 100] [--load 1]

``--load N`` runs N busy-looping processes meanwhile: what the engine meets on a desktop or a
shared machine where something else uses a core.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from wanwu.bench.latency import measure_forward
from wanwu.bench.variants import plan_weights
from wanwu.engines import default_threads
from wanwu.engines.onnx_cache import load_or_export
from wanwu.engines.quantize import load_or_quantize
from wanwu.models import get_spec
from wanwu.models.weights import resolve_weights

OPTIONS = {  # name -> (threads, optimization level, memory arena, spinning)
    "default (all cores, ALL, arena, spin)": (None, "ALL", True, True),
    "1 thread": (1, "ALL", True, True),
    "EXTENDED optimizations": (None, "EXTENDED", True, True),
    "BASIC optimizations": (None, "BASIC", True, True),
    "no memory arena": (None, "ALL", False, True),
    "no spinning": (None, "ALL", True, False),
}


def session(model: bytes, threads, level, arena, spin) -> ort.InferenceSession:
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads or default_threads()
    o.inter_op_num_threads = 1
    o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    o.graph_optimization_level = getattr(ort.GraphOptimizationLevel, f"ORT_ENABLE_{level}")
    o.enable_cpu_mem_arena = arena
    if not spin:
        o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    o.log_severity_level = 3
    return ort.InferenceSession(model, o, providers=["CPUExecutionProvider"])


def peak_rss(model_path: str, size: int, batch: int, arena: bool) -> float:
    """Peak RSS (MB) of a fresh process running 50 inferences at ``batch``."""
    code = (
        "import numpy as np, onnxruntime as ort\n"
        f"o = ort.SessionOptions(); o.enable_cpu_mem_arena = {arena}; o.log_severity_level = 3\n"
        f"s = ort.InferenceSession({model_path!r}, o, providers=['CPUExecutionProvider'])\n"
        f"x = np.random.rand({batch}, 3, {size}, {size}).astype(np.float32)\n"
        "for _ in range(50): s.run(None, {s.get_inputs()[0].name: x})\n"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n"
    )
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout) / 1024


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["efficientnet_lite0", "resnet18"])
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--load", type=int, default=0, help="busy-looping processes to run meanwhile")
    p.add_argument("--precisions", nargs="+", default=["fp32", "int8"])
    args = p.parse_args()
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    try:
        return measure(args)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def measure(args) -> int:
    plan, skipped = plan_weights(args.models, {"resnet18"})
    for s in skipped:
        print(f"skipping {s['model']}: {s['reason']}")
    for w in plan:
        spec = get_spec(w.model)
        weights = resolve_weights(spec, w.path)
        for precision in args.precisions:
            model = load_or_export(spec, weights) if precision == "fp32" else load_or_quantize(spec, weights)
            x = np.random.rand(1, 3, spec.input_size, spec.input_size).astype(np.float32)
            runners = {}
            for name, opts in OPTIONS.items():
                s = session(model, *opts)
                runners[name] = (lambda b, s=s: s.run(None, {"input": b}), x)
            res = measure_forward(runners, args.runs, 10, progress=False)
            label = f"{w.model}{' (random weights)' if w.random else ''} {precision}"
            base = res[next(iter(OPTIONS))]["p50"]
            print(
                f"\n{label}: bare forward, batch 1, p50 ms (interleaved, {args.runs} runs, "
                f"{args.load} busy processes meanwhile)"
            )
            for name, r in res.items():
                print(f"  {name:40s} p50 {r['p50']:7.2f}  min {r['min']:7.2f}  ({base / r['p50']:.2f}x default)")
            with tempfile.TemporaryDirectory() as tmp:
                path = str(Path(tmp) / "m.onnx")
                Path(path).write_bytes(model)
                for batch in (1, 16):
                    on, off = (
                        peak_rss(path, spec.input_size, batch, True),
                        peak_rss(path, spec.input_size, batch, False),
                    )
                    print(f"  peak RSS at batch {batch:2d}: arena {on:6.0f} MB, no arena {off:6.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
