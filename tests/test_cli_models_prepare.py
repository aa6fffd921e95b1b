"""``wanwu models --prepare``: the cached files a first use would build are built ahead, into the
same cache, so that a later process reads them instead of building (the int8 model: ~10 s of
calibration). The int8 test runs real processes, as a user would, and quantizes once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from wanwu.cli import main

CAT = {"tabby", "tiger cat", "Egyptian cat"}
QUANTIZING = "quantizing efficientnet_lite0 to int8"  # wanwu.engines.quantize's log line (-v)


def _wanwu(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wanwu.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_prepared_int8_is_read_by_the_next_classify_not_built_again(tmp_path, chelsea):
    cache = tmp_path / "cache"
    env = {**os.environ, "WANWU_CACHE_DIR": str(cache), "XDG_CACHE_HOME": str(tmp_path / "xdg")}

    first = _wanwu("-v", "models", "--prepare", "--precision", "int8", "--format", "json", env=env)
    assert first.returncode == 0, first.stderr
    [row] = json.loads(first.stdout)  # stdout is the JSON summary only
    assert (row["model"], row["precision"], row["already_cached"], row["error"]) == (
        "efficientnet_lite0",
        "int8",
        False,
        None,
    )
    assert row["seconds"] > 0 and row["path"].endswith(".onnx")
    assert QUANTIZING in first.stderr  # progress on stderr
    [int8] = list((cache / "onnx").glob("efficientnet_lite0-*-int8-*.onnx"))
    assert int8.name in row["path"]
    built = int8.stat().st_mtime_ns

    classify = _wanwu("-v", "classify", "--precision", "int8", "--format", "json", str(chelsea), env=env)
    assert classify.returncode == 0, classify.stderr
    result = json.loads(classify.stdout)
    assert result["precision"] == "int8"
    assert result["results"][0]["predictions"][0]["label"] in CAT
    assert QUANTIZING not in classify.stderr and "building the ONNX graph" not in classify.stderr
    assert int8.stat().st_mtime_ns == built

    again = _wanwu("models", "--prepare", "--precision", "int8", env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("efficientnet_lite0 int8: already prepared: ")
    assert "quantizing" not in again.stderr
    assert int8.stat().st_mtime_ns == built


def test_prepare_fp32_twice_builds_once(tmp_cache, capsys):
    assert main(["models", "--prepare", "--format", "json"]) == 0
    out = capsys.readouterr()
    [row] = json.loads(out.out)
    assert (row["model"], row["precision"], row["already_cached"]) == ("efficientnet_lite0", "fp32", False)
    assert "building its ONNX graph" in out.err
    [graph] = list((tmp_cache / "onnx").glob("efficientnet_lite0-*-fp32-*.onnx"))
    assert main(["models", "--prepare", "efficientnet_lite0"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("efficientnet_lite0 fp32: already prepared: ") and out.err == ""
    assert list((tmp_cache / "onnx").glob("*.onnx")) == [graph]


def test_a_corrupt_cached_file_is_rebuilt_not_reported_as_prepared(tmp_cache, capsys):
    assert main(["models", "--prepare"]) == 0
    [graph] = list((tmp_cache / "onnx").glob("efficientnet_lite0-*-fp32-*.onnx"))
    graph.write_bytes(b"half a download")
    capsys.readouterr()
    assert main(["models", "--prepare", "--format", "json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["already_cached"] is False
    assert graph.stat().st_size > 1_000_000  # the whole graph again


def test_unknown_model_is_a_usage_error(tmp_cache, capsys):
    assert main(["models", "--prepare", "efficientnet_lite0", "nosuch_net"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.strip() == (
        "wanwu: error: unknown model 'nosuch_net'; known models: efficientnet_lite0, efficientnet_lite1, "
        "efficientnet_lite2, resnet18, vgg16"
    )
    assert not tmp_cache.exists()  # checked before anything was built


def test_missing_weights_say_how_to_get_them(tmp_cache, no_weights, capsys):
    assert main(["models", "--prepare", "resnet18", "--format", "json"]) == 1  # nothing could be prepared
    out = capsys.readouterr()
    [row] = json.loads(out.out)
    assert row["error"]["code"] == "model_unavailable" and row["path"] is None
    [line] = out.err.splitlines()
    assert line.startswith("wanwu: error: resnet18 is not available") and "wanwu download resnet18" in line

    # one model missing, one prepared: the command did something, exit 0, the missing one named
    assert main(["models", "--prepare", "resnet18", "efficientnet_lite0"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("efficientnet_lite0 fp32: prepared in ")
    assert "wanwu download resnet18" in out.err


def test_unwritable_cache_is_reported_before_any_work(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    monkeypatch.setenv("WANWU_CACHE_DIR", str(tmp_path / "unused"))  # --cache-dir sets it: restored after
    assert main(["models", "--prepare", "--cache-dir", str(blocker / "cache")]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert "cannot write the model cache" in out.err and "--cache-dir" in out.err
    assert "building" not in out.err


def test_torch_engine_has_nothing_to_prepare(tmp_cache, capsys):
    assert main(["models", "--prepare", "--engine", "torch", "--format", "json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == [] and "nothing to prepare" in out.err
    assert not tmp_cache.exists()


def test_prepare_flags_without_prepare_are_a_usage_error(capsys):
    assert main(["models", "--precision", "int8"]) == 2
    assert "--precision: only with --prepare" in capsys.readouterr().err


def test_prepared_files_follow_the_umask_not_mkstemps_0600(tmp_path):
    """A cache prepared ahead (at install, by another user) must be readable as the umask says."""
    cache = tmp_path / "cache"
    env = {**os.environ, "WANWU_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, "-m", "wanwu.cli", "models", "--prepare"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        preexec_fn=lambda: os.umask(0o027),
    )
    assert done.returncode == 0, done.stderr
    files = list((cache / "onnx").iterdir())
    assert len(files) == 2  # the graph and its .sha256
    assert {f.stat().st_mode & 0o777 for f in files} == {0o640}
