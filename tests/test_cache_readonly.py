"""The ONNX cache when it cannot be written: the model is exported and kept in memory with one
warning, a valid read-only cache is used as it is, and a corrupt file in a read-only cache is
rebuilt in memory (left alone on disk). CI runs as root, and root ignores permission bits:
the unwritable directories here are ones no user can create (under a regular file, under
/proc), with the chmod variant for everyone else."""

from __future__ import annotations

import errno
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from wanwu import Classifier
from wanwu.engines import onnx_cache
from wanwu.engines.onnx_cache import onnx_cache_path

CAT = {"tabby", "tiger cat", "Egyptian cat"}


def _unwritable(kind: str, tmp_path: Path) -> Path:
    if kind == "under a regular file":
        blocker = tmp_path / "file.txt"
        blocker.write_text("not a directory")
        return blocker / "cache"
    if kind == "under /proc":
        return Path(f"/proc/wanwu-cache-{os.getpid()}")
    if os.geteuid() == 0:
        pytest.skip("root writes into a chmod 0o555 directory anyway")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


@pytest.mark.parametrize("kind", ["under a regular file", "under /proc", "chmod 0o555"])
def test_unwritable_cache_keeps_the_model_in_memory(kind, tmp_path, monkeypatch, chelsea, caplog):
    cache = _unwritable(kind, tmp_path)
    monkeypatch.setenv("WANWU_CACHE_DIR", str(cache))
    with caplog.at_level(logging.WARNING, logger="wanwu.cache"):
        clf = Classifier()
    warnings = [r.getMessage() for r in caplog.records if r.name == "wanwu.cache"]
    assert len(warnings) == 1 and "cannot write the model cache" in warnings[0] and "in memory" in warnings[0]
    assert clf.classify(chelsea, top_k=1)[0].label in CAT
    assert not cache.exists() or list(cache.rglob("*")) == []


def _refuse_writes(monkeypatch) -> list[Path]:
    """Make the cache directory behave as read-only (EROFS), recording attempted writes."""
    attempts: list[Path] = []

    def read_only(path, data, **kw):
        attempts.append(Path(path))
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(onnx_cache, "write_atomic", read_only)
    return attempts


@pytest.fixture(scope="module")
def filled_cache(tmp_path_factory, chelsea):
    """A cache holding a valid export (made once), and the logits it gives for chelsea."""
    folder = tmp_path_factory.mktemp("filled") / "cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANWU_CACHE_DIR", str(folder))
        clf = Classifier()
        expected = clf.infer(clf.preprocess(clf.decode(chelsea).image)[None])
        relative = onnx_cache_path(clf.spec, clf.weights, "fp32").relative_to(folder)
    yield folder, relative, expected
    shutil.rmtree(folder, ignore_errors=True)


def test_valid_read_only_cache_is_used_without_writing(filled_cache, tmp_cache, monkeypatch, chelsea, caplog):
    source, relative, _ = filled_cache
    shutil.copytree(source, tmp_cache)
    path = tmp_cache / relative
    before = path.stat().st_mtime_ns
    attempts = _refuse_writes(monkeypatch)
    monkeypatch.setattr(
        onnx_cache, "build_from_weights", lambda *a, **k: pytest.fail("built although the cache is valid")
    )
    with caplog.at_level(logging.WARNING, logger="wanwu.cache"):
        again = Classifier()
    assert attempts == [] and caplog.records == []
    assert path.stat().st_mtime_ns == before
    assert again.classify(chelsea, top_k=1)[0].label in CAT


def test_corrupt_file_in_a_read_only_cache_is_rebuilt_in_memory(filled_cache, tmp_cache, monkeypatch, chelsea, caplog):
    source, relative, expected = filled_cache
    shutil.copytree(source, tmp_cache)
    path = tmp_cache / relative
    damaged = path.read_bytes()[: path.stat().st_size // 3]
    path.write_bytes(damaged)
    attempts = _refuse_writes(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="wanwu.cache"):
        rebuilt = Classifier()
    text = caplog.text
    assert "is corrupt (checksum mismatch); rebuilding it" in text and "keeping the model in memory" in text
    assert attempts and attempts[0] == path  # it tried, was refused, and went on
    assert path.read_bytes() == damaged  # the read-only file is left as it was
    got = rebuilt.infer(rebuilt.preprocess(rebuilt.decode(chelsea).image)[None])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_server_starts_and_answers_with_an_unwritable_cache(tmp_path, monkeypatch, chelsea, caplog):
    from fastapi.testclient import TestClient

    from wanwu.server import ServerConfig, create_app

    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    monkeypatch.setenv("WANWU_CACHE_DIR", str(blocker / "cache"))
    with (
        caplog.at_level(logging.WARNING, logger="wanwu.cache"),
        TestClient(create_app(ServerConfig.from_env(environ={}))) as client,
    ):
        assert client.get("/v2/health/ready").status_code == 200
        r = client.post("/api/v1/classify?top_k=1", content=chelsea.read_bytes())
    assert r.status_code == 200 and r.json()["results"][0]["predictions"][0]["label"] in CAT
    assert "cannot write the model cache" in caplog.text
