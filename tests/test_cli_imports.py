"""A cold CLI: the `wanwu` command imports what the command in hand needs. Building the parser,
`wanwu --help`, `wanwu index --help`, `wanwu serve --help` and `wanwu classify` import neither
FastAPI, uvicorn nor starlette (only running `wanwu serve` needs them), and the help pages load no
engine (torch, ONNX Runtime, OpenVINO), no NumPy, no Pillow and no OpenSSL (each costs every run
tens of milliseconds: the pipeline and the hashes are imported where they are used). Each is checked in a fresh interpreter: a module one
test imported stays in this process's sys.modules. Not a timing test."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEB = ("fastapi", "uvicorn", "starlette")

PROBE = textwrap.dedent(
    """
    import contextlib, io, json, sys

    WATCHED = {"fastapi", "uvicorn", "starlette", "torch", "onnxruntime", "openvino", "numpy", "PIL", "_hashlib"}

    def loaded():
        return sorted({m.split(".")[0] for m in sys.modules} & WATCHED)

    def run(argv):
        from wanwu.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code
        return code, out.getvalue()

    seen = {}
    import wanwu.cli
    wanwu.cli.build_parser()
    seen["build_parser"] = loaded()
    for argv in json.loads(sys.argv[1]):
        code, out = run(argv)
        seen[" ".join(argv)] = {"code": code, "out": out, "loaded": loaded()}
    print(json.dumps(seen))
    """
)


def _probe(*commands: list[str]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(commands)], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_parser_and_help_import_no_web_server_and_no_engine():
    seen = _probe(["--help"], ["index", "--help"], ["serve", "--help"])
    assert seen["build_parser"] == []
    for argv in ("--help", "index --help", "serve --help"):
        assert seen[argv]["code"] == 0
        assert seen[argv]["loaded"] == [], f"`wanwu {argv}` imported {seen[argv]['loaded']}"
    assert "--cache-entries" in seen["serve --help"]["out"]  # the serve flags are all there, help and all


def test_classify_imports_no_web_server():
    sample = ROOT / "docs" / "samples" / "cat.jpg"
    seen = _probe(["classify", str(sample), "--format", "json", "--top-k", "1"])
    result = seen[f"classify {sample} --format json --top-k 1"]
    assert result["code"] == 0
    assert "cat" in result["out"]
    assert not set(result["loaded"]) & set(WEB), f"`wanwu classify` imported {result['loaded']}"
