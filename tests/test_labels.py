"""Chinese class names, WordNet label groups and lookup by name (wanwu.labels)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from wanwu import labels as L
from wanwu.errors import AmbiguousLabelError, UnknownLabelError, UnsupportedLanguageError

ROOT = Path(__file__).resolve().parents[1]
HIERARCHY = next(
    (
        p / "imagenet1k-hierarchy.tsv"
        for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared")
        if (p / "imagenet1k-hierarchy.tsv").is_file()
    ),
    None,
)
CJK = re.compile(r"[\u4e00-\u9fff]")


# --- Chinese names ----------------------------------------------------------------------------
def test_every_class_has_a_distinct_chinese_name():
    names = [c.label_zh for c in L.imagenet_classes()]
    assert all(CJK.search(n) for n in names if n not in ("iPod",))
    assert len(set(names)) == 1000, sorted({n for n in names if names.count(n) > 1})


@pytest.mark.parametrize(
    "wnid,zh",
    [
        ("n03793489", "鼠标"),  # mouse: the computer mouse
        ("n01608432", "鸢"),  # kite: the bird
        ("n03954731", "刨子"),  # plane: the carpenter's tool
        ("n02012849", "鹤"),
        ("n03126707", "起重机"),  # the two cranes
        ("n01443537", "金鱼"),
        ("n02701002", "救护车"),
        ("n07714990", "西兰花"),
        ("n09193705", "高山"),
        ("n04228054", "滑雪板"),
    ],
)
def test_chinese_names_follow_the_wordnet_sense(wnid, zh):
    assert L.imagenet_classes()[L.wnid_to_index()[wnid]].label_zh == zh


# --- groups -----------------------------------------------------------------------------------
def test_groups_are_named_in_both_languages_and_distinct():
    groups = L.label_groups()
    assert 60 <= len(groups) <= 150
    for attr in ("key", "label", "label_zh"):
        values = [getattr(g, attr) for g in groups]
        assert len(set(values)) == len(values), attr
    assert all(CJK.search(g.label_zh) and g.wnids for g in groups)
    index = L.wnid_to_index()
    assert all([index[w] for w in g.wnids] == sorted(index[w] for w in g.wnids) for g in groups)


def test_dog_holds_all_118_breeds_and_nothing_else():
    dog = L.classes_of("dog")
    assert [c.index for c in dog] == list(range(151, 269))
    assert L.classes_of("狗") == dog == L.find_classes("DOG") == L.find_classes("狗")
    assert not {c.label for c in dog} & {"timber wolf", "red fox", "hyena", "tabby"}


@pytest.mark.parametrize(
    "group,members,outsiders",
    [
        ("cat", {"tabby", "Persian cat", "Siamese cat", "Egyptian cat"}, {"lion", "tiger", "cougar"}),
        ("big cat", {"lion", "tiger", "leopard", "snow leopard", "jaguar", "cheetah"}, {"tabby"}),
        ("bird", {"goldfinch", "bald eagle", "king penguin", "ostrich", "kite", "crane"}, {"airliner"}),
        ("fish", {"goldfish", "tench", "great white shark", "puffer"}, {"killer whale", "starfish"}),
        ("primate", {"gorilla", "chimpanzee", "baboon", "Madagascar cat"}, {"koala"}),
        ("vehicle", {"ambulance", "canoe", "airliner", "mountain bike", "tank"}, {"lawn mower"}),
        ("musical instrument", {"violin", "grand piano", "harmonica", "drum"}, {"iPod"}),
        ("fruit", {"banana", "strawberry", "pineapple", "Granny Smith"}, {"broccoli"}),
        ("vegetable", {"broccoli", "cauliflower", "cucumber", "bell pepper"}, {"banana"}),
        ("furniture", {"desk", "dining table", "rocking chair", "wardrobe"}, {"bathtub"}),
    ],
)
def test_groups_hold_what_the_hierarchy_says(group, members, outsiders):
    labels = {c.label for c in L.classes_of(group)}
    assert members <= labels and not outsiders & labels


def test_groups_of_a_class_most_specific_first():
    keys = [g.key for g in L.groups_of("n02099601")]  # golden retriever
    assert keys[0] == "retriever" and keys.index("dog") < keys.index("mammal") < keys.index("animal")
    assert L.groups_of(L.resolve_class("tabby"))[0].key == "cat"
    assert L.groups_of("n99999999") == ()


@pytest.mark.skipif(HIERARCHY is None, reason="../shared/imagenet1k-hierarchy.tsv is not next to this checkout")
def test_shipped_wordnet_data_is_what_the_script_derives_from_the_hierarchy():
    spec = importlib.util.spec_from_file_location("build_label_groups", ROOT / "scripts" / "build_label_groups.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shipped = json.loads((ROOT / "src" / "wanwu" / "data" / "imagenet1k-wordnet.json").read_text("utf-8"))
    assert module.build(HIERARCHY) == shipped, "run scripts/build_label_groups.py"


# --- lookup -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["mouse", "MOUSE", "computer mouse", "Computer-Mouse", "鼠标", "n03793489", "673", 673]
)
def test_resolve_class_by_any_name(name):
    assert L.resolve_class(name).wnid == "n03793489"


def test_resolve_class_refuses_ambiguous_and_unknown_names_helpfully():
    with pytest.raises(AmbiguousLabelError, match="鹤.*起重机"):
        L.resolve_class("crane")
    assert L.resolve_class("起重机").index == 517 and L.resolve_class("鹤").index == 134
    with pytest.raises(AmbiguousLabelError, match="group"):
        L.resolve_class("狗")
    with pytest.raises(UnknownLabelError, match="goldfish"):
        L.resolve_class("gold fish")
    with pytest.raises(UnknownLabelError, match="0-999"):
        L.resolve_class(1000)
    assert UnknownLabelError.exit_status == 2


def test_find_classes_unites_a_class_and_a_group_of_the_same_name():
    assert [c.label for c in L.find_classes("猪")] == ["hog", "wild boar", "warthog"]
    assert {c.label_zh for c in L.find_classes("熊猫")} == {"大熊猫", "小熊猫"}
    assert [c.index for c in L.find_classes("Crane")] == [134, 517]
    assert L.find_classes("猫") == L.find_classes("Cat") == L.classes_of("cat")
    assert L.find_classes("no such thing") == () == L.find_classes("  ")


def test_classes_of_unknown_group():
    with pytest.raises(UnknownLabelError):
        L.classes_of("spaceship")


# --- languages --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value,lang",
    [
        ("zh", "zh"),
        ("zh-CN", "zh"),
        ("zh_CN.UTF-8", "zh"),
        ("zh-Hant-TW", "zh"),
        ("ZH", "zh"),
        ("中文", "zh"),
        ("en", "en"),
        ("en_US.UTF-8", "en"),
        ("C", "en"),
        ("", "en"),
        (None, "en"),
        ("*", "en"),
        ("fr", "en"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("fr-CH, zh;q=0.9, en;q=0.8", "zh"),
        ("zh;q=0, en;q=0.1", "en"),
        ("de, *;q=0.5", "en"),
    ],
)
def test_normalize_lang(value, lang):
    assert L.normalize_lang(value) == lang


def test_normalize_lang_strict_refuses_what_it_does_not_speak():
    with pytest.raises(UnsupportedLanguageError, match="en.*zh"):
        L.normalize_lang("fr", strict=True)
    with pytest.raises(ValueError):
        L.parse_lang("klingon")
    assert L.parse_lang("zh-CN") == "zh"


@pytest.mark.parametrize(
    "environ,lang",
    [
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LC_ALL": "zh_TW.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
        ({"LC_ALL": "C", "LANG": "zh_CN.UTF-8"}, "en"),
        ({"LC_MESSAGES": "zh_CN"}, "zh"),
        ({}, "en"),
        ({"LC_ALL": "", "LANG": "zh_CN.UTF-8"}, "zh"),
    ],
)
def test_default_lang_follows_the_locale(environ, lang):
    assert L.default_lang(environ) == lang


def test_label_in():
    mouse = L.resolve_class("n03793489")
    assert (L.label_in(mouse, "zh-CN"), L.label_in(mouse, "en"), L.label_in(mouse, "fr")) == ("鼠标", "mouse", "mouse")
    assert L.label_in(L.resolve_group("dog"), "zh") == "狗"
