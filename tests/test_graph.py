"""The torch-free graphs themselves: both outputs named and shaped as documented for every
model, the linear head that makes CAM exact, and the graph version in the cache key."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from wanwu import Classifier
from wanwu.engines import onnx_cache
from wanwu.engines.onnx_cache import load_or_export, onnx_cache_path
from wanwu.graph import FEATURES_NAME, INPUT_NAME, LOGITS_NAME
from wanwu.graph.head import linear_head
from wanwu.models import get_spec
from wanwu.models.weights import read_weights, resolve_weights

FEATURE_SHAPES = {  # (C, h, w) of the last feature map, as issue 12 (explain) reads it
    "efficientnet_lite0": (1280, 7, 7),
    "efficientnet_lite1": (1280, 8, 8),
    "efficientnet_lite2": (1280, 9, 9),
    "resnet18": (512, 7, 7),
    "vgg16": (512, 7, 7),
}


def graph_of(name: str, random_weights) -> tuple[bytes, object]:
    spec = get_spec(name)
    weights = resolve_weights(spec, random_weights(name) if name in ("resnet18", "vgg16") else None)
    return load_or_export(spec, weights), weights


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18"])
def test_outputs_and_linear_head(tmp_cache, random_weights, chelsea, name):
    model, weights = graph_of(name, random_weights)
    graph = onnx.load_from_string(model).graph
    assert [i.name for i in graph.input] == [INPUT_NAME]
    assert [o.name for o in graph.output] == [LOGITS_NAME, FEATURES_NAME]
    dims = [[d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in graph.output]
    assert dims == [["batch", 1000], ["batch", *FEATURE_SHAPES[name]]]

    W, b = linear_head(model)
    head = "_fc" if name.startswith("efficientnet") else "fc"
    state_dict = read_weights(weights)
    np.testing.assert_array_equal(W, state_dict[f"{head}.weight"])
    np.testing.assert_array_equal(b, state_dict[f"{head}.bias"])
    clf = Classifier(name, weights=weights.path if name == "resnet18" else None)
    logits, features = clf.infer_with_features(clf.preprocess(clf.decode(chelsea).image)[None])
    cam = np.einsum("ck,nkhw->nchw", W, features)  # one map per class
    np.testing.assert_allclose(cam.mean(axis=(2, 3)) + b, logits, atol=1e-4)  # CAM is exact


@pytest.mark.slow  # VGG-16's graph built from 528 MB of weights, as its parity tests (test_engines_parity.py)
def test_vgg_has_no_linear_head(tmp_cache, random_weights):
    model, _ = graph_of("vgg16", random_weights)
    assert linear_head(model) is None


def test_graph_version_is_part_of_the_cache_key(tmp_cache, monkeypatch):
    clf = Classifier()
    old = onnx_cache_path(clf.spec, clf.weights)
    assert old.is_file() and f"-g{onnx_cache.GRAPH_VERSION}." in old.name
    monkeypatch.setattr(onnx_cache, "GRAPH_VERSION", onnx_cache.GRAPH_VERSION + 1)
    new = onnx_cache_path(clf.spec, clf.weights)
    assert new != old and not new.exists()
    Classifier()
    assert new.is_file()  # a changed builder rebuilds instead of serving the old graph
