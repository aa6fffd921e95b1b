"""Issue 27 on real photos: no people photo gets a sensitive tag (primate, underwear ...), with or
without faces found, and a photo of a monkey the model is sure of keeps its tag. The photos are in
../shared (faces/, imagenet-100/); the tests skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wanwu.imaging import IMAGE_EXTENSIONS
from wanwu.tag_policy import STORED_TOP_K, policy, sensitive_wnids

ROOT = Path(__file__).resolve().parents[1]


def _shared(name: str) -> Path | None:
    for base in (ROOT.parent / "shared", ROOT.parent.parent / "shared"):
        if (base / name).is_dir():
            return base / name
    return None


FACES = Path(os.environ["WANWU_FACES_DATA"]) if os.environ.get("WANWU_FACES_DATA") else _shared("faces")
IMAGENET = _shared("imagenet-100")
GUENON = "n02484975"


@pytest.mark.skipif(FACES is None, reason="../shared/faces (photos of people) is not next to this checkout")
@pytest.mark.parametrize("faces_found", [False, True], ids=["no-faces-extra", "faces-found"])
@pytest.mark.parametrize("confidence", [None, 0.4], ids=["calibrated", "lenient-setting"])
def test_no_people_photo_gets_a_sensitive_tag(classifier, faces_found, confidence):
    assert FACES is not None
    photos = sorted(p for p in FACES.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    assert len(photos) >= 10
    # at 0.4 the portrait in a black dress (brassiere 44%) would be tagged but for the sensitive bar
    pol = policy(classifier.model_name, classifier.engine.precision, confidence)
    sensitive = sensitive_wnids()
    for path in photos:
        preds = classifier.classify(str(path), top_k=STORED_TOP_K)
        tag = pol.decide([(p.wnid, p.score) for p in preds], faces_found=faces_found)
        # a class on the list, or a group made only of them (primate, monkey, swimwear ...)
        if tag is not None:
            assert not set(tag.members) <= sensitive, f"{path.name}: sensitive tag {tag.label()}"


@pytest.mark.skipif(IMAGENET is None, reason="../shared/imagenet-100 is not next to this checkout")
def test_a_confident_primate_photo_keeps_its_tag(classifier):
    assert IMAGENET is not None
    photo = next(IMAGENET.glob(f"{GUENON}_*"))
    preds = classifier.classify(str(photo), top_k=STORED_TOP_K)
    pol = policy(classifier.model_name, classifier.engine.precision)
    assert preds[0].wnid == GUENON and preds[0].score > 0.9  # the model is sure: the case this test is about
    scores = [(p.wnid, p.score) for p in preds]
    tag = pol.decide(scores)
    assert tag is not None and tag.wnid == GUENON and tag.label("zh") == "长尾猴"
    assert pol.decide(scores, faces_found=True) is None  # where faces were found, never
