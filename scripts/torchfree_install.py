"""Install wanwu into a fresh venv without torch, prove torch is absent, classify the sample
photos, and measure what the install costs.

    python scripts/torchfree_install.py --check      # CI (`make check-torchfree`): fresh venv, no torch
    python scripts/torchfree_install.py --measure    # README table: the same, and a venv with wanwu-tagger[torch]

The venv lives in a temporary folder (removed afterwards, ``--keep`` to keep it); pip uses its
own cache, so a second run installs in seconds. wanwu's model cache is a temporary
``WANWU_CACHE_DIR``: the first classification builds the ONNX graph from the .pth file.
Measured per venv: size on disk, install time, ``import wanwu`` time, a fresh process's time to
its first answer (warm model cache) and its peak RSS after 100 photos (``wanwu.bench.probe``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "docs" / "samples"
TORCH_VERSION = "2.13.0"  # the Makefile's: the local CPU wheel
# top-1 of the default model on each sample photo (README), allowing the close neighbours
EXPECTED = {
    "cat.jpg": {"Egyptian cat", "tiger cat", "tabby"},
    "coffee.jpg": {"espresso"},
    "rocket.jpg": {"missile", "projectile"},
}
REPEATS = 3


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(cmd: list[str], env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=1800)
    if check and proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return proc


def dir_size_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            p = Path(root) / name
            if not p.is_symlink():
                total += p.stat().st_blocks * 512
    return total / 1e6


def source_copy(dest: Path) -> Path:
    """What pip needs to build wanwu, copied: the build then leaves nothing in the work tree."""
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest


def make_venv(folder: Path, with_torch: bool) -> tuple[Path, float]:
    """A fresh venv with wanwu (``.[torch]`` after the CPU wheel when ``with_torch``); seconds taken."""
    source = source_copy(folder.parent / "source")
    start = time.perf_counter()
    run([sys.executable, "-m", "venv", folder])
    py = folder / "bin" / "python"
    if with_torch:
        run([py, "-m", "pip", "install", "--quiet", f"torch=={TORCH_VERSION}"])
        run([py, "-m", "pip", "install", "--quiet", f"{source}[torch]"])
    else:
        run([py, "-m", "pip", "install", "--quiet", str(source)])
    return py, time.perf_counter() - start


IMPORT_TIME = "import time; t = time.perf_counter(); import wanwu; print(time.perf_counter() - t)"


def check_venv(py: Path, env: dict, with_torch: bool) -> None:
    """torch absent (or present, for the torch variant) and the sample photos labelled right."""
    torch_import = run([py, "-c", "import torch"], env=env, check=False)
    if with_torch:
        assert torch_import.returncode == 0, "torch should be importable in the wanwu-tagger[torch] venv"
    else:
        assert torch_import.returncode != 0 and "No module named 'torch'" in torch_import.stderr, torch_import.stderr
        log("ok: `import torch` fails in the fresh venv")
    wanwu = py.parent / "wanwu"
    # the server and the model list load too (the server's app is built, not started)
    run([py, "-c", "from wanwu.server.app import create_app; create_app()"], env=env)
    assert "efficientnet_lite0" in run([wanwu, "models"], env=env).stdout
    out = run([wanwu, "classify", PHOTOS, "--format", "json", "--top-k", "3"], env=env).stdout
    report = json.loads(out)
    assert report["engine"] == "onnxruntime", report["engine"]
    for result in report["results"]:
        name = Path(result["filename"]).name
        top = result["predictions"][0]["label"]
        assert top in EXPECTED[name], f"{name}: top-1 {top!r}, expected one of {sorted(EXPECTED[name])}"
        log(f"ok: {name} -> {top} ({result['predictions'][0]['score']:.2%})")
    assert sorted(Path(r["filename"]).name for r in report["results"]) == sorted(EXPECTED)
    # explain: the class activation map (head weights read from the graph, no torch autograd)
    out = run([wanwu, "explain", PHOTOS / "coffee.jpg", "--format", "json", "--top-k", "1"], env=env).stdout
    explained = json.loads(out)["results"][0]
    assert explained["target"]["label"] in EXPECTED["coffee.jpg"] and max(map(max, explained["heatmap"])) > 0.9
    log(f"ok: explain works without torch (coffee.jpg -> {explained['target']['label']})")
    # int8: quantized with the calibration photos shipped inside the package (package data)
    out = run([wanwu, "classify", PHOTOS / "coffee.jpg", "--precision", "int8", "--format", "jsonl"], env=env).stdout
    lines = [line for line in out.splitlines() if line.startswith("{")]  # (ORT's calibration prints too)
    top = json.loads(lines[-1])["predictions"][0]["label"]
    assert top in EXPECTED["coffee.jpg"], f"int8: coffee.jpg -> {top!r}"
    log(f"ok: --precision int8 works without torch (coffee.jpg -> {top})")


def probe(py: Path, env: dict, engine: str, images: int = 100) -> dict:
    """One fresh process: seconds from start to first answer, peak RSS (MB) after ``images``."""
    photos = sorted(str(p) for p in PHOTOS.iterdir())
    cmd = [
        py,
        "-m",
        "wanwu.bench.probe",
        "--model",
        "efficientnet_lite0",
        "--engine",
        engine,
        "--images",
        str(images),
        *photos,
    ]
    start = time.time()
    events = {}
    for line in run(cmd, env=env).stdout.splitlines():
        event = json.loads(line)
        events[event["event"]] = event
    return {
        "first_answer_s": events["first_answer"]["t"] - start,
        "peak_rss_mb": events["done"]["peak_rss_mb"],
        "torch_imported": events["done"]["torch_imported"],
    }


def install(folder: Path, with_torch: bool) -> dict:
    """A fresh venv in ``folder``, checked; its size and install time."""
    log(f"installing wanwu{'[torch]' if with_torch else ''} into a fresh venv at {folder}/venv …")
    py, install_s = make_venv(folder / "venv", with_torch)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["WANWU_CACHE_DIR"] = str(folder / "wanwu-cache")
    check_venv(py, env, with_torch)  # the first run builds the ONNX graph into the empty cache
    return {
        "venv": "wanwu-tagger[torch]" if with_torch else "wanwu",
        "py": py,
        "env": env,
        "venv_mb": dir_size_mb(folder / "venv"),
        "install_s": install_s,
    }


def measure(venvs: list[dict], configs: list[tuple[int, str]]) -> list[dict]:
    """For each (venv index, engine): medians over REPEATS, the configurations interleaved in
    each round so that the shared machine's load falls on all of them alike."""
    samples: dict[int, dict[str, list[float]]] = {i: {} for i in range(len(configs))}
    for round_ in range(REPEATS):
        log(f"measuring, round {round_ + 1}/{REPEATS} …")
        for i, (v, engine) in enumerate(configs):
            venv = venvs[v]
            py, env = venv["py"], venv["env"]
            got = samples[i]
            got.setdefault("import_s", []).append(float(run([py, "-c", IMPORT_TIME], env=env).stdout))
            warm = probe(py, env, engine)
            got.setdefault("first_answer_s", []).append(warm["first_answer_s"])
            got.setdefault("peak_rss_mb", []).append(warm["peak_rss_mb"])
            if engine != "torch":
                with tempfile.TemporaryDirectory(prefix="wanwu-empty-cache-") as empty:
                    cold = probe(py, {**env, "WANWU_CACHE_DIR": empty}, engine, images=1)
                got.setdefault("empty_cache_first_answer_s", []).append(cold["first_answer_s"])
                assert not cold["torch_imported"] and not warm["torch_imported"]
    out = []
    for i, (v, engine) in enumerate(configs):
        row = {k: statistics.median(vals) for k, vals in samples[i].items()}
        row.update(venv=venvs[v]["venv"], engine=engine, venv_mb=venvs[v]["venv_mb"], install_s=venvs[v]["install_s"])
        out.append(row)
    return out


def table(rows: list[dict]) -> str:
    base = rows[0]
    label = {
        ("wanwu", "onnxruntime"): "wanwu (no torch)",
        ("wanwu-tagger[torch]", "onnxruntime"): "wanwu-tagger[torch]",
        ("wanwu-tagger[torch]", "torch"): "wanwu-tagger[torch], `--engine torch`",
    }
    lines = ["| | " + " | ".join(label[r["venv"], r["engine"]] for r in rows) + " |", "|---|" + "---|" * len(rows)]

    def row(name: str, key: str, fmt: str) -> None:
        cells = []
        for r in rows:
            if key not in r:
                cells.append("—")
                continue
            ratio = f" ({r[key] / base[key]:.2f}x)" if r is not base else ""
            cells.append(fmt.format(r[key]) + ratio)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    row("venv size", "venv_mb", "{:.0f} MB")
    row("install time (pip cache warm)", "install_s", "{:.0f} s")
    row("`import wanwu`", "import_s", "{:.2f} s")
    row("cold start to first answer (model cache warm)", "first_answer_s", "{:.2f} s")
    row("cold start to first answer (empty cache: builds the graph)", "empty_cache_first_answer_s", "{:.2f} s")
    row("peak RSS after 100 photos", "peak_rss_mb", "{:.0f} MB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="fresh venv without torch: assert and classify")
    mode.add_argument("--measure", action="store_true", help="also a wanwu-tagger[torch] venv; print the README table")
    p.add_argument("--keep", action="store_true", help="keep the venvs (their paths are logged)")
    p.add_argument("--json", metavar="FILE", help="write the measurements here too")
    args = p.parse_args(argv)
    names = ["torchfree", "torch"] if args.measure else ["torchfree"]
    folders = [Path(tempfile.mkdtemp(prefix=f"wanwu-venv-{name}-")) for name in names]
    try:
        venvs = [install(folders[0], with_torch=False)]
        if args.check:
            print(json.dumps([{k: venvs[0][k] for k in ("venv", "venv_mb", "install_s")}], indent=2))
            return 0
        venvs.append(install(folders[1], with_torch=True))
        rows = measure(venvs, [(0, "onnxruntime"), (1, "onnxruntime"), (1, "torch")])
    finally:
        for folder in folders:
            if args.keep:
                log(f"kept {folder}")
            else:
                shutil.rmtree(folder, ignore_errors=True)
    print(table(rows))
    print(json.dumps(rows, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
