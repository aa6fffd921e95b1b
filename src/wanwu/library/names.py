"""Class names as the library shows and searches them, in one place over ``wanwu.labels``:
a label in a language, the WordNet groups of a class, and the classes a query names
(class or group, English/Chinese/synonym/wnid). Uses ``wanwu.labels``' multilingual API when
it is there and falls back to the English short names otherwise."""

from __future__ import annotations

from functools import lru_cache

from .. import labels as _labels


def _api(name: str):
    return getattr(_labels, name, None)


@lru_cache(maxsize=1)
def _by_wnid() -> dict:
    return {c.wnid: c for c in _labels.imagenet_classes()}


def normalize_lang(lang: str | None) -> str:
    fn = _api("normalize_lang")
    if fn is not None:
        return fn(lang)
    return "zh" if (lang or "").lower().startswith("zh") else "en"


def default_lang() -> str:
    fn = _api("default_lang")
    return fn() if fn is not None else "en"


def label(wnid: str, lang: str = "en") -> str:
    """The class's name in ``lang`` (English when no translation is known)."""
    cls = _by_wnid().get(wnid)
    if cls is None:
        return wnid
    fn = _api("label_in")
    if fn is not None:
        return fn(cls, lang)
    return getattr(cls, "label_zh", None) if lang == "zh" and getattr(cls, "label_zh", None) else cls.label


def groups(wnid: str) -> tuple:
    """The WordNet groups (``LabelGroup``: key, label, label_zh) a class belongs to, broadest first."""
    fn = _api("groups_of")
    return tuple(fn(wnid)) if fn is not None else ()


def group_label(group, lang: str = "en") -> str:
    return (getattr(group, "label_zh", None) or group.label) if lang == "zh" else group.label


def all_groups() -> tuple:
    fn = _api("label_groups")
    return tuple(fn()) if fn is not None else ()


def find_wnids(query: str) -> tuple[str, ...]:
    """The wnids a query names: a class or a group, by any of its names, case-insensitive."""
    query = query.strip()
    if not query:
        return ()
    fn = _api("find_classes")
    if fn is not None:
        return tuple(c.wnid for c in fn(query))
    q = query.lower()
    exact = [c.wnid for c in _labels.imagenet_classes() if c.wnid == q or c.label.lower() == q]
    if exact:
        return tuple(exact)
    return tuple(c.wnid for c in _labels.imagenet_classes() if q in c.label.lower())


def suggestions(prefix: str, lang: str = "en", limit: int = 10) -> list[str]:
    """Class and group names starting with (then containing) ``prefix``, for a search box."""
    p = prefix.strip().lower()
    if not p:
        return []
    names: list[str] = []
    for g in all_groups():
        names += [g.label] + ([g.label_zh] if getattr(g, "label_zh", None) else [])
    for c in _labels.imagenet_classes():
        names.append(c.label)
        zh = getattr(c, "label_zh", None)
        if zh:
            names.append(zh)
    seen: dict[str, None] = {}
    for n in names:
        if n.lower().startswith(p):
            seen.setdefault(n, None)
    for n in names:
        if p in n.lower():
            seen.setdefault(n, None)
    return list(seen)[:limit]
