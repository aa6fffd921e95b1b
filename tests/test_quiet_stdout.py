"""stdout carries only the requested output: the first int8 use quantizes the model (ONNX
Runtime's calibration prints its progress with ``print``), and ``--format json`` must still be
JSON. Run as a real process so that writes to file descriptor 1 are caught too.

Slow tier: it calibrates in an empty cache on purpose (the first use), ~30 s. The fast tier sees
the same guard (``wanwu.engines.quantize.stdout_to_log``) through the session's one calibration:
``wanwu models --prepare --precision int8 --format json`` must print only its JSON
(test_cli_models_prepare.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_first_int8_classify_prints_only_json(tmp_path, photos):
    env = {**os.environ, "WANWU_CACHE_DIR": str(tmp_path / "cache"), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    cmd = [
        sys.executable,
        "-m",
        "wanwu.cli",
        "classify",
        "--precision",
        "int8",
        "--format",
        "json",
        str(photos["chelsea.png"]),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)  # the whole of stdout is one JSON document
    assert result["results"][0]["predictions"][0]["label"] in {"tabby", "tiger cat", "Egyptian cat"}
    assert list((tmp_path / "cache" / "onnx").glob("*-int8-*.onnx")), "the int8 model was built in the temp cache"
