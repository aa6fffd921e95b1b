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
        # issue 26 item 15: WordNet's sense, and what the photos show
        ("n01631663", "幼螈"),  # eft: a young newt, not a lizard (蜥)
        ("n03017168", "管钟"),  # chime: the orchestra's tuned bells
        ("n03832673", "笔记本电脑"),  # notebook computer (laptop: 手提电脑)
        ("n04067472", "渔线轮"),  # reel: on a fishing rod
        ("n04355933", "墨镜"),  # sunglass: the photos are sunglasses, not a burning glass
        ("n03770679", "商务车"),  # minivan: a family MPV, not a 面包车 microvan
        ("n02106382", "弗兰德斯牧牛犬"),
        ("n02105641", "英国古代牧羊犬"),
        ("n02123159", "条纹猫"),  # tiger cat: any striped cat, not the 狸花猫 breed
    ],
)
def test_chinese_names_follow_the_wordnet_sense(wnid, zh):
    assert L.imagenet_classes()[L.wnid_to_index()[wnid]].label_zh == zh


def test_chinese_names_use_characters_every_font_has():
    """CJK Extension A (鹟䴕's 䴕) and beyond are missing from many fonts: names stay in the basic block."""
    rare = re.compile(r"[\u3400-\u4dbf\U00020000-\U0003ffff]")
    names = [c.label_zh for c in L.imagenet_classes()] + [g.label_zh for g in L.label_groups()]
    assert not [n for n in names if rare.search(n)]
    assert L.resolve_class("鹟䴕").label == "jacamar"  # the rare spelling still finds it


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


@pytest.mark.parametrize(
    "key,zh,old",
    [
        ("pet", "宠物", "家养动物"),
        ("lobster", "龙虾", "龙虾类"),
        ("pig", "猪", "猪类"),
        ("cattle", "牛", "牛类"),
        ("game_bird", "野禽", "鸡形目鸟类"),
    ],
)
def test_groups_have_everyday_chinese_names(key, zh, old):
    group = L.resolve_group(key)
    assert group.label_zh == zh and L.resolve_group(old) == group == L.resolve_group(zh)


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


@pytest.mark.parametrize(
    "word,expected",
    [
        ("beach", {"seashore", "lakeside", "sandbar"}),
        ("海滩", {"seashore", "lakeside", "sandbar"}),
        ("Beach", {"seashore", "lakeside", "sandbar"}),
        ("金毛", {"golden retriever"}),
        ("哈士奇", {"Siberian husky", "Eskimo dog"}),
        ("husky", {"Siberian husky", "Eskimo dog"}),
        ("柯基", {"Pembroke", "Cardigan"}),
    ],
)
def test_everyday_words_find_their_classes(word, expected):
    assert {c.label for c in L.find_classes(word)} == expected


def test_everyday_words_and_groups():
    assert L.resolve_class("金毛").label == "golden retriever"
    with pytest.raises(AmbiguousLabelError, match="Siberian husky"):
        L.resolve_class("哈士奇")
    pets = L.classes_of("pet")
    assert L.find_classes("宠物") == pets and L.resolve_class("golden retriever") in pets


def test_class_alias_table_is_consistent_and_no_word_is_shadowed():
    text = (ROOT / "src" / "wanwu" / "data" / "class-aliases.tsv").read_text("utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert len(rows) == len(L.class_aliases()) >= 20
    for (words, members), row in zip(L.class_aliases(), rows):
        assert [c.label for c in members] == [n.strip() for n in row[2].split(",")], row
        for word in words:  # a word a class's own name (or synonym) already claims would do nothing
            assert set(members) <= set(L.find_classes(word)), word


# the options of `wanwu search` / `wanwu labels` that take a value (the rest are flags)
_VALUE_OPTIONS = {"--lang", "--format", "--tag-confidence", "--min-score", "--offset", "--limit", "--db", "--xmp-name"}


def _example_queries() -> list[tuple[str, str]]:
    """Every query the page, the ``--help`` epilogs and the README show as an example."""
    from wanwu.cli import labels as cli_labels
    from wanwu.cli import library as library_cli

    found: list[tuple[str, str]] = []
    static = ROOT / "src" / "wanwu" / "server" / "static"
    for name in ("index.html", "library.js"):
        for text in re.findall(r"(?:Search your photos|搜索照片)[:：]\s*([^\"…]+)", (static / name).read_text("utf-8")):
            found += [(name, q.strip()) for q in re.split(r"[,、]", text) if q.strip()]
    sources = {
        "README.md": (ROOT / "README.md").read_text("utf-8"),
        "docs/library.md": (ROOT / "docs" / "library.md").read_text("utf-8"),
        "wanwu search --help": library_cli.SEARCH_EXAMPLES,
        "wanwu labels --help": cli_labels.EXAMPLES,
    }
    for where, text in sources.items():
        people = {n.strip('"') for n in re.findall(r"wanwu people name \S+ (\S+)", text)}  # found by name, not class
        people |= set(re.findall(r'wanwu search "([^"]+)"` finds the photos [^.]*named', text))  # named in another app
        for sentence in re.split(r"\.\s", text):  # other apps' keywords are found as the user's, not as classes
            if re.search(r"[Kk]eywords? other apps|keyword or its hierarchy", sentence):
                people |= set(re.findall(r"`wanwu search (\S+)`", sentence))
        for line in re.findall(r"wanwu (?:search|labels) ([^|#\n`]*)", text):
            words = iter(re.findall(r'"[^"]+"|\S+', line))
            for word in words:
                if word in _VALUE_OPTIONS:  # its value is not a query
                    next(words, None)
                    continue
                if word.startswith("-"):
                    continue
                if word.startswith((">", "[")):
                    break
                if word.isupper() and word.isascii():  # a metavariable (NAME, PHOTO), not a query
                    continue
                if word.strip('"') not in people:
                    found.append((where, word.strip('"')))
    return found


def test_every_example_query_finds_a_class():
    examples = _example_queries()
    assert {"beach", "海滩", "狗", "golden retriever"} <= {q for _w, q in examples}
    assert [(where, q) for where, q in examples if not L.find_classes(q)] == []


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
