"""``wanwu models --prepare``: the cached files a first use would build are built ahead, into the
same cache, so that a later process reads them instead of building (the int8 model: ~10-30 s of
calibration). The int8 test runs real processes, as a user would; its prepare is the session's
one int8 calibration (the ``int8_cache`` fixture), which the other int8 tests then read."""

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


def test_prepared_int8_is_read_by_the_next_classify_not_built_again(int8_cache, tmp_path, chelsea):
    # the session's int8 cache was built by `wanwu -v models --prepare --precision int8 --format json`
    cache, first = int8_cache
    env = {**os.environ, "WANWU_CACHE_DIR": str(cache), "XDG_CACHE_HOME": str(tmp_path / "xdg")}

    assert first.returncode == 0, first.stderr
    [row] = json.loads(first.stdout)  # stdout is the JSON summary only, calibration's chatter included
    assert (row["model"], row["precision"], row["already_cached"], row["error"]) == (
        "efficientnet_lite0",
        "int8",
        False,
        None,
    )
    assert row["seconds"] > 0 and row["path"].endswith(".onnx")
    assert QUANTIZING in first.stderr  # progress on stderr
    [int8] = [p for p in (cache / "onnx").glob("efficientnet_lite0-*-int8-*.onnx") if p.name in row["path"]]
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
    assert main(["models", "--weights", "some.pth"]) == 2
    assert "--weights: only with --prepare" in capsys.readouterr().err


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


# --- the listing's `prepared` column: what --prepare would find already built -----------------
def _listed(capsys, *args: str) -> tuple[dict[str, str], str]:
    """``wanwu models`` as a table: {model: its prepared column}, and the whole stdout."""
    assert main(["models", *args]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    lines = out.out.splitlines()
    assert lines[0].split() == ["model", "available", "prepared", "top-1", "params", "GFLOPs", "size", "input"]
    rows = [line.replace(" *", "").split() for line in lines[2 : lines.index("")]]
    return {r[0]: r[2] for r in rows}, out.out


def _listed_json(capsys, *args: str) -> dict[str, list[str] | None]:
    assert main(["models", "--format", "json", *args]) == 0
    return {r["name"]: r["prepared"] for r in json.loads(capsys.readouterr().out)}


def _no_hashing(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a file was hashed")

    monkeypatch.setattr("hashlib.sha256", refuse)


def test_listing_shows_what_prepare_built(tmp_cache, capsys):
    shown, out = _listed(capsys)
    assert shown["efficientnet_lite0"] == "no"
    assert "`wanwu models --prepare`" in out and "prepared:" in out  # the legend says what the column is
    assert _listed_json(capsys)["efficientnet_lite0"] == []

    assert main(["models", "--prepare"]) == 0  # fp32 only
    capsys.readouterr()
    shown, _ = _listed(capsys)
    assert shown["efficientnet_lite0"] == "fp32" and shown["efficientnet_lite1"] == "no"
    assert _listed_json(capsys)["efficientnet_lite0"] == ["fp32"]


def test_listing_and_the_prepare_check_hash_nothing_when_the_memo_knows(tmp_cache, capsys, monkeypatch):
    assert main(["models", "--prepare"]) == 0
    capsys.readouterr()
    memo = json.loads((tmp_cache / "hashes.json").read_text())
    assert any(".pth|" in key for key in memo) and any(".onnx|" in key for key in memo)
    _no_hashing(monkeypatch)  # neither the weights nor the cached graph is read to be hashed
    shown, _ = _listed(capsys)
    assert shown["efficientnet_lite0"] == "fp32"
    assert main(["models", "--prepare"]) == 0
    assert capsys.readouterr().out.startswith("efficientnet_lite0 fp32: already prepared: ")


def test_listing_without_the_weights_checksum_says_unknown_not_hashing(tmp_cache, capsys, monkeypatch):
    assert main(["models", "--prepare"]) == 0
    capsys.readouterr()
    (tmp_cache / "hashes.json").unlink()  # e.g. a cache prepared by an older wanwu
    with monkeypatch.context() as patched:
        _no_hashing(patched)
        shown, out = _listed(capsys)
        assert shown["efficientnet_lite0"] == "?" and "?: not known" in out
        assert _listed_json(capsys)["efficientnet_lite0"] is None
    assert main(["models", "--prepare"]) == 0  # hashes the weights once, remembers them
    assert "already prepared" in capsys.readouterr().out
    assert _listed(capsys)[0]["efficientnet_lite0"] == "fp32"


def test_a_corrupt_cached_file_is_not_listed_as_prepared(tmp_cache, capsys):
    assert main(["models", "--prepare"]) == 0
    [graph] = list((tmp_cache / "onnx").glob("efficientnet_lite0-*-fp32-*.onnx"))
    graph.write_bytes(graph.read_bytes()[:1000])  # cut short: another size, so hashed again
    capsys.readouterr()
    assert _listed(capsys)[0]["efficientnet_lite0"] == "no"


def test_listing_marks_models_without_weights(tmp_cache, no_weights, capsys):
    shown, out = _listed(capsys)
    assert shown["resnet18"] == shown["vgg16"] == "—" and "—: no weights" in out
    rows = {r["name"]: r for r in json.loads((main(["models", "--format", "json"]), capsys.readouterr().out)[1])}
    assert rows["resnet18"]["available"] is False and rows["resnet18"]["prepared"] is None


def test_listing_follows_engine_and_cache_dir(tmp_cache, tmp_path, capsys, monkeypatch):
    other = tmp_path / "other-cache"
    monkeypatch.setenv("WANWU_CACHE_DIR", str(tmp_cache))  # --cache-dir sets it: restored after
    assert main(["models", "--prepare", "--cache-dir", str(other)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("WANWU_CACHE_DIR", str(tmp_cache))
    assert _listed(capsys)[0]["efficientnet_lite0"] == "no"
    assert _listed(capsys, "--cache-dir", str(other))[0]["efficientnet_lite0"] == "fp32"
    monkeypatch.setenv("WANWU_ENGINE", "torch")
    shown, out = _listed(capsys, "--cache-dir", str(other))
    assert set(shown.values()) == {"n/a"} and "the torch engine runs the weights as they are" in out
    assert _listed_json(capsys, "--engine", "torch")["efficientnet_lite0"] is None
