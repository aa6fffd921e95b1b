"""Class names in English and Chinese, WordNet label groups, and lookup by any name.

The facts live in four package data files (one source of truth each):
  ``data/imagenet1k-classes.tsv``  wnid, English name (as torchvision names them), Chinese name; the
                                   1000 classes in class-index order (index == rank of the wnid, sorted)
  ``data/label-groups.tsv``        the groups people search by ("dog" 狗, "vehicle" 交通工具 ...): key,
                                   names, aliases and the WordNet nodes that define each
  ``data/class-aliases.tsv``       the everyday words people type for classes ("beach" -> seashore,
                                   lakeside, sandbar; 金毛 -> golden retriever), English and Chinese
  ``data/imagenet1k-wordnet.json`` derived from the WordNet hierarchy by ``scripts/build_label_groups.py``:
                                   each class's synonyms and each group's member classes

Lookups are case-insensitive and ignore ``-``/``_``/extra spaces. A name can mean a class and a
group at once (猪 is the class "hog" and the group of swine): ``find_classes`` returns both,
``resolve_class`` only ever returns one class. Languages: ``en`` and ``zh`` (``normalize_lang``
reads language tags, locales and ``Accept-Language`` headers).
"""

from __future__ import annotations

import difflib
import json
import os
import unicodedata
from functools import lru_cache
from importlib import resources
from typing import Iterable, Mapping, NamedTuple

from .errors import AmbiguousLabelError, UnknownLabelError, UnsupportedLanguageError

LANGS = ("en", "zh")
DEFAULT_LANG = "en"
LANG_NAMES = {"en": "English", "zh": "中文"}
_LANG_ALIASES = {
    "en": "en",
    "english": "en",
    "c": "en",
    "posix": "en",
    "zh": "zh",
    "chinese": "zh",
    "中文": "zh",
    "汉语": "zh",
    "cmn": "zh",
}
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")  # POSIX order: the first one set decides


class ImageNetClass(NamedTuple):
    index: int  # type: ignore[assignment]  # the class index; shadows tuple.index on purpose
    wnid: str
    label: str  # English
    label_zh: str


class LabelGroup(NamedTuple):
    key: str  # e.g. "dog", "musical_instrument"
    label: str  # English
    label_zh: str
    wnids: tuple[str, ...]  # member classes, class-index order


def _data(name: str) -> str:
    return resources.files("wanwu").joinpath("data", name).read_text("utf-8")


def _rows(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _damaged(what: str) -> RuntimeError:
    return RuntimeError(f"wanwu's {what} is damaged; reinstall wanwu (or run scripts/build_label_groups.py)")


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[ImageNetClass, ...]:
    """The 1000 classes in class-index order."""
    rows = _rows(_data("imagenet1k-classes.tsv"))
    if any(len(r) != 3 or not all(r) for r in rows):
        raise _damaged("class table (expected wnid, English, Chinese on every line)")
    classes = tuple(ImageNetClass(i, wnid, en, zh) for i, (wnid, en, zh) in enumerate(rows))
    if len(classes) != 1000 or [c.wnid for c in classes] != sorted(c.wnid for c in classes):
        raise _damaged("class table (expected 1000 sorted wnids)")
    return classes


@lru_cache(maxsize=1)
def wnid_to_index() -> dict[str, int]:
    return {c.wnid: c.index for c in imagenet_classes()}


@lru_cache(maxsize=1)
def _wordnet() -> dict:
    return json.loads(_data("imagenet1k-wordnet.json"))


def synonyms_of(wnid: str) -> tuple[str, ...]:
    """WordNet's other names for a class (English and Latin), e.g. ``mouse`` -> ``computer mouse``."""
    return tuple(_wordnet()["class_synonyms"].get(wnid, ()))


def _parse_ranges(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        out.extend(range(int(first), int(last or first) + 1))
    return out


@lru_cache(maxsize=1)
def _group_table() -> tuple[tuple[LabelGroup, tuple[str, ...]], ...]:
    """Each group with all its lookup names (key, names, aliases, WordNet synonyms), in file order."""
    classes, derived = imagenet_classes(), _wordnet()["groups"]
    table = []
    for key, en, zh, aliases, _nodes in _rows(_data("label-groups.tsv")):
        if key not in derived:
            raise _damaged(f"label group table (group {key!r} has no members)")
        wnids = tuple(classes[i].wnid for i in _parse_ranges(derived[key]["classes"]))
        names = (key, en, zh, *filter(None, (a.strip() for a in aliases.split(","))), *derived[key]["synonyms"])
        table.append((LabelGroup(key, en, zh, wnids), names))
    return tuple(table)


def label_groups() -> tuple[LabelGroup, ...]:
    """The label groups (about 140), general ones and specific ones, in a stable order."""
    return tuple(group for group, _names in _group_table())


def group_names(group: LabelGroup) -> tuple[str, ...]:
    """Every name a group answers to: key, English, Chinese, aliases, WordNet synonyms."""
    return next(names for g, names in _group_table() if g.key == group.key)


@lru_cache(maxsize=1)
def _groups_by_wnid() -> dict[str, tuple[LabelGroup, ...]]:
    by_wnid: dict[str, list[LabelGroup]] = {}
    for group in sorted(label_groups(), key=lambda g: len(g.wnids)):  # most specific first
        for wnid in group.wnids:
            by_wnid.setdefault(wnid, []).append(group)
    return {wnid: tuple(groups) for wnid, groups in by_wnid.items()}


def groups_of(wnid: str | ImageNetClass) -> tuple[LabelGroup, ...]:
    """The groups a class belongs to, most specific first (golden retriever: retriever ... dog ... animal)."""
    return _groups_by_wnid().get(getattr(wnid, "wnid", wnid), ())  # type: ignore[arg-type]


# --- lookup by name ---------------------------------------------------------------------------
def normalize_name(text: str) -> str:
    """The form names are compared in: NFKC, case-folded, ``-``/``_`` as spaces, spaces collapsed."""
    text = unicodedata.normalize("NFKC", str(text)).casefold().replace("_", " ").replace("-", " ")
    return " ".join(text.split())


def _index(entries: Iterable[tuple[int, str, object]]) -> dict[str, tuple[int, list]]:
    """name -> (best tier, targets of that tier); a lower tier is a stronger claim to the name."""
    index: dict[str, tuple[int, list]] = {}
    for tier, name, target in entries:
        key = normalize_name(name)
        best = index.get(key)
        if best is None or tier < best[0]:
            index[key] = (tier, [target])
        elif tier == best[0] and target not in best[1]:
            best[1].append(target)
    return index


@lru_cache(maxsize=1)
def class_aliases() -> tuple[tuple[tuple[str, ...], tuple[ImageNetClass, ...]], ...]:
    """The everyday words of ``data/class-aliases.tsv``: (words, the classes they all mean), in file order."""
    classes, index = imagenet_classes(), wnid_to_index()
    table = []
    for row in _rows(_data("class-aliases.tsv")):
        if len(row) != 3 or any(w not in index for w in row[1].split(",")):
            raise _damaged("class alias table (expected words, known wnids, English names on every line)")
        words = tuple(w.strip() for w in row[0].split(",") if w.strip())
        table.append((words, tuple(classes[index[w]] for w in row[1].split(","))))
    return tuple(table)


@lru_cache(maxsize=1)
def _class_index() -> dict[str, tuple[int, list]]:
    def entries():
        for c in imagenet_classes():
            yield from ((0, name, c) for name in (c.wnid, str(c.index), c.label, c.label_zh))
            yield from ((1, name, c) for name in synonyms_of(c.wnid))
        for words, members in class_aliases():  # as strong as a synonym; a class's own name wins
            yield from ((1, word, c) for word in words for c in members)

    return _index(entries())


@lru_cache(maxsize=1)
def _group_index() -> dict[str, tuple[int, list]]:
    def entries():
        for group, names in _group_table():
            n_aliases = len(names) - 3 - len(_wordnet()["groups"][group.key]["synonyms"])
            for i, name in enumerate(names):
                yield (0 if i < 3 else 1 if i < 3 + n_aliases else 2), name, group

    return _index(entries())


def _lookup(index: Mapping[str, tuple[int, list]], name: str) -> list:
    return list(index.get(normalize_name(name), (0, []))[1])


def find_classes(query: str | int) -> tuple[ImageNetClass, ...]:
    """Every class a query names, in class-index order: a class (by English or Chinese name, WordNet
    synonym, wnid or index) and/or a group (all its classes). Empty if the query names nothing."""
    found = {c.index: c for c in _lookup(_class_index(), str(query))}
    for group in _lookup(_group_index(), str(query)):
        found.update((c.index, c) for c in classes_of(group))
    return tuple(found[i] for i in sorted(found))


def _listing(classes: Iterable[ImageNetClass]) -> str:
    return ", ".join(f"{c.index} {c.wnid} {c.label} ({c.label_zh})" for c in classes)


def _suggestions(name: str) -> str:
    names = list(_class_index()) + list(_group_index())
    close = difflib.get_close_matches(normalize_name(name), names, n=3, cutoff=0.75)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def resolve_class(name: str | int) -> ImageNetClass:
    """Exactly one class, by wnid, index, English or Chinese name, WordNet synonym or everyday word.
    Raises ``UnknownLabelError`` or ``AmbiguousLabelError`` (with what to type instead)."""
    classes = imagenet_classes()
    if isinstance(name, int) and not isinstance(name, bool):
        if 0 <= name < len(classes):
            return classes[name]
        raise UnknownLabelError(f"class index {name} is out of range: ImageNet-1k classes are 0-{len(classes) - 1}")
    found = _lookup(_class_index(), str(name))
    if len(found) == 1:
        return found[0]
    if found:
        raise AmbiguousLabelError(
            f"{name!r} names {len(found)} classes: {_listing(found)}; give the wnid, the index or the Chinese name"
        )
    groups = _lookup(_group_index(), str(name))
    if groups:
        members = classes_of(groups[0])
        raise AmbiguousLabelError(
            f"{name!r} is the group {groups[0].key} ({groups[0].label_zh}) of {len(members)} "
            f"classes, not one class; e.g. {_listing(members[:3])}"
        )
    raise UnknownLabelError(
        f"no ImageNet-1k class is called {name!r} (`wanwu labels` lists them all){_suggestions(str(name))}"
    )


def resolve_group(name: str | LabelGroup) -> LabelGroup:
    """Exactly one group, by key, English or Chinese name, alias or WordNet synonym."""
    if isinstance(name, LabelGroup):
        return name
    found = _lookup(_group_index(), name)
    if len(found) == 1:
        return found[0]
    if found:
        raise AmbiguousLabelError(f"{name!r} names the groups {', '.join(g.key for g in found)}; give one key")
    raise UnknownLabelError(
        f"no label group is called {name!r} (`wanwu labels --groups` lists them){_suggestions(str(name))}"
    )


def classes_of(group: str | LabelGroup) -> tuple[ImageNetClass, ...]:
    """The member classes of a group (by key or any of its names), class-index order."""
    index, classes = wnid_to_index(), imagenet_classes()
    return tuple(classes[index[w]] for w in resolve_group(group).wnids)


# --- languages --------------------------------------------------------------------------------
def label_in(item: ImageNetClass | LabelGroup, lang: str) -> str:
    """The name of a class or group in ``lang`` (``zh``, ``zh-CN``, ``en`` ...)."""
    return item.label_zh if normalize_lang(lang) == "zh" else item.label


def _language(tag: str) -> str | None:
    """``zh_CN.UTF-8``, ``zh-Hans-CN``, ``en-US``, ``Chinese`` -> ``zh``/``en``; None if neither."""
    tag = tag.strip().split(".")[0].split("@")[0].casefold()
    primary = tag.replace("_", "-").split("-")[0]
    return _LANG_ALIASES.get(tag) or _LANG_ALIASES.get(primary)


def normalize_lang(value: str | None, default: str = DEFAULT_LANG, *, strict: bool = False) -> str:
    """``"en"`` or ``"zh"`` from a language tag, a locale name or an ``Accept-Language`` header
    (``"fr-CH, zh;q=0.9, en;q=0.8"`` -> ``"zh"``: the most preferred language wanwu speaks).
    Empty or ``*`` gives ``default``; so does anything else unless ``strict``, which raises
    ``UnsupportedLanguageError`` instead (for an explicit ``--lang`` or ``lang=``)."""
    if value is not None and value in LANGS:  # already one of ours: every label of every answer asks again
        return value
    best: tuple[float, str] | None = None
    for part in (value or "").split(","):
        tag, _, params = part.partition(";")
        q = 1.0
        for param in params.split(";"):
            k, _, v = param.partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        lang = default if tag.strip() == "*" else _language(tag)
        if lang and q > 0 and (best is None or q > best[0]):
            best = (q, lang)
    if best:
        return best[1]
    if strict and (value or "").strip():
        raise UnsupportedLanguageError(f"language {value!r} is not available: use en (English) or zh (中文)")
    return default


def parse_lang(text: str) -> str:
    """``normalize_lang`` for a setting's parser: ValueError with a short reason if not en/zh."""
    try:
        return normalize_lang(text, strict=True)
    except UnsupportedLanguageError:
        raise ValueError(f"{text!r} is not a language wanwu speaks: use en or zh") from None


def default_lang(environ: Mapping[str, str] | None = None) -> str:
    """The language of the user's locale: the first of LC_ALL, LC_MESSAGES, LANG that is set
    (``zh_CN.UTF-8`` -> ``zh``); English otherwise."""
    environ = os.environ if environ is None else environ
    for variable in LOCALE_VARIABLES:
        if environ.get(variable):
            return normalize_lang(environ[variable])
    return DEFAULT_LANG
