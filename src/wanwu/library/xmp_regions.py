"""MWG face regions in XMP sidecars (``mwg-rs:Regions``), the way digiKam, Lightroom and Picasa
write them: each face wanwu found is a ``Type="Face"`` region whose ``stArea`` x, y (its
centre), w and h are fractions of the photo as displayed (EXIF rotation applied;
``AppliedToDimensions`` gives that size in pixels), with ``Name`` once the person is named.

Other apps' regions are never touched: wanwu's carry ``wanwu:Face`` (the face's id in the
catalogue), and only those are replaced or removed; a face another app's region already covers
gets no second region from wanwu. The person's name as a keyword (``People|name``, and the plain
name) comes with the photo's tags (``xmp.keywords_for``).

Reading (``named_faces``): the named ``Face`` regions other apps wrote, in ``photo.jpg.xmp`` and
``photo.xmp``, as boxes of the photo as displayed, which is how digiKam, Lightroom and wanwu
write them. One exception is recognised: ``AppliedToDimensions`` whose sides are those of the
stored pixels and not of the displayed photo (EXIF orientation 5-8, not square) says the region
is of the stored pixels, and it is turned as the orientation turns the photo. The Microsoft
Photo form (``MP:RegionInfo``, ``MPReg:Rectangle`` "left, top, width, height") is read too.
"""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Callable, Iterator

from ..faces.cluster import iou
from . import xmp

NS = {
    "mwg-rs": "http://www.metadataworkinggroup.com/schemas/regions/",
    "stArea": "http://ns.adobe.com/xmp/sType/Area#",
    "stDim": "http://ns.adobe.com/xap/1.0/sType/Dimensions#",
    "MP": "http://ns.microsoft.com/photo/1.2/",
    "MPRI": "http://ns.microsoft.com/photo/1.2/t/RegionInfo#",
    "MPReg": "http://ns.microsoft.com/photo/1.2/t/Region#",
}
SAME_REGION_IOU = 0.3  # another app's region and a face wanwu found are the same face (docs/library.md)
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)
OURS = f"{{{xmp.NS['wanwu']}}}Face"


def _q(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{(NS | xmp.NS)[prefix]}}}{local}"


@dataclass(frozen=True)
class Region:
    face: int  # faces.id
    box: tuple[float, float, float, float]  # left, top, width, height: 0-1
    name: str | None


@dataclass(frozen=True)
class Regions:
    width: int  # the photo as displayed, pixels
    height: int
    faces: tuple[Region, ...]

    def apply_to(self, tree: ET.ElementTree) -> None:
        """``apply(tree, self)``: what ``xmp.write_sidecar`` calls with a photo's regions."""
        apply(tree, self)


def regions_for(conn: sqlite3.Connection, photo_id: int) -> Regions | None:
    """The photo's faces (not forgotten) as regions; None when its size is unknown."""
    row = conn.execute("SELECT width, height FROM photos WHERE id = ?", (photo_id,)).fetchone()
    if row is None or not row[0] or not row[1]:
        return None
    faces = tuple(
        Region(r[0], (r[1], r[2], r[3], r[4]), r[5])
        for r in conn.execute(
            "SELECT f.id, f.x, f.y, f.w, f.h, p.name FROM faces f LEFT JOIN persons p ON p.id = f.person_id "
            "AND p.forgotten = 0 WHERE f.photo_id = ? AND f.forgotten = 0 ORDER BY f.x",
            (photo_id,),
        )
    )
    return Regions(int(row[0]), int(row[1]), faces)


def _fmt(v: float) -> str:
    return f"{min(1.0, max(0.0, v)):.6f}".rstrip("0").rstrip(".") or "0"


def apply(tree: ET.ElementTree, regions: Regions) -> None:
    """Replace wanwu's regions in ``tree`` by ``regions`` (none: wanwu's are removed), keeping
    every other app's; a face one of theirs covers gets none of ours."""
    theirs = [n.box for n in _named(tree, (regions.width, regions.height), lambda: 1, named_only=False)]
    regions = Regions(
        regions.width,
        regions.height,
        tuple(r for r in regions.faces if all(iou(r.box, b) < SAME_REGION_IOU for b in theirs)),
    )
    desc = xmp._description(tree)
    container = desc.find(_q("mwg-rs:Regions"))
    if container is None:
        if not regions.faces:
            return
        container = ET.SubElement(desc, _q("mwg-rs:Regions"), {_q("rdf:parseType"): "Resource"})
    if container.find(_q("mwg-rs:AppliedToDimensions")) is None:
        ET.SubElement(
            container,
            _q("mwg-rs:AppliedToDimensions"),
            {_q("stDim:w"): str(regions.width), _q("stDim:h"): str(regions.height), _q("stDim:unit"): "pixel"},
        )
    listing = container.find(_q("mwg-rs:RegionList"))
    if listing is None:
        listing = ET.SubElement(container, _q("mwg-rs:RegionList"))
    bag = listing.find(_q("rdf:Bag"))
    if bag is None:
        bag = ET.SubElement(listing, _q("rdf:Bag"))
    for li in list(bag.findall(_q("rdf:li"))):
        d = li.find(_q("rdf:Description"))
        if OURS in li.attrib or (d is not None and OURS in d.attrib):
            bag.remove(li)
    for r in regions.faces:
        left, top, w, h = r.box
        attrs = {_q("mwg-rs:Type"): "Face", OURS: str(r.face)}
        if r.name:
            attrs[_q("mwg-rs:Name")] = r.name
        d = ET.SubElement(ET.SubElement(bag, _q("rdf:li")), _q("rdf:Description"), attrs)
        ET.SubElement(
            d,
            _q("mwg-rs:Area"),
            {
                _q("stArea:x"): _fmt(left + w / 2),
                _q("stArea:y"): _fmt(top + h / 2),
                _q("stArea:w"): _fmt(w),
                _q("stArea:h"): _fmt(h),
                _q("stArea:unit"): "normalized",
            },
        )
    if not bag.findall(_q("rdf:li")):  # nothing left, ours or theirs: no empty Regions
        desc.remove(container)


# --- reading other apps' regions --------------------------------------------------------------
@dataclass(frozen=True)
class Named:
    name: str
    box: tuple[float, float, float, float]  # left, top, width, height: 0-1 of the photo as displayed


def named_faces(photo_path: str, size: tuple[int, int]) -> list[Named]:
    """The faces other apps named in the photo's sidecars (``size``: the photo as displayed,
    pixels). A sidecar wanwu leaves alone (a link, not XMP ...) is not read either."""
    out: list[Named] = []
    for naming in xmp.NAMINGS:
        try:
            tree = xmp.read_sidecar(photo_path, xmp.sidecar_path(photo_path, naming))
        except xmp.SidecarError:
            continue
        if tree is not None:
            out += _named(tree, size, lambda: _orientation(photo_path))
    return out


def _orientation(photo_path: str) -> int:
    """The photo's EXIF orientation (1: as stored), read from its header only."""
    from PIL import Image

    try:
        with Image.open(photo_path) as img:
            return int(img.getexif().get(0x0112, 1) or 1)
    except (OSError, ValueError, SyntaxError):
        return 1


def _prop(el: ET.Element, name: str) -> str | None:
    """An XMP property written as an attribute or as a child element."""
    value = el.get(_q(name))
    if value is None:
        child = el.find(_q(name))
        value = child.text if child is not None else None
    return value.strip() if value else None


def _number(el: ET.Element, name: str) -> float | None:
    try:
        return float(_prop(el, name) or "")
    except ValueError:
        return None


def _named(
    tree: ET.ElementTree, size: tuple[int, int], orientation: Callable[[], int], *, named_only: bool = True
) -> list[Named]:
    """Other apps' face regions in ``tree`` (MWG, then Microsoft Photo), wanwu's own left out."""
    root = tree.getroot()
    if root is None:
        return []
    out: list[Named] = []
    for container in root.iter(_q("mwg-rs:Regions")):
        applied = container.find(_q("mwg-rs:AppliedToDimensions"))
        dims = None
        if applied is not None:
            aw, ah = _number(applied, "stDim:w"), _number(applied, "stDim:h")
            dims = (aw, ah) if aw and ah else None
        for d in _descriptions(container):
            name = _prop(d, "mwg-rs:Name") or ""
            area = d.find(_q("mwg-rs:Area"))
            if _prop(d, "mwg-rs:Type") != "Face" or area is None or (named_only and not name):
                continue
            unit = _prop(area, "stArea:unit")
            x, y, w, h = (_number(area, f"stArea:{k}") for k in "xywh")
            if unit not in (None, "normalized") or x is None or y is None or not w or not h:
                continue
            box = (x - w / 2, y - h / 2, w, h)
            if dims is not None and _stored_sides(dims, size):
                box = _turn(box, orientation())
            out.append(Named(name, box))
    for info in root.iter(_q("MP:RegionInfo")):
        for d in _descriptions(info):
            name = _prop(d, "MPReg:PersonDisplayName") or ""
            rect = [v.strip() for v in (_prop(d, "MPReg:Rectangle") or "").split(",")]
            try:
                left, top, w, h = (float(v) for v in rect)
            except ValueError:
                continue
            if name or not named_only:
                out.append(Named(name, (left, top, w, h)))
    return out


def _descriptions(container: ET.Element) -> Iterator[ET.Element]:
    """The regions of a region container that are not wanwu's (``rdf:li``, described inside
    or as its own attributes)."""
    for li in container.iter(_q("rdf:li")):
        d = li.find(_q("rdf:Description"))
        if OURS in li.attrib or (d is not None and OURS in d.attrib):
            continue
        yield d if d is not None else li


def _stored_sides(dims: tuple[float, float], shown: tuple[int, int]) -> bool:
    """True when the region's dimensions are the stored pixels' of a photo shown turned by a
    quarter (its sides swapped), so the region is of the stored pixels."""
    (aw, ah), (w, h) = dims, shown
    return aw != ah and w != h and (aw > ah) != (w > h)


def _turn(box: tuple[float, float, float, float], orientation: int) -> tuple[float, float, float, float]:
    """A box of the stored pixels as a box of the photo as displayed (EXIF orientation 1-8)."""
    turns: dict[int, Callable[[float, float], tuple[float, float]]] = {
        2: lambda x, y: (1 - x, y),
        3: lambda x, y: (1 - x, 1 - y),
        4: lambda x, y: (x, 1 - y),
        5: lambda x, y: (y, x),
        6: lambda x, y: (1 - y, x),
        7: lambda x, y: (1 - y, 1 - x),
        8: lambda x, y: (y, 1 - x),
    }
    turn = turns.get(orientation)
    if turn is None:
        return box
    left, top, w, h = box
    (x0, y0), (x1, y1) = turn(left, top), turn(left + w, top + h)
    return (min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0))
