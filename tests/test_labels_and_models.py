"""The label table, the model registry, the architectures' key layouts and sizes, and the
postprocessing that turns logits into predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wanwu import Classifier, WanwuError
from wanwu.errors import UnknownModelError
from wanwu.labels import imagenet_classes, wnid_to_index
from wanwu.models import DEFAULT_MODEL, MODELS, get_spec
from wanwu.models.spec import IMAGENET_MEAN, IMAGENET_STD
from wanwu.models.weights import load_state_dict, resolve_weights
from wanwu.pipeline.results import softmax, top_k_predictions

ALL_MODELS = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "resnet18", "vgg16"]


# --- labels ----------------------------------------------------------------------------------
def test_label_table_is_imagenet_1k_in_sorted_wnid_order():
    classes = imagenet_classes()
    wnids = [c.wnid for c in classes]
    assert len(classes) == 1000 and len(set(wnids)) == 1000
    assert wnids == sorted(wnids)
    assert [c.index for c in classes] == list(range(1000))
    assert wnid_to_index() == {w: i for i, w in enumerate(wnids)}


@pytest.mark.parametrize(
    "index,wnid,label,label_zh",
    [  # torchvision's names, including its duplicate "crane" and "maillot" (distinct in Chinese)
        (0, "n01440764", "tench", "丁鲷"),
        (134, "n02012849", "crane", "鹤"),
        (281, "n02123045", "tabby", "虎斑猫"),
        (285, "n02124075", "Egyptian cat", "埃及猫"),
        (517, "n03126707", "crane", "起重机"),
        (638, "n03710637", "maillot", "紧身衣"),
        (639, "n03710721", "maillot", "连体泳衣"),
        (652, "n03763968", "military uniform", "军装"),
        (967, "n07920052", "espresso", "意式浓缩咖啡"),
        (999, "n15075141", "toilet tissue", "卫生纸"),
    ],
)
def test_known_classes(index, wnid, label, label_zh):
    assert tuple(imagenet_classes()[index]) == (index, wnid, label, label_zh)


# --- postprocessing --------------------------------------------------------------------------
def test_top_k_predictions_order_and_scores():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 1000)).astype(np.float32)
    logits[1, 281] = 50.0
    preds = top_k_predictions(logits, 5)
    assert [len(p) for p in preds] == [5, 5, 5]
    for row, p in zip(logits, preds):
        assert [x.index for x in p] == list(np.argsort(-row)[:5])
        np.testing.assert_allclose([x.score for x in p], softmax(row.astype(np.float64))[[x.index for x in p]])
    assert preds[1][0].label == "tabby" and preds[1][0].score > 0.999
    assert len(top_k_predictions(logits, 0)[0]) == 1  # k is clamped to 1..1000
    full = top_k_predictions(logits[:1], 5000)[0]
    assert len(full) == 1000 and abs(sum(p.score for p in full) - 1.0) < 1e-9


def test_softmax_is_stable_for_large_logits():
    p = softmax(np.array([[1000.0, 999.0, -1000.0]]))
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p[0, :2], [1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1))])


# --- registry --------------------------------------------------------------------------------
def test_registry_lists_the_models_of_the_issue():
    assert DEFAULT_MODEL == "efficientnet_lite0"
    assert set(ALL_MODELS) <= set(MODELS)


def test_unknown_model_and_engine_are_clear_errors():
    with pytest.raises(UnknownModelError, match="resnet18"):  # lists the known models
        get_spec("resnet19")
    with pytest.raises(UnknownModelError):
        Classifier("resnet19")
    with pytest.raises(WanwuError, match="onnxruntime"):
        Classifier(engine="tensorflow")


@pytest.mark.parametrize(
    "name,crop,resize,mean,std,filename",
    [
        ("efficientnet_lite0", 224, 256, (0.5,) * 3, (0.5,) * 3, "efficientnet-lite0-57934424.pth"),
        ("efficientnet_lite1", 240, 272, (0.5,) * 3, (0.5,) * 3, None),
        ("efficientnet_lite2", 260, 292, (0.5,) * 3, (0.5,) * 3, None),
        ("resnet18", 224, 256, IMAGENET_MEAN, IMAGENET_STD, "resnet18-f37072fd.pth"),
        ("vgg16", 224, 256, IMAGENET_MEAN, IMAGENET_STD, "vgg16-397923af.pth"),
    ],
)
def test_spec_preprocessing_and_weight_names(name, crop, resize, mean, std, filename):
    spec = get_spec(name)
    prep = spec.preprocessing
    assert (prep.crop_size, prep.resize_size, prep.mean, prep.std) == (crop, resize, mean, std)
    assert spec.input_size == crop
    if filename:
        assert spec.weights.filename == filename
    assert spec.weights.filename.split("-")[-1] == spec.weights.sha256_prefix + ".pth"


@pytest.mark.parametrize("name", ALL_MODELS)
def test_parameter_count_matches_the_published_one(name):
    spec = get_spec(name)
    with torch.device("meta"):  # shapes only, no memory
        model = spec.build()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    assert params == pytest.approx(spec.params_m, rel=0.01)


def _meta_state_dict(name: str) -> dict:
    with torch.device("meta"):
        return get_spec(name).build().state_dict()


def test_resnet18_has_torchvisions_key_layout():
    sd = _meta_state_dict("resnet18")
    assert len(sd) == 122  # as torchvision's resnet18().state_dict(), num_batches_tracked included
    expected = {
        "conv1.weight": (64, 3, 7, 7),
        "bn1.running_var": (64,),
        "bn1.num_batches_tracked": (),
        "layer1.0.conv1.weight": (64, 64, 3, 3),
        "layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "layer2.0.downsample.1.running_mean": (128,),
        "layer4.1.bn2.bias": (512,),
        "fc.weight": (1000, 512),
        "fc.bias": (1000,),
    }
    assert {k: tuple(sd[k].shape) for k in expected} == expected


def test_vgg16_has_torchvisions_key_layout():
    sd = _meta_state_dict("vgg16")
    conv_indices = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    expected = {f"features.{i}.{p}" for i in conv_indices for p in ("weight", "bias")}
    expected |= {f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")}
    assert set(sd) == expected
    assert tuple(sd["classifier.0.weight"].shape) == (4096, 512 * 7 * 7)
    assert tuple(sd["features.28.weight"].shape) == (512, 512, 3, 3)


def test_efficientnet_lite0_official_weights_load_strictly_from_the_package():
    spec = get_spec("efficientnet_lite0")
    resolved = resolve_weights(spec)
    assert resolved.official and resolved.source == "package"
    assert resolved.sha256.startswith(spec.weights.sha256_prefix)
    model = load_state_dict(spec, resolved)  # strict=True inside
    file_sd = torch.load(resolved.path, map_location="cpu", weights_only=True)
    assert set(model.state_dict()) == set(file_sd)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in file_sd.items())
