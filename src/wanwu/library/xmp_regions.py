"""MWG face regions in XMP sidecars (``mwg-rs:Regions``), the way digiKam, Lightroom and Picasa
write them: each face wanwu found is a ``Type="Face"`` region whose ``stArea`` x, y (its
centre), w and h are fractions of the photo as displayed (EXIF rotation applied;
``AppliedToDimensions`` gives that size in pixels), with ``Name`` once the person is named.

Other apps' regions are never touched: wanwu's carry ``wanwu:Face`` (the face's id in the
catalogue), and only those are replaced or removed. The person's name as a keyword
(``People|name``, and the plain name) comes with the photo's tags (``xmp.keywords_for``).
Reading regions other apps wrote: not yet.
"""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from . import xmp

NS = {
    "mwg-rs": "http://www.metadataworkinggroup.com/schemas/regions/",
    "stArea": "http://ns.adobe.com/xmp/sType/Area#",
    "stDim": "http://ns.adobe.com/xap/1.0/sType/Dimensions#",
}
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
    every other app's."""
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
