"""XMP sidecars: the photo's tags where digiKam, darktable, Lightroom and Immich read keywords,
written beside the photo and never into it.

- ``dc:subject``: flat keywords (class and group names in the chosen language);
- ``lr:hierarchicalSubject``: ``wanwu|dog|golden retriever`` (darktable reads only this);
- ``digiKam:TagsList``: ``wanwu/dog/golden retriever`` (Immich reads it first).

An existing sidecar is parsed with defusedxml (no entities, no network) and merged: every
other field and the user's own keywords are kept, the keywords wanwu wrote last time (listed in
``wanwu:Keywords``, and every ``wanwu|...`` path) are replaced, and the usual XMP prefixes are
written back as such (``xmp:Rating``, not ``ns2:Rating``). The rules (docs/library.md):

- writes are atomic (``wanwu.atomic.write_atomic``): a rewritten sidecar keeps its mode, a new
  one gets its photo's permissions (less the execute bits), never 0600;
- nothing is written when there is nothing to say: no sidecar for a photo that failed, none for
  a photo without a tag unless one exists, and an existing one whose keywords would not change
  is not rewritten;
- a sidecar that is a symbolic link (or not a regular file, or not valid XML, or over 64 MB) is
  left alone and reported: wanwu never reads or writes through a link;
- problems are reported once per photo, naming the photo and its sidecar (never a temporary
  file); after "no space left", no more sidecars are tried on that disk in the run.
"""

from __future__ import annotations

import errno
import os
import stat
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from ..atomic import describe_disk, is_disk_full, write_atomic
from ..errors import SidecarError
from . import names

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "lr": "http://ns.adobe.com/lightroom/1.0/",
    "digiKam": "http://www.digikam.org/ns/1.0/",
    "wanwu": "urn:wanwu:xmp:1.0/",  # our own namespace: which keywords wanwu wrote
}
# The prefixes other photo tools write (the URIs as ExifTool lists them), so that what wanwu
# keeps of a sidecar is written back under its usual name (ElementTree would say ns0, ns1 ...).
KNOWN_PREFIXES = {
    **NS,
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "xmpMM": "http://ns.adobe.com/xap/1.0/mm/",
    "xmpRights": "http://ns.adobe.com/xap/1.0/rights/",
    "xmpDM": "http://ns.adobe.com/xmp/1.0/DynamicMedia/",
    "xmpidq": "http://ns.adobe.com/xmp/Identifier/qual/1.0/",
    "xmpNote": "http://ns.adobe.com/xmp/note/",
    "stEvt": "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#",
    "stRef": "http://ns.adobe.com/xap/1.0/sType/ResourceRef#",
    "stDim": "http://ns.adobe.com/xap/1.0/sType/Dimensions#",
    "stArea": "http://ns.adobe.com/xmp/sType/Area#",
    "stVer": "http://ns.adobe.com/xap/1.0/sType/Version#",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "crs": "http://ns.adobe.com/camera-raw-settings/1.0/",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "exifEX": "http://cipa.jp/exif/1.0/",
    "aux": "http://ns.adobe.com/exif/1.0/aux/",
    "tiff": "http://ns.adobe.com/tiff/1.0/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "Iptc4xmpCore": "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "plus": "http://ns.useplus.org/ldf/xmp/1.0/",
    "mwg-rs": "http://www.metadataworkinggroup.com/schemas/regions/",
    "mwg-kw": "http://www.metadataworkinggroup.com/schemas/keywords/",
    "mwg-coll": "http://www.metadataworkinggroup.com/schemas/collections/",
    "MicrosoftPhoto": "http://ns.microsoft.com/photo/1.0",
    "MP": "http://ns.microsoft.com/photo/1.2/",
    "MPRI": "http://ns.microsoft.com/photo/1.2/t/RegionInfo#",
    "MPReg": "http://ns.microsoft.com/photo/1.2/t/Region#",
    "acdsee": "http://ns.acdsee.com/iptc/1.0/",
    "darktable": "http://darktable.sf.net/",
    "GPano": "http://ns.google.com/photos/1.0/panorama/",
    "cc": "http://creativecommons.org/ns#",
}
for _prefix, _uri in KNOWN_PREFIXES.items():
    ET.register_namespace(_prefix, _uri)
MAX_SIDECAR_BYTES = 64 << 20  # a larger "sidecar" is not one a photo tool wrote: left alone

ROOT = "wanwu"  # the top of wanwu's keyword hierarchy
PEOPLE_ROOT = "People"  # a named person: People|奶奶 (as digiKam and Lightroom write names)
NAMINGS = ("ext", "stem")  # photo.jpg.xmp (digiKam, darktable, Immich) | photo.xmp (Lightroom, Capture One)


def _q(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{NS[prefix]}}}{local}"


@dataclass(frozen=True)
class Keywords:
    flat: tuple[str, ...]
    hierarchical: tuple[str, ...]  # with "|"


def sidecar_path(photo_path: str, naming: str = "ext") -> str:
    if naming == "stem":
        return os.path.splitext(photo_path)[0] + ".xmp"
    return photo_path + ".xmp"


def sidecar_stamp(photo_path: str) -> str:
    """What says whether a photo's sidecars changed: size and mtime of each one there is
    (``photo.jpg.xmp``, ``photo.xmp``), "" when there is none. One ``lstat`` per naming."""
    parts = []
    for naming in NAMINGS:
        try:
            st = os.lstat(sidecar_path(photo_path, naming))
        except OSError:
            continue
        parts.append(f"{naming}:{st.st_size}:{st.st_mtime_ns}")
    return " ".join(parts)


def keywords_for(tags: list[dict], lang: str = "en") -> Keywords:
    """Keywords of a photo's visible tags (``search`` tag dicts): each tag's label (a class, or a
    label group the tag policy backed off to) and its broader WordNet groups' (flat), and
    ``wanwu|GROUP|label`` for each of those groups, or ``wanwu|label`` for a tag in no group and
    for the user's free keywords (hierarchical)."""
    flat: dict[str, None] = {}
    hier: dict[str, None] = {}
    for t in tags:
        if t.get("source"):  # another app's keyword: already in its sidecar or photo, never wanwu's
            continue
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


def _adopt_prefix(prefix: str, uri: str) -> None:
    """Keep a sidecar's own prefix for a namespace no registered prefix names (so an unknown
    app's ``acme:Flag`` stays ``acme:Flag``); never displaces a registered prefix or URI."""
    registered = getattr(ET, "_namespace_map", None)
    if not prefix or registered is None or uri in registered or prefix in registered.values():
        return
    try:
        ET.register_namespace(prefix, uri)
    except ValueError:  # ns0, ns1 ...: ElementTree's own names
        pass


def read_sidecar(photo_path: str, path: str) -> ET.ElementTree | None:
    """The sidecar's XMP packet, None when there is none, ``SidecarError`` when it is to be left
    alone (a link, not a regular file, too large, unreadable, not XMP). Opened without
    following a link (``O_NOFOLLOW``): a sidecar swapped for a link meanwhile is refused too."""
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise SidecarError(
                photo_path, path, "left alone: it is a symbolic link (wanwu never writes through one)"
            ) from None
        raise SidecarError(photo_path, path, f"left alone: cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SidecarError(photo_path, path, "left alone: not a regular file")
        if st.st_size > MAX_SIDECAR_BYTES:
            raise SidecarError(photo_path, path, f"left alone: larger than {MAX_SIDECAR_BYTES >> 20} MB")
        try:
            parsed = SafeET.iterparse(f, events=("start-ns",))
            for _event, (prefix, uri) in parsed:
                _adopt_prefix(prefix, uri)
            tree = ET.ElementTree(parsed.root)  # type: ignore[attr-defined]
        except (ET.ParseError, DefusedXmlException) as exc:
            raise SidecarError(photo_path, path, f"left alone: not a valid XMP file ({exc})") from None
        except OSError as exc:
            raise SidecarError(photo_path, path, f"left alone: cannot be read ({exc.strerror})") from None
    root = tree.getroot()
    if root is not None and root.tag == _q("rdf:RDF"):  # a bare rdf:RDF root is allowed: wrap it
        meta = ET.Element(_q("x:xmpmeta"))
        meta.append(root)
        tree = ET.ElementTree(meta)
    elif root is None or root.find(_q("rdf:RDF")) is None:
        raise SidecarError(photo_path, path, "left alone: no rdf:RDF inside")
    return tree


def parse_packet(data: bytes) -> ET.ElementTree | None:
    """An XMP packet embedded in a photo (``img.info["xmp"]``), parsed with defusedxml; None when
    it is not XML."""
    try:
        return ET.ElementTree(SafeET.fromstring(data))
    except (ET.ParseError, DefusedXmlException, ValueError):
        return None


@dataclass(frozen=True)
class Keyword:
    """A keyword another app (or the user in it) wrote: its name (a hierarchy's leaf) and, when
    it came from a hierarchy, the whole path joined with "|" (``Places|China|北京``)."""

    name: str
    path: str | None = None


def others_keywords(tree: ET.ElementTree) -> list[Keyword]:
    """Every keyword of an XMP packet that wanwu did not write: the union of ``dc:subject``,
    ``lr:hierarchicalSubject`` ("|") and ``digiKam:TagsList`` ("/") over every
    ``rdf:Description`` (not the first field that has some: immich #28015), a hierarchy kept as
    its leaf with its path. Left out, as ``merge`` replaces them: the keywords listed in
    ``wanwu:Keywords``, every ``wanwu|...`` path and the ``People|NAME`` of a name wanwu wrote."""
    root = tree.getroot()
    descs = [] if root is None else list(root.iter(_q("rdf:Description")))
    ours = {k for d in descs for k in _bag_items(d, "wanwu:Keywords")}
    found: list[Keyword] = []

    def add(parts: list[str]) -> None:
        parts = [p.strip() for p in parts if p.strip()]
        if not parts or parts[0] == ROOT or (parts[0] == PEOPLE_ROOT and len(parts) == 2 and parts[1] in ours):
            return
        if len(parts) == 1 and parts[0] in ours:
            return
        found.append(Keyword(parts[-1], "|".join(parts) if len(parts) > 1 else None))

    for d in descs:
        for k in _bag_items(d, "dc:subject"):
            add([k])
        for k in _bag_items(d, "lr:hierarchicalSubject"):
            add(k.split("|"))
        for k in _bag_items(d, "digiKam:TagsList"):
            add(k.split("/"))
    return unite(found)


def unite(keywords: list[Keyword]) -> list[Keyword]:
    """One keyword per name (any case), a hierarchy's path kept over a flat mention."""
    found: dict[str, Keyword] = {}
    for k in keywords:
        known = found.get(k.name.lower())
        if known is None or (known.path is None and k.path is not None):
            found[k.name.lower()] = k
    return list(found.values())


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
    people_tags = {p.replace("|", "/") for p in people}
    tags = [k for k in _bag_items(desc, "digiKam:TagsList") if not k.startswith(ROOT + "/") and k not in people_tags]
    _set_bag(desc, "dc:subject", flat + [k for k in kw.flat if k not in flat])
    _set_bag(desc, "lr:hierarchicalSubject", hier + list(kw.hierarchical))
    _set_bag(desc, "digiKam:TagsList", tags + [h.replace("|", "/") for h in kw.hierarchical], "rdf:Seq")
    _set_bag(desc, "wanwu:Keywords", [k for k in kw.flat if k not in flat])  # the user's own stay theirs
    return tree


def _photo_mode(photo_path: str) -> int | None:
    """A new sidecar's mode: its photo's read/write bits (a sidecar is not executable)."""
    try:
        return stat.S_IMODE(os.stat(photo_path).st_mode) & 0o666
    except OSError:
        return None


def _serialized(tree: ET.ElementTree) -> bytes:
    root = tree.getroot()
    return b"" if root is None else ET.tostring(root)


NEW, MERGED, UP_TO_DATE = "new", "merged", "up to date"  # what write_sidecar did


def write_sidecar(photo_path: str, kw: Keywords, naming: str = "ext", regions=None) -> str | None:
    """Create or merge the sidecar of ``photo_path``; returns what it did: ``NEW`` (none was
    there), ``MERGED`` (an existing one, another app's or wanwu's, rewritten with everything else
    it held kept) or ``UP_TO_DATE``; None when there was none and there is nothing to say (no
    keyword, no face region). ``regions``
    (``xmp_regions.Regions``): wanwu's face regions, replacing the ones it wrote. An existing
    sidecar that would not change is not rewritten. Never opens the photo; ``SidecarError``
    names photo and sidecar."""
    path = sidecar_path(photo_path, naming)
    tree = read_sidecar(photo_path, path)
    if tree is None:
        if not kw.flat and not kw.hierarchical and not (regions is not None and regions.faces):
            return None
        tree, before = _empty_packet(), None
    else:  # compared as written (indented the same way), so an unchanged sidecar is left alone
        ET.indent(tree, space=" ")
        before = _serialized(tree)
    merge(tree, kw)
    if regions is not None:
        regions.apply_to(tree)
    ET.indent(tree, space=" ")
    if before is not None and _serialized(tree) == before:
        return UP_TO_DATE
    root = tree.getroot()
    assert root is not None
    body = ET.tostring(root, encoding="unicode")
    text = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n' + body + '\n<?xpacket end="w"?>\n'
    try:
        write_atomic(path, text, new_mode=_photo_mode(photo_path))
    except OSError as exc:
        if is_disk_full(exc):
            problem = f"not written: no space left on {describe_disk(os.path.dirname(path) or '.')}"
            raise SidecarError(photo_path, path, problem, disk_full=True) from None
        raise SidecarError(photo_path, path, f"not written: {exc.strerror or exc}") from None
    return NEW if before is None else MERGED
