"""What a photo says about itself besides its pixels, and what other apps wrote about it:
the date, camera and place from its EXIF, its own XMP/IPTC keywords, and the keywords in its
sidecars (digiKam's ``photo.jpg.xmp``, Lightroom's ``photo.xmp``). Read at index time; the
keywords are stored apart from the model's tags and the user's ``wanwu tag`` tags
(``keywords`` table, docs/library.md) and are searchable as the user's own.

Nothing here raises on a hostile file: a missing or garbage value is None (or no keyword).
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field
from typing import Any

from .files import open_regular
from .xmp import NAMINGS, Keyword, SidecarError, others_keywords, parse_packet, read_sidecar, sidecar_path, unite

GPS_IFD = 0x8825
EXIF_IFD = 0x8769
IPTC_KEYWORDS = (2, 25)
GPS_DECIMALS = 6  # 0.1 m: more than any phone's fix


@dataclass
class Embedded:
    """What the file's own metadata says (``read_embedded``)."""

    taken: str | None = None  # EXIF DateTimeOriginal (else DateTime), ISO 8601
    camera: str | None = None  # "Make Model"
    latitude: float | None = None  # decimal degrees, south negative
    longitude: float | None = None  # west negative
    keywords: list[Keyword] = field(default_factory=list)  # its own XMP and IPTC keywords


def read_embedded(source: bytes | str) -> Embedded:
    """The metadata of image bytes (or a file). Call it only on an image whose pixel count was
    checked (decoded): opening an icon decodes it. A PNG's EXIF is read only when it comes
    before the image data: Pillow loads a PNG's every pixel to look for a later one."""
    from PIL import Image

    out = Embedded()
    try:
        if isinstance(source, bytes):
            f: Any = io.BytesIO(source)
        else:  # checked on the descriptor: a FIFO named *.jpg never blocks the run
            f = os.fdopen(open_regular(source)[0], "rb")
        with f, Image.open(f) as img:
            if img.format == "PNG":
                exif = Image.Exif()
                if img.info.get("exif"):
                    exif.load(img.info["exif"])
            else:
                exif = img.getexif()
            sub = exif.get_ifd(EXIF_IFD)  # DateTimeOriginal lives there
            gps_ifd = exif.get_ifd(GPS_IFD)
            out.keywords = _embedded_keywords(img)
    except Exception:
        return out
    when = sub.get(0x9003) or exif.get(0x0132)  # DateTimeOriginal, else DateTime
    if isinstance(when, str) and len(when) >= 19 and when[4] == ":":
        out.taken = when[:10].replace(":", "-") + "T" + when[11:19]
    make, model = (str(exif.get(t) or "").strip("\x00 ") for t in (0x010F, 0x0110))
    camera = model if model.startswith(make) else f"{make} {model}".strip()
    out.camera = camera or None
    out.latitude, out.longitude = gps(gps_ifd)
    return out


def gps(ifd: Any) -> tuple[float | None, float | None]:
    """(latitude, longitude) in decimal degrees from an EXIF GPS IFD (tags 1-4: references
    N/S and E/W, each angle three rationals: degrees, minutes, seconds), or (None, None) when
    either is missing, garbage (a zero denominator, text, out of range) or exactly 0, 0 (what
    cameras without a fix write)."""
    try:
        lat = _angle(ifd.get(2), ifd.get(1), "NS", 90)
        lon = _angle(ifd.get(4), ifd.get(3), "EW", 180)
    except Exception:
        return None, None
    if lat is None or lon is None or (lat == 0 and lon == 0):
        return None, None
    return round(lat, GPS_DECIMALS), round(lon, GPS_DECIMALS)


def _angle(value: Any, ref: Any, refs: str, limit: float) -> float | None:
    if value is None:
        return None
    parts = list(value) if isinstance(value, (tuple, list)) else [value]
    if not 1 <= len(parts) <= 3:
        return None
    degrees = 0.0
    for part, unit in zip(parts, (1, 60, 3600)):
        number = float(part)  # an IFDRational; a zero denominator is nan
        if not math.isfinite(number) or number < 0:
            return None
        degrees += number / unit
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    ref = (ref or refs[0]).strip("\x00 ").upper()[:1] or refs[0]
    if ref not in refs:
        return None
    if degrees > limit:
        return None
    return -degrees if ref == refs[1] else degrees


def _embedded_keywords(img: Any) -> list[Keyword]:
    """The photo's own keywords: its XMP packet's (as in a sidecar) and IPTC's (2:25)."""
    found: list[Keyword] = []
    packet = img.info.get("xmp")
    if isinstance(packet, (bytes, str)):
        tree = parse_packet(packet.encode() if isinstance(packet, str) else packet)
        if tree is not None:
            found += others_keywords(tree)
    if img.format in ("JPEG", "MPO", "TIFF"):
        from PIL import IptcImagePlugin

        info = IptcImagePlugin.getiptcinfo(img) or {}
        raw = info.get(IPTC_KEYWORDS) or []
        for item in raw if isinstance(raw, list) else [raw]:
            text = _iptc_text(item)
            if text:
                found.append(Keyword(text))
    return unite(found)


def _iptc_text(value: Any) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            value = value.decode("latin-1")
    return str(value).strip("\x00 ")


# --- sidecars ----------------------------------------------------------------------------
def sidecar_keywords(photo_path: str) -> tuple[list[Keyword], list[str]]:
    """The keywords other apps wrote in the photo's sidecars (both namings, united), and the
    problems of sidecars left unread (a link, not XML ...: ``xmp.read_sidecar``'s rules)."""
    found: list[Keyword] = []
    problems = []
    for naming in NAMINGS:
        try:
            tree = read_sidecar(photo_path, sidecar_path(photo_path, naming))
        except SidecarError as exc:
            problems.append(str(exc))
            continue
        if tree is not None:
            found += others_keywords(tree)
    return unite(found), problems
