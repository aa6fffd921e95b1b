"""Which image formats wanwu reads, by Pillow format name and by file extension, and what it
says about the image files it does not read (so a folder walk can report them, not drop them).

HEIC/HEIF (iPhone photos) is read when the optional ``pillow-heif`` package is installed
(``pip install 'wanwu-tagger[heif]'``): its Pillow opener is registered on import of this module.
"""

from __future__ import annotations

from importlib import import_module

from PIL import Image

from .install import pip_install

HEIF_EXTRA = pip_install("heif")


def _register_heif() -> bool:
    """Register pillow-heif's opener (no thumbnails, depth or auxiliary images: we want the
    primary picture only). False when the package is not installed."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
    return True


HEIF_AVAILABLE = _register_heif()

# Formats Pillow may open. Anything else (EPS/PDF would call Ghostscript, etc.) is refused.
_WANTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "DIB", "TIFF", "PPM", "ICO", "TGA", "AVIF", "HEIF")
# Their plugins only, not ``Image.init()``: that imports all ~40 of Pillow's (~60 ms a command).
_PLUGINS = ("Jpeg", "Png", "Gif", "WebP", "Bmp", "Tiff", "Ppm", "Ico", "Tga", "Avif")
for _plugin in _PLUGINS:
    try:
        import_module(f"PIL.{_plugin}ImagePlugin")
    except ImportError:  # AVIF: Pillow >= 11.2 only
        pass
ALLOWED_FORMATS = tuple(f for f in _WANTED_FORMATS if f in Image.OPEN)  # JPEG also yields MPO

_EXTENSIONS = {
    "JPEG": ".jpg .jpeg .jpe .jfif",
    "PNG": ".png .apng",
    "GIF": ".gif",
    "WEBP": ".webp",
    "BMP": ".bmp .dib",
    "TIFF": ".tif .tiff",
    "PPM": ".ppm .pgm .pbm",
    "ICO": ".ico",
    "TGA": ".tga",
    "AVIF": ".avif",
    "HEIF": ".heic .heif .hif",
}
IMAGE_EXTENSIONS = frozenset(ext for f in ALLOWED_FORMATS if f in _EXTENSIONS for ext in _EXTENSIONS[f].split())

# Image files wanwu does not read: extension -> (kind, what to do). A folder walk reports them.
_RAW = ".cr2 .cr3 .crw .nef .nrw .arw .srf .sr2 .dng .orf .rw2 .raf .pef .srw .x3f .3fr .erf .kdc .mrw .rwl .iiq"
_UNREADABLE: dict[str, tuple[str, str]] = {
    **dict.fromkeys(_EXTENSIONS["HEIF"].split(), ("HEIC", f"install the HEIC reader: {HEIF_EXTRA}")),
    ".avif": ("AVIF", "needs a Pillow built with AVIF (Pillow >= 11.2 wheels)"),
    **dict.fromkeys(_RAW.split(), ("camera RAW", "wanwu does not read RAW files; export them to JPEG")),
    ".psd": ("Photoshop", "export it to JPEG or PNG"),
    ".svg": ("SVG", "wanwu reads photos, not vector drawings; export it to PNG"),
    ".jp2": ("JPEG 2000", "convert it to JPEG or PNG"),
    ".j2k": ("JPEG 2000", "convert it to JPEG or PNG"),
    ".jxl": ("JPEG XL", "convert it to JPEG or PNG"),
}


def unreadable(suffix: str) -> tuple[str, str] | None:
    """``(kind, what to do)`` for the extension of an image file wanwu does not read (e.g.
    ``.heic`` without pillow-heif, ``.cr2``); None for readable or non-image extensions."""
    suffix = suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return None
    return _UNREADABLE.get(suffix)


def readable_names() -> str:
    """The formats wanwu reads, for messages: 'JPEG, PNG, WebP, GIF, BMP, TIFF' (+ HEIC)."""
    names = ["JPEG", "PNG", "WebP", "GIF", "BMP", "TIFF"] + [n for n in ("AVIF", "HEIF") if n in ALLOWED_FORMATS]
    return ", ".join("HEIC" if n == "HEIF" else n for n in names)
