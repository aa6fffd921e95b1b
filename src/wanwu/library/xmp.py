"""XMP sidecars: the photo's tags where digiKam, darktable, Lightroom and Immich read keywords,
written beside the photo and never into it.

- ``dc:subject``: flat keywords (class and group names in the chosen language);
- ``lr:hierarchicalSubject``: ``wanwu|dog|golden retriever`` (darktable reads only this);
- ``digiKam:TagsList``: ``wanwu/dog/golden retriever`` (Immich reads it first).

An existing sidecar is parsed with defusedxml (no entities, no network) and merged: every
other field and the user's own keywords are kept, the keywords wanwu wrote last time (listed in
``wanwu:Keywords``, and every ``wanwu|...`` path) are replaced. Writes are atomic (temporary
file + ``os.replace``). A sidecar that is not valid XML is left alone and reported.
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from . import names

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "lr": "http://ns.adobe.com/lightroom/1.0/",
    "digiKam": "http://www.digikam.org/ns/1.0/",
    "wanwu": "urn:wanwu:xmp:1.0/",  # our own namespace: which keywords wanwu wrote
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)

ROOT = "wanwu"  # the top of wanwu's keyword hierarchy
PEOPLE_ROOT = "People"  # a named person: People|奶奶 (as digiKam and Lightroom write names)
NAMINGS = ("ext", "stem")  # photo.jpg.xmp (digiKam, darktable, Immich) | photo.xmp (Lightroom, Capture One)


def _q(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{NS[prefix]}}}{local}"


class SidecarError(Exception):
    pass


@dataclass(frozen=True)
class Keywords:
    flat: tuple[str, ...]
    hierarchical: tuple[str, ...]  # with "|"


def sidecar_path(photo_path: str, naming: str = "ext") -> str:
    if naming == "stem":
        return os.path.splitext(photo_path)[0] + ".xmp"
    return photo_path + ".xmp"


def keywords_for(tags: list[dict], lang: str = "en") -> Keywords:
    """Keywords of a photo's visible tags (``search`` tag dicts): each tag's label (a class, or a
    label group the tag policy backed off to) and its broader WordNet groups' (flat), and
    ``wanwu|GROUP|label`` for each of those groups, or ``wanwu|label`` for a tag in no group and
    for the user's free keywords (hierarchical)."""
    flat: dict[str, None] = {}
    hier: dict[str, None] = {}
    for t in tags:
        label = t["label"].replace("|", "/")
        flat.setdefault(t["label"], None)
        if t.get("person"):  # a named person (wanwu.library.people)
            hier.setdefault(f"{PEOPLE_ROOT}|{label}", None)
            continue
        if t.get("group"):
            broader = names.broader_groups(t["group"])
        else:
            broader = names.groups(t["wnid"]) if t.get("wnid") else ()
        groups = [names.group_label(g, lang).replace("|", "/") for g in broader]
        for g in groups:
            flat.setdefault(g, None)
            hier.setdefault(f"{ROOT}|{g}|{label}", None)
        if not groups:
            hier.setdefault(f"{ROOT}|{label}", None)
    return Keywords(tuple(flat), tuple(hier))


def _empty_packet() -> ET.ElementTree:
    meta = ET.Element(_q("x:xmpmeta"))
    rdf = ET.SubElement(meta, _q("rdf:RDF"))
    ET.SubElement(rdf, _q("rdf:Description"), {_q("rdf:about"): ""})
    return ET.ElementTree(meta)


def _read(path: str) -> ET.ElementTree:
    try:
        tree = SafeET.parse(path)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise SidecarError(f"{path}: not a valid XMP file, left alone ({exc})") from None
    root = tree.getroot()
    if root.tag == _q("rdf:RDF"):  # a bare rdf:RDF root is allowed: wrap it
        meta = ET.Element(_q("x:xmpmeta"))
        meta.append(root)
        tree = ET.ElementTree(meta)
    elif root.find(_q("rdf:RDF")) is None:
        raise SidecarError(f"{path}: no rdf:RDF inside, left alone")
    return tree


def _bag_items(desc: ET.Element, prop: str) -> list[str]:
    el = desc.find(_q(prop))
    if el is None:
        return []
    return [li.text or "" for li in el.iter(_q("rdf:li"))]


def _set_bag(desc: ET.Element, prop: str, items: list[str], kind: str = "rdf:Bag") -> None:
    for old in desc.findall(_q(prop)):
        desc.remove(old)
    if not items:
        return
    container = ET.SubElement(ET.SubElement(desc, _q(prop)), _q(kind))
    for item in items:
        ET.SubElement(container, _q("rdf:li")).text = item


def _description(tree: ET.ElementTree) -> ET.Element:
    root = tree.getroot()
    rdf = root.find(_q("rdf:RDF")) if root is not None else None
    if rdf is None:
        raise ValueError("an XMP packet without rdf:RDF")
    descs = rdf.findall(_q("rdf:Description"))
    for d in descs:  # the one that already has keywords, else the first
        if any(d.find(_q(p)) is not None for p in ("dc:subject", "lr:hierarchicalSubject", "digiKam:TagsList")):
            return d
    return descs[0] if descs else ET.SubElement(rdf, _q("rdf:Description"), {_q("rdf:about"): ""})


def merge(tree: ET.ElementTree, kw: Keywords) -> ET.ElementTree:
    """Replace wanwu's keywords in ``tree`` by ``kw``, keeping everything else."""
    desc = _description(tree)
    ours_before = set(_bag_items(desc, "wanwu:Keywords"))
    prefix = ROOT + "|"
    flat = [k for k in _bag_items(desc, "dc:subject") if k not in ours_before]
    people = {f"{PEOPLE_ROOT}|{k}" for k in ours_before}  # names wanwu wrote last time
    hier = [k for k in _bag_items(desc, "lr:hierarchicalSubject") if not k.startswith(prefix) and k not in people]
    tags = [k for k in _bag_items(desc, "digiKam:TagsList") if not k.startswith(ROOT + "/")]
    _set_bag(desc, "dc:subject", flat + [k for k in kw.flat if k not in flat])
    _set_bag(desc, "lr:hierarchicalSubject", hier + list(kw.hierarchical))
    _set_bag(desc, "digiKam:TagsList", tags + [h.replace("|", "/") for h in kw.hierarchical], "rdf:Seq")
    _set_bag(desc, "wanwu:Keywords", [k for k in kw.flat if k not in flat])  # the user's own stay theirs
    return tree


def write_sidecar(photo_path: str, kw: Keywords, naming: str = "ext", regions=None) -> str:
    """Create or merge the sidecar of ``photo_path``; returns its path. Never opens the photo.
    ``regions`` (``xmp_regions.Regions``): wanwu's face regions, replacing the ones it wrote."""
    path = sidecar_path(photo_path, naming)
    tree = _read(path) if os.path.exists(path) else _empty_packet()
    merge(tree, kw)
    if regions is not None:
        from .xmp_regions import apply

        apply(tree, regions)
    ET.indent(tree, space=" ")
    root = tree.getroot()
    assert root is not None
    body = ET.tostring(root, encoding="unicode")
    text = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n' + body + '\n<?xpacket end="w"?>\n'
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".wanwu-", suffix=".xmp.tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_keywords(sidecar: str) -> dict[str, list[str]]:
    """``{"dc:subject": [...], "lr:hierarchicalSubject": [...], "digiKam:TagsList": [...]}``."""
    desc = _description(_read(sidecar))
    return {p: _bag_items(desc, p) for p in ("dc:subject", "lr:hierarchicalSubject", "digiKam:TagsList")}
