"""Class names as the library shows and searches them, over ``wanwu.labels`` (the one source of
names): a class's label in a language, its WordNet groups, the classes a query names (class or
group, English/Chinese/synonym/wnid) and suggestions for a search box."""

from __future__ import annotations

from functools import lru_cache

from .. import labels as _labels
from ..labels import default_lang, label_groups, normalize_lang, parse_lang  # noqa: F401  (re-exported)
from ..tag_policy import broader_groups as _broader_groups


@lru_cache(maxsize=1)
def _by_wnid() -> dict[str, _labels.ImageNetClass]:
    return {c.wnid: c for c in _labels.imagenet_classes()}


def label(wnid: str, lang: str = "en") -> str:
    """The class's name in ``lang``; an unknown wnid is shown as itself."""
    cls = _by_wnid().get(wnid)
    return _labels.label_in(cls, lang) if cls is not None else wnid


def groups(wnid: str) -> tuple[_labels.LabelGroup, ...]:
    """The WordNet groups a class belongs to, narrowest first (retriever, dog, ..., animal)."""
    return _labels.groups_of(wnid) if wnid in _by_wnid() else ()


def broader_groups(key: str) -> tuple[_labels.LabelGroup, ...]:
    """The groups that contain the whole group ``key`` (retriever: dog, canine, ..., animal)."""
    return _broader_groups(_labels.resolve_group(key))


def group_label(group: _labels.LabelGroup, lang: str = "en") -> str:
    return _labels.label_in(group, lang)


def find_wnids(query: str) -> tuple[str, ...]:
    """The wnids a query names: a class or a group, by any of its names, case-insensitive
    (``dog`` and ``狗`` -> all 118 breeds)."""
    query = query.strip()
    return tuple(c.wnid for c in _labels.find_classes(query)) if query else ()


@lru_cache(maxsize=1)
def _all_names() -> tuple[str, ...]:
    out: dict[str, None] = {}
    for g in label_groups():
        out.setdefault(g.label, None)
        out.setdefault(g.label_zh, None)
    for c in _labels.imagenet_classes():
        out.setdefault(c.label, None)
        out.setdefault(c.label_zh, None)
    for words, _classes in _labels.class_aliases():  # the everyday words: 金毛, beach ...
        out.update(dict.fromkeys(words))
    return tuple(n for n in out if n)


def suggestions(prefix: str, limit: int = 10) -> list[str]:
    """Group and class names (both languages) starting with, then containing, ``prefix``."""
    p = prefix.strip().casefold()
    if not p:
        return []
    starts = [n for n in _all_names() if n.casefold().startswith(p)]
    contains = [n for n in _all_names() if p in n.casefold() and not n.casefold().startswith(p)]
    return (starts + contains)[:limit]
