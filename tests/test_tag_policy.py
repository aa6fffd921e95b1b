"""The tag policy (wanwu.tag_policy): specific where sure, a group where not, nothing where unsure,
and sensitive classes only far above the bar and never where faces were found."""

from __future__ import annotations

import numpy as np
import pytest

from wanwu import labels, settings, tag_policy
from wanwu.errors import ConfigError
from wanwu.tag_policy import Policy, policy, policy_for_tagger, tempered

TABBY, TIGER_CAT, EGYPTIAN_CAT = "n02123045", "n02123159", "n02124075"
MACAQUE, FUR_COAT, BRASSIERE, GOLDEN = "n02487347", "n03404251", "n02892767", "n02099601"
PLAIN = Policy(0.6, 0.9)  # temperature 1: the numbers in the tests are the probabilities used


def test_classes_split_inside_a_group_give_the_group():
    tag = PLAIN.decide([(EGYPTIAN_CAT, 0.38), (TABBY, 0.38), (TIGER_CAT, 0.17), (GOLDEN, 0.02)])
    assert tag is not None and tag.group is not None and tag.wnid is None
    assert tag.group.key == "cat"
    assert tag.score == pytest.approx(0.93)
    assert tag.label("en") == "cat" and tag.label("zh") == "猫"
    assert tag.to_dict("zh")["label"] == "猫" and tag.to_dict()["group"] == "cat"


def test_a_sure_class_is_the_tag_and_the_most_specific_group_wins():
    assert PLAIN.decide([(TABBY, 0.8), (TIGER_CAT, 0.1)]).wnid == TABBY
    # 0.5 + 0.3 golden/labrador reach 0.6 in "retriever" (5 classes) before "dog" (118)
    tag = PLAIN.decide([(GOLDEN, 0.5), ("n02099712", 0.3)])
    assert tag.group.key == "retriever"
    assert tag.matches(labels.resolve_group("dog").wnids) and tag.matches(labels.resolve_group("retriever").wnids)
    assert not tag.matches([GOLDEN])  # "golden retriever" does not find a photo only known to be a retriever


def test_an_unsure_photo_gets_no_tag():
    assert PLAIN.decide([(TABBY, 0.3), (GOLDEN, 0.2), ("n03404251", 0.1)]) is None
    assert PLAIN.decide([]) is None
    assert PLAIN.decide([("not-a-wnid", 0.99), (TABBY, float("nan"))]) is None


def test_sensitive_classes_need_the_high_bar_and_feed_no_group():
    # the portrait: fur coat 60%, macaque 11%: no macaque, no "primate", no "mammal"
    assert PLAIN.decide([(FUR_COAT, 0.45), (MACAQUE, 0.11)]) is None
    tag = PLAIN.decide([(FUR_COAT, 0.6), (MACAQUE, 0.11)])
    assert tag.wnid == FUR_COAT
    assert PLAIN.decide([(BRASSIERE, 0.85)]) is None  # above t, below the bar
    assert PLAIN.decide([(MACAQUE, 0.7), ("n02488291", 0.15)]) is None  # primates summed below the bar
    assert PLAIN.decide([(MACAQUE, 0.7), ("n02488291", 0.25)]).group.key == "monkey"  # ... and above it
    assert PLAIN.decide([(MACAQUE, 0.95)]).wnid == MACAQUE  # a confident primate keeps its tag


def test_faces_found_drops_sensitive_classes_entirely():
    assert PLAIN.decide([(MACAQUE, 0.99)], faces_found=True) is None
    assert PLAIN.decide([(BRASSIERE, 0.97), (FUR_COAT, 0.02)], faces_found=True) is None
    assert PLAIN.decide([(FUR_COAT, 0.7), (MACAQUE, 0.29)], faces_found=True).wnid == FUR_COAT


def test_the_sensitive_list_holds_every_primate_and_the_garments():
    sensitive = tag_policy.sensitive_wnids()
    assert set(labels.resolve_group("primate").wnids) <= sensitive
    for name in ("brassiere", "bikini", "swimming trunks", "diaper"):
        assert labels.resolve_class(name).wnid in sensitive
    assert {"n03710637", "n03710721"} <= sensitive  # both maillots
    assert TABBY not in sensitive and FUR_COAT not in sensitive


def test_tempered_probabilities_from_the_top_k_never_overstate():
    rng = np.random.default_rng(0)
    wnids = [c.wnid for c in labels.imagenet_classes()]
    for temperature in (0.5, 0.7, 1.5):
        for _ in range(20):
            z = rng.normal(0, 3, 1000)
            p = np.exp(z - z.max())
            p /= p.sum()
            exact = np.exp((z - z.max()) / temperature)
            exact /= exact.sum()
            order = np.argsort(-p)[: tag_policy.STORED_TOP_K]
            for (w, q), i in zip(tempered([(wnids[i], p[i]) for i in order], temperature), order):
                assert w == wnids[i] and q <= exact[i] + 1e-9


def test_calibration_per_model_and_precision_and_the_setting_wins():
    fp32, int8 = policy("efficientnet_lite0", "fp32"), policy("efficientnet_lite0", "int8")
    assert 0 < fp32.temperature and 0.5 <= fp32.confidence < fp32.sensitive_bar <= 1
    assert int8.confidence >= 0.5
    assert policy_for_tagger("efficientnet_lite0/int8/0123456789ab") == int8
    unknown = policy("resnet18", "fp32")
    assert (unknown.confidence, unknown.sensitive_bar) == (
        tag_policy.FALLBACK_CONFIDENCE,
        tag_policy.FALLBACK_SENSITIVE_BAR,
    )
    strict = policy("efficientnet_lite0", "fp32", confidence=0.95)
    assert strict.confidence == 0.95 and strict.sensitive_bar >= 0.95


def test_the_setting_parses_and_rejects_clearly(monkeypatch):
    assert tag_policy.parse_confidence("auto") is None
    assert tag_policy.parse_confidence(" 0.8 ") == 0.8
    for bad in ("0", "1.5", "nan", "sure"):
        with pytest.raises(ValueError):
            tag_policy.parse_confidence(bad)
    assert settings.ModelSettings.from_env({"WANWU_TAG_CONFIDENCE": "0.9"}).tag_confidence == 0.9
    with pytest.raises(ConfigError, match="WANWU_TAG_CONFIDENCE"):
        settings.ModelSettings.from_env({"WANWU_TAG_CONFIDENCE": "very"})
