"""The ONNX export cache: written once with a checksum sidecar, reused, rebuilt (with a warning)
when corrupt, and built and served without importing torch. Every test uses a private WANWU_CACHE_DIR."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys

import numpy as np
import pytest

from wanwu import Classifier
from wanwu.engines import onnx_cache
from wanwu.engines.onnx_cache import onnx_cache_path


def cached_file(clf: Classifier):
    return onnx_cache_path(clf.spec, clf.weights, "fp32")


def logits_for(clf: Classifier, photo) -> np.ndarray:
    return clf.infer(clf.preprocess(clf.decode(photo).image)[None])


def test_export_is_written_once_with_its_checksum(tmp_cache, chelsea, monkeypatch):
    clf = Classifier()
    path = cached_file(clf)
    assert path.parent == tmp_cache / "onnx" and path.is_file()
    assert clf.weights.sha256[:16] in path.name  # keyed by the weights' checksum
    sidecar = path.with_name(path.name + ".sha256")
    assert sidecar.read_text().strip() == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, sidecar.name]  # no temp files left
    mtime = path.stat().st_mtime_ns

    def no_build(*args, **kwargs):
        raise AssertionError("built again although the cache is valid")

    monkeypatch.setattr(onnx_cache, "build_from_weights", no_build)
    again = Classifier()
    assert path.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(logits_for(again, chelsea), logits_for(clf, chelsea))


@pytest.mark.parametrize("damage", ["flipped bytes", "truncated", "sidecar deleted"])
def test_corrupt_cache_is_rebuilt_not_a_crash(tmp_cache, chelsea, caplog, damage):
    first = Classifier()
    expected = logits_for(first, chelsea)
    path = cached_file(first)
    sidecar = path.with_name(path.name + ".sha256")
    data = bytearray(path.read_bytes())
    if damage == "flipped bytes":
        for i in range(len(data) // 2, len(data) // 2 + 64):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "truncated":
        path.write_bytes(bytes(data[: len(data) // 3]))
    else:
        sidecar.unlink()

    with caplog.at_level(logging.WARNING, logger="wanwu.cache"):
        rebuilt = Classifier()
    if damage != "sidecar deleted":
        assert any("corrupt" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records), caplog.text
    assert sidecar.read_text().strip() == hashlib.sha256(path.read_bytes()).hexdigest()
    np.testing.assert_allclose(logits_for(rebuilt, chelsea), expected, atol=1e-5)


def test_unwritable_cache_keeps_the_model_in_memory(tmp_path, monkeypatch, chelsea, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("WANWU_CACHE_DIR", str(blocker / "cache"))
    with caplog.at_level(logging.WARNING, logger="wanwu.cache"):
        clf = Classifier()
    assert "cannot write the model cache" in caplog.text
    assert clf.classify(chelsea, top_k=1)[0].label in {"tabby", "tiger cat", "Egyptian cat"}


SERVE = """
import sys
from wanwu import Classifier
top = Classifier().classify(sys.argv[1], top_k=1)[0].label
print(top, "|", "torch" in sys.modules, "|", "onnx" in sys.modules)
"""


def test_building_and_serving_do_not_import_torch(tmp_cache, chelsea):
    def serve() -> tuple[str, bool, bool]:
        out = (
            subprocess.run(
                [sys.executable, "-c", SERVE, str(chelsea)], capture_output=True, text=True, timeout=120, check=True
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        label, torch_imported, onnx_imported = out.split(" | ")
        return label, torch_imported == "True", onnx_imported == "True"

    cold_label, cold_imported_torch, cold_imported_onnx = serve()  # empty cache: builds the graph (wanwu.graph)
    assert not cold_imported_torch, "building the ONNX graph imported torch"
    assert cold_imported_onnx  # the graph builder uses the onnx package
    assert list((tmp_cache / "onnx").glob("*.onnx"))
    warm_label, warm_imported_torch, warm_imported_onnx = serve()
    assert not warm_imported_torch, "serving a cached ONNX model imported torch"
    assert not warm_imported_onnx, "serving a cached ONNX model imported the onnx package (only building needs it)"
    assert warm_label == cold_label


def test_the_session_does_not_keep_the_model_bytes(tmp_cache, chelsea):
    """ONNX Runtime's wrapper held the graph bytes for as long as the session lived (the model's
    size in RSS for nothing: 47 MB for ResNet-18); the engine lets them go once the session is built."""
    from wanwu.engines.onnx_files import onnx_model
    from wanwu.engines.onnxruntime_engine import OnnxRuntimeEngine
    from wanwu.models import get_spec
    from wanwu.models.weights import resolve_weights

    spec = get_spec("efficientnet_lite0")
    model = onnx_model(spec, resolve_weights(spec, None), "fp32")
    before = sys.getrefcount(model)
    engine = OnnxRuntimeEngine(model)
    assert sys.getrefcount(model) == before  # nobody else holds them
    clf = Classifier()
    assert clf.classify(chelsea)[0].label in {"tabby", "tiger cat", "Egyptian cat"}  # and it still classifies
    assert engine.run(clf.preprocess(clf.decode(chelsea).image)[None]).shape == (1, 1000)
