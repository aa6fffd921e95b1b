"""Registry-driven tests (as timm's loop over ``list_models()``): every registered model x every
engine in ``ENGINE_TABLE`` x every precision. A new model, engine or precision is tested here
without editing this file.

- an (engine, precision) pair the table does not list is refused with ``ConfigError`` before
  anything loads;
- every other pair builds a ``Classifier`` (official weights when they are installed, else seeded
  random torchvision-format weights), classifies and explains a real photo end to end (smoke), and
  agrees with the torch fp32 reference: fp32 engines within 1e-4 on the logits (and on the class
  activation map) and with the same top-5;
  int8 with the reference's top-1 among its own top-5 on the real photos (official weights).

All converted models go to the session's int8 cache (``int8_cache`` in conftest.py: the default
model's int8 model is calibrated once per session and shared by the engines and tests that run
it). Models over 50 M parameters (VGG-16, 528 MB) only get
the refusal checks here: int8 calibration and an OpenVINO compile of it take minutes and GBs
on a small machine, and test_engines_parity.py already checks its fp32 graph against torch.
"""

from __future__ import annotations

import numpy as np
import pytest

from wanwu import Classifier
from wanwu.engines import ENGINE_TABLE, PRECISIONS, get_engine
from wanwu.errors import ConfigError
from wanwu.models import DEFAULT_MODEL, list_specs
from wanwu.models.weights import availability

REFERENCE = ("torch", "fp32")
BIG_MODEL_PARAMS_M = 50
# The default model on every engine and precision runs before every commit (`make test`); the other
# models (a build per engine each, and an int8 calibration of ~10-30 s) are the slow tier (`make
# test-all`). Their ONNX graphs are still checked against torch in the fast tier (test_engines_parity.py).
CASES = [
    pytest.param(s.name, e.name, p, marks=[pytest.mark.slow] if s.name != DEFAULT_MODEL else [])
    for s in list_specs()
    for e in ENGINE_TABLE
    for p in PRECISIONS
]
PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg", "grace_hopper.jpg")


@pytest.fixture(scope="module")
def private_cache(int8_cache):
    """The session's int8 cache: the default model's int8 model is read from it, not calibrated
    again; the other files this module converts are built beside it."""
    assert int8_cache.prepare.returncode == 0, int8_cache.prepare.stderr[-3000:]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANWU_CACHE_DIR", str(int8_cache.path))
        yield


@pytest.fixture(scope="module")
def built(private_cache, random_weights):
    """``built(model, engine, precision)`` -> (Classifier, official weights?), each built once."""
    made: dict[tuple[str, str, str], tuple[Classifier, bool]] = {}

    def build(model: str, engine: str, precision: str) -> tuple[Classifier, bool]:
        key = (model, engine, precision)
        if key not in made:
            spec = next(s for s in list_specs() if s.name == model)
            official, _ = availability(spec)
            weights = None if official else random_weights(model)
            made[key] = (Classifier(model, engine, precision=precision, weights=weights, threads=2), official)
        return made[key]

    return build


def _skip_unless_runnable(model: str, engine: str, precision: str) -> None:
    spec = next(s for s in list_specs() if s.name == model)
    ok, why = get_engine(engine).available()
    if not ok:
        pytest.skip(why)
    if spec.params_m and spec.params_m > BIG_MODEL_PARAMS_M:
        pytest.skip(f"{model} ({spec.params_m:.0f} M parameters): its fp32 graph is checked in test_engines_parity.py")


@pytest.mark.parametrize("model, engine, precision", CASES)
def test_every_model_engine_precision(built, photos, model, engine, precision):
    if not get_engine(engine).supports(precision):
        with pytest.raises(ConfigError, match=f"the {engine} engine runs"):
            Classifier(model, engine, precision=precision)
        return
    _skip_unless_runnable(model, engine, precision)
    clf, official = built(model, engine, precision)
    assert (clf.model_name, clf.engine.name, clf.engine.precision) == (model, engine, precision)

    # smoke: a real photo through every stage
    result = clf.classify_one(photos["chelsea.png"], top_k=5)
    assert result.ok and len(result.predictions) == 5
    scores = [p.score for p in result.predictions]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-6
    assert all(v >= 0 for v in result.timing_ms.values()) and result.timing_ms["inference"] > 0
    if official:
        assert result.predictions[0].label in {"tabby", "tiger cat", "Egyptian cat"}
    # explain: the top-1 class's activation map over the whole photo, from the same forward pass
    explained = clf.explain(photos["chelsea.png"])
    assert explained.target.index == result.predictions[0].index
    assert 0 <= explained.cam.min() and explained.cam.max() <= 1 and explained.heatmap().shape == (300, 451)

    # parity with the torch fp32 reference on the same weights
    if (engine, precision) == REFERENCE or not get_engine(REFERENCE[0]).available()[0]:
        return
    reference, _ = built(model, *REFERENCE)
    x = np.stack([clf.preprocess(clf.decode(photos[name]).image) for name in PHOTOS])
    got, want = clf.infer(x), reference.infer(x)
    assert got.shape == want.shape == (len(PHOTOS), clf.spec.num_classes)
    assert np.isfinite(got).all()
    if precision == "fp32":
        diff = float(np.abs(got - want).max())
        assert diff < 1e-4 * max(1.0, float(np.abs(want).max())), f"max |logit diff| {diff:.2e}"
        assert (np.argsort(-got, axis=1)[:, :5] == np.argsort(-want, axis=1)[:, :5]).all()
        reference_map = reference.explain(photos["chelsea.png"], target=explained.target.index).cam
        assert float(np.abs(explained.cam - reference_map).max()) < 1e-4
    elif official:  # quantized: the reference's answer stays among the top 5
        for row, name in enumerate(PHOTOS):
            assert int(np.argmax(want[row])) in np.argsort(-got[row])[:5].tolist(), name


def test_classifier_int8_end_to_end(use_int8_cache, chelsea, coffee, capsys):
    """``wanwu classify --precision int8`` and ``Classifier(precision="int8")`` on the prepared int8
    model: the right answers, read from the cache, not calibrated again (the first use's quiet
    stdout: test_cli_models_prepare.py and test_quiet_stdout.py)."""
    import json

    from wanwu import cli
    from wanwu.engines.onnx_cache import onnx_cache_path

    cats = {"tabby", "tiger cat", "Egyptian cat"}
    assert cli.main(["classify", str(chelsea), "--precision", "int8", "--format", "json", "-k", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["results"][0]["predictions"][0]["label"] in cats

    clf = Classifier(precision="int8")
    path = onnx_cache_path(clf.spec, clf.weights, "int8")
    assert path.is_relative_to(use_int8_cache) and path.is_file()
    built_at = path.stat().st_mtime_ns
    assert clf.engine.precision == "int8"
    assert clf.classify(chelsea, top_k=1)[0].label in cats
    assert clf.classify(coffee, top_k=1)[0].label in {"espresso", "cup", "coffee mug"}
    assert path.stat().st_mtime_ns == built_at  # read from the cache, not calibrated again
