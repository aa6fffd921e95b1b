"""Image decoding and preprocessing — the only place pixels are touched.

``load_image``: bytes / path / PIL image -> validated, upright RGB image. The pixel limit is
checked from the header before any pixel is decoded; every failure is a wanwu
``ImageInputError`` whose message names the problem.

``preprocess``: RGB image -> float32 CHW array exactly as the model's ``Preprocessing`` says:
torchvision's ``Resize`` (Pillow's antialiased bilinear resize of the shorter side, the whole
image) + ``CenterCrop`` + ``ToTensor`` + ``Normalize``, bit-identical to them on a PIL image
(tests/test_preprocess_reference.py).
"""

from __future__ import annotations

import functools
import io
import os
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import (
    CorruptImageError,
    EmptyImageError,
    ImageNotFoundError,
    NotAnImageError,
    TooManyPixelsError,
    TruncatedImageError,
    UnsupportedFormatError,
)
from .formats import ALLOWED_FORMATS, HEIF_AVAILABLE, HEIF_EXTRA, IMAGE_EXTENSIONS, readable_names  # noqa: F401
from .preprocessing import DEFAULT_MAX_PIXELS, Preprocessing

# A baseline JPEG decoded at reduced DCT scale (draft) may declare this many times more: a
# 200 MP phone photo (16320x12240) decodes at 1/8 to 3 MP, peak RSS ~28 MB instead of ~210 MB.
JPEG_HEADER_FACTOR = 8
# Models see 224-300 px crops: a photo whose shorter side is under this is blown up > 3.5x.
MIN_USEFUL_SIDE = 64
ImageSource = bytes | bytearray | memoryview | str | os.PathLike | Image.Image


# Pillow's own bomb guard would raise above 2x its default; ours (max_pixels) runs first.
# Two formats do pixel work inside Image.open, before our check can see a size: an ICO
# decodes its embedded PNG/BMP there, and WebP sets up a decoder for the whole canvas.
# ``_check_embedded_sizes`` reads their declared sizes from the bytes beforehand.
Image.MAX_IMAGE_PIXELS = None
ImageFile.LOAD_TRUNCATED_IMAGES = False

_MAGIC_NAMES = [  # formats we recognise only to name them in the error
    (b"%PDF", "PDF"),
    (b"%!PS", "PostScript/EPS"),
    (b"8BPS", "Photoshop PSD"),
    (b"<svg", "SVG"),
    (b"<?xml", "XML/SVG"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"II*\x00\x10\x00\x00\x00CR", "Canon RAW"),
]

_SIGNATURES = [  # formats we read: a file starting like this that Pillow refuses is damaged
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
]


@dataclass
class DecodedImage:
    image: Image.Image  # RGB, upright
    width: int  # as displayed: EXIF rotation applied (not reduced by draft decoding)
    height: int
    format: str | None
    warnings: list[str] = field(default_factory=list)  # usable, but the answer may mean little


def size_warning(label: str, width: int, height: int) -> str | None:
    """A warning for images too small for the labels to mean much (None when big enough)."""
    if min(width, height) >= MIN_USEFUL_SIDE:
        return None
    return (
        f"{label} is only {width}x{height} pixels; under {MIN_USEFUL_SIDE} px on a side the model sees "
        f"a blown-up blur and its labels are guesses"
    )


def _name_unknown(head: bytes) -> str | None:
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12].decode("latin-1").strip()
        return {"heic": "HEIC", "heix": "HEIC", "mif1": "HEIF", "msf1": "HEIF", "avif": "AVIF"}.get(
            brand, f"ISO media ({brand})"
        )
    stripped = head.lstrip()
    for magic, name in _MAGIC_NAMES:
        if stripped.startswith(magic):
            return name
    return None


def _damaged_format(head: bytes) -> str | None:
    """The readable format whose signature ``head`` starts with (Pillow could not open it)."""
    for magic, name in _SIGNATURES:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return None


def _too_many(
    label: str, width: int, height: int, max_pixels: int, what: str = "", why: str = ""
) -> TooManyPixelsError:
    return TooManyPixelsError(
        f"{label}{what} is {width}x{height} = {width * height / 1e6:.1f} megapixels, "
        f"over the limit of {max_pixels / 1e6:g} MP{why}; raise it with --max-pixels "
        f"(WANWU_MAX_PIXELS, max_pixels= in Python)",
        zh=f"{label} 为 {width}x{height} = {width * height / 1e6:.1f} 百万像素，"  # the why: English only
        f"超过 {max_pixels / 1e6:g} MP 的上限；可用 --max-pixels 调高"
        f"（WANWU_MAX_PIXELS，Python 中为 max_pixels=）",
    )


def _draftable(img: Image.Image, fmt: str | None, draft_size: int | None) -> bool:
    """Whether libjpeg can decode ``img`` at a reduced DCT scale holding only the reduced
    pixels: baseline JPEGs. A progressive JPEG keeps every DCT coefficient of the full image
    in memory (about as much as its decoded pixels) whatever the scale."""
    return (
        bool(draft_size)
        and fmt in ("JPEG", "MPO")
        and img.mode in ("RGB", "L", "CMYK")
        and not img.info.get("progressive")
    )


def _check_pixels(
    img: Image.Image, label: str, max_pixels: int, fmt: str | None, draft_size: int | None, draftable: bool
) -> None:
    """Refuse from the header what would decode to more than ``max_pixels``. A baseline JPEG
    decoded reduced may declare up to ``JPEG_HEADER_FACTOR`` times more (its decoded pixels
    are checked again after ``draft``); any other image is held at its declared size."""
    width, height = img.size
    if draftable:
        if width * height > max_pixels * JPEG_HEADER_FACTOR:
            raise _too_many(
                label,
                width,
                height,
                max_pixels * JPEG_HEADER_FACTOR,
                why=f" for a JPEG decoded at reduced scale ({JPEG_HEADER_FACTOR}x the pixel limit)",
            )
        return
    if width * height > max_pixels:
        why = ""
        if fmt in ("JPEG", "MPO") and img.info.get("progressive"):
            why = " (a progressive JPEG is decoded at full size)"
        elif fmt in ("JPEG", "MPO") and not draft_size:
            why = " (a JPEG decoded at full size)"
        raise _too_many(label, width, height, max_pixels, why=why)


def _draft(img: Image.Image, draft_size: int) -> None:
    """Pick the smallest DCT scale (1/2, 1/4, 1/8) that keeps the shorter side >= draft_size."""
    width, height = img.size
    scale = min(width, height) / draft_size
    if scale >= 2:
        img.draft(img.mode, (int(width / scale) + 1, int(height / scale) + 1))


def _ico_sizes(fp: BinaryIO) -> list[tuple[int, int]]:
    """The real sizes of an ICO/CUR's images: those of the embedded PNG or BMP headers (the
    directory's own byte-sized fields say nothing about them)."""
    fp.seek(4)
    (count,) = struct.unpack("<H", fp.read(2))
    directory = fp.read(16 * count)
    sizes = []
    for i in range(len(directory) // 16):
        (offset,) = struct.unpack("<I", directory[16 * i + 12 : 16 * i + 16])
        fp.seek(offset)
        head = fp.read(26)
        if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24:
            sizes.append(struct.unpack(">II", head[16:24]))
        elif len(head) >= 12:  # BITMAPINFOHEADER: the height counts the image and its mask
            w, h = struct.unpack("<ii", head[4:12])
            sizes.append((abs(w), abs(h) // 2))
    return sizes


def _webp_size(head: bytes) -> tuple[int, int] | None:
    """The canvas of a WebP (VP8X, VP8L or VP8 header), read from its first 30 bytes."""
    kind = head[12:16]
    if kind == b"VP8X" and len(head) >= 30:
        return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    if kind == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if kind == b"VP8 " and len(head) >= 30:
        return int.from_bytes(head[26:28], "little") & 0x3FFF, int.from_bytes(head[28:30], "little") & 0x3FFF
    return None


def _check_embedded_sizes(fp: BinaryIO, label: str, max_pixels: int | None) -> None:
    """Refuse an ICO/CUR or WebP whose declared pixels are over ``max_pixels`` before Pillow
    opens it (opening would already decode or allocate them)."""
    if max_pixels is None:
        return
    head = fp.read(30)
    try:
        if head[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00"):
            for width, height in _ico_sizes(fp):
                if width * height > max_pixels:
                    raise _too_many(label, width, height, max_pixels, " holds an icon that")
        elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            size = _webp_size(head)
            if size and size[0] * size[1] > max_pixels:
                raise _too_many(label, size[0], size[1], max_pixels)
    except struct.error:
        pass  # too short to say: Pillow will call it damaged
    finally:
        fp.seek(0)


def _open(source: ImageSource, label: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            if path.stat().st_size == 0:
                raise EmptyImageError(f"{label} is empty (0 bytes)", zh=f"{label} 是空文件（0 字节）")
            fp: BinaryIO = open(path, "rb")
        except IsADirectoryError:
            raise NotAnImageError(f"{label} is a directory, not an image", zh=f"{label} 是文件夹，不是图像") from None
        except FileNotFoundError:
            raise ImageNotFoundError(f"{label}: no such file", zh=f"{label}：没有这个文件") from None
        except PermissionError:
            raise NotAnImageError(f"{label}: permission denied", zh=f"{label}：没有读取权限") from None
    else:
        assert not isinstance(source, Image.Image), "load_image takes PIL images before this"
        data = bytes(source)
        if not data:
            raise EmptyImageError(f"{label} is empty (0 bytes)", zh=f"{label} 是空文件（0 字节）")
        fp = io.BytesIO(data)
    try:
        _check_embedded_sizes(fp, label, max_pixels)
    except TooManyPixelsError:
        fp.close()
        raise
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # corrupt-EXIF chatter; real failures raise below
            return Image.open(fp, formats=ALLOWED_FORMATS)
    except UnidentifiedImageError:
        fp.seek(0)
        head = fp.read(64)
        fp.close()
        known = _name_unknown(head)
        if known in ("HEIC", "HEIF") and not HEIF_AVAILABLE:
            raise UnsupportedFormatError(
                f"{label} is a {known} file; wanwu reads it once the HEIC reader is installed: {HEIF_EXTRA}",
                zh=f"{label} 是 {known} 文件；安装 HEIC 读取组件后 wanwu 即可读取：{HEIF_EXTRA}",
            ) from None
        if known in ("HEIC", "HEIF", "AVIF") and ("HEIF" if known != "AVIF" else known) in ALLOWED_FORMATS:
            raise CorruptImageError(
                f"{label} is a damaged {known} file: its header is corrupt or cut short",
                zh=f"{label} 是损坏的 {known} 文件：文件头已损坏或不完整",
            ) from None
        if known:
            raise UnsupportedFormatError(
                f"{label} is a {known} file, which wanwu does not read; use {readable_names()}",
                zh=f"{label} 是 wanwu 不读取的 {known} 文件；请用 {readable_names()}",
            ) from None
        damaged = _damaged_format(head)
        if damaged:
            raise CorruptImageError(
                f"{label} is a damaged {damaged} file: its header is corrupt or cut short",
                zh=f"{label} 是损坏的 {damaged} 文件：文件头已损坏或不完整",
            ) from None
        raise NotAnImageError(
            f"{label} is not an image wanwu can read ({readable_names()})",
            zh=f"{label} 不是 wanwu 能读取的图像（{readable_names()}）",
        ) from None
    except Image.DecompressionBombError as exc:
        fp.close()
        raise TooManyPixelsError(f"{label}: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        fp.close()
        raise CorruptImageError(f"{label} has a corrupt header: {exc}", zh=f"{label} 的文件头已损坏：{exc}") from None


def _to_8bit(img: Image.Image) -> Image.Image:
    """High-bit-depth greyscale (I;16*, I, F) -> L, scaled by the range the mode can hold."""
    arr = np.asarray(img)
    if img.mode.startswith("I;16"):
        arr = arr.astype(np.float32) / 257.0
    elif img.mode == "I":
        hi = float(arr.max()) if arr.size else 0.0
        arr = arr.astype(np.float32) / (257.0 if hi > 255 else 1.0)
    else:  # F: assume [0, 1] floats when they fit, else [0, 255]
        arr = np.nan_to_num(arr.astype(np.float32))
        if arr.size and float(arr.max()) <= 1.0 and float(arr.min()) >= 0.0:
            arr = arr * 255.0
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "L")


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB. Alpha is composited on white; 16-bit and float are scaled."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _to_8bit(img).convert("RGB")
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode in ("P", "L", "RGB") and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_image(
    source: ImageSource,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    name: str | None = None,
    draft_size: int | None = None,
) -> DecodedImage:
    """Decode ``source`` to an upright RGB image.

    ``draft_size``: for JPEGs, let libjpeg decode at a reduced scale (1/2, 1/4, 1/8) as long
    as both sides stay >= ``draft_size`` — a large saving on big photos.
    ``max_pixels``: the most pixels decoded, checked from the header before any is: for a
    baseline JPEG decoded reduced, the pixels after scaling (its header may say up to
    ``JPEG_HEADER_FACTOR`` times more); for anything else, the declared size.
    """
    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "image")
    if isinstance(source, Image.Image):
        img = source
        fmt = getattr(source, "format", None)
    else:
        img = _open(source, label, max_pixels)
        fmt = img.format
    width, height = img.size
    try:
        # inside the try: the finally below closes the file on these refusals too
        if width <= 0 or height <= 0:
            raise CorruptImageError(
                f"{label} declares an empty size {width}x{height}", zh=f"{label} 声明的尺寸为空：{width}x{height}"
            )
        draftable = _draftable(img, fmt, draft_size)
        if max_pixels is not None:
            _check_pixels(img, label, max_pixels, fmt, draft_size, draftable)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's bomb/EXIF/palette warnings: we check ourselves
            if getattr(img, "is_animated", False):
                img.seek(0)  # animated GIF/WebP/PNG: the first frame
            if draftable and draft_size:
                _draft(img, draft_size)
                if max_pixels is not None and img.size[0] * img.size[1] > max_pixels:
                    raise _too_many(
                        label,
                        width,
                        height,
                        max_pixels,
                        why=f" even decoded at reduced scale ({img.size[0]}x{img.size[1]})",
                    )
            img.load()
            orientation = img.getexif().get(0x0112, 1) if fmt in ("JPEG", "MPO", "TIFF", "PNG", "WEBP") else 1
            upright = ImageOps.exif_transpose(img) if orientation not in (1, None) else img
            if orientation in (5, 6, 7, 8):  # quarter turns: the displayed image is transposed
                width, height = height, width
            rgb = to_rgb(upright)
    except Image.DecompressionBombError as exc:
        raise TooManyPixelsError(f"{label}: {exc}") from None
    except OSError as exc:
        text = str(exc)
        if "truncated" in text or "broken data stream" in text or "premature end" in text.lower():
            raise TruncatedImageError(
                f"{label} is truncated: the file ends before the image data does",
                zh=f"{label} 不完整：文件在图像数据结束之前就断了",
            ) from None
        raise CorruptImageError(f"{label} could not be decoded: {text}", zh=f"{label} 无法解码：{text}") from None
    except (SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, struct.error, ZeroDivisionError) as exc:
        detail = exc or type(exc).__name__
        raise CorruptImageError(f"{label} could not be decoded: {detail}", zh=f"{label} 无法解码：{detail}") from None
    except MemoryError:
        raise TooManyPixelsError(
            f"{label} needs more memory to decode than is available", zh=f"{label} 解码所需的内存超过了可用内存"
        ) from None
    finally:
        fp = getattr(img, "fp", None)
        if fp is not None and not isinstance(source, Image.Image):
            try:
                fp.close()  # pixels are loaded; release the file handle
            except Exception:
                pass
    small = size_warning(label, width, height)
    return DecodedImage(rgb, width, height, fmt, [small] if small else [])


def resize_geometry(width: int, height: int, prep: Preprocessing) -> tuple[int, int, int, int]:
    """torchvision's Resize(resize_size) + CenterCrop(crop_size) geometry: the resized size
    (new_w, new_h) and the crop's top-left corner (left, top) in resized coordinates."""
    short, long_ = (width, height) if width <= height else (height, width)
    new_short = prep.resize_size
    new_long = int(prep.resize_size * long_ / short)
    new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    c = prep.crop_size
    left = int(round((new_w - c) / 2.0))
    top = int(round((new_h - c) / 2.0))
    return new_w, new_h, left, top


def center_crop_origin(width: int, height: int, crop: int) -> tuple[int, int]:
    """torchvision's CenterCrop origin (left, top) for a ``width`` x ``height`` image. A side
    shorter than the crop is padded with zeros first, (crop - side) // 2 before it: the origin
    is then negative (PIL's ``crop`` fills outside the image with zeros, as that padding)."""
    left = int(round((width - crop) / 2.0)) if width >= crop else -((crop - width) // 2)
    top = int(round((height - crop) / 2.0)) if height >= crop else -((crop - height) // 2)
    return left, top


def resize_and_crop(image: Image.Image, prep: Preprocessing) -> Image.Image:
    """torchvision's ``Resize(resize_size)`` + ``CenterCrop(crop_size)`` on a PIL image, pixel
    for pixel: Pillow's bilinear (antialiased) resize of the whole image, then the crop.

    Resizing only the crop box (``resize(box=...)``) would be cheaper but is not the same: it
    differed by one level in 3.9% of the values on 500x375 photos (issue 10), so the
    whole image is resized (JPEG draft decoding has already made big photos small)."""
    new_w, new_h, _, _ = resize_geometry(*image.size, prep)
    if image.size != (new_w, new_h):
        image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
    c = prep.crop_size
    left, top = center_crop_origin(new_w, new_h, c)
    if (left, top, new_w, new_h) == (0, 0, c, c):
        return image
    return image.crop((left, top, left + c, top + c))


@functools.lru_cache(maxsize=32)
def _normalize_table(prep: Preprocessing) -> np.ndarray:
    """(3, 256) float32: each uint8 level of each channel as torchvision's ``ToTensor`` +
    ``Normalize`` make it, ``(level / 255 - mean) / std`` with each step in float32, so a table
    lookup gives torch's values bit for bit (a fused scale + bias differs in the last bit)."""
    levels = np.arange(256, dtype=np.float32) / np.float32(255.0)
    mean = np.asarray(prep.mean, np.float32)[:, None]
    std = np.asarray(prep.std, np.float32)[:, None]
    return (levels[None, :] - mean) / std


def to_model_input(crop: Image.Image, prep: Preprocessing) -> np.ndarray:
    """RGB crop -> float32 CHW array normalized as ``prep`` says (torch's float32 values exactly)."""
    hwc = np.asarray(crop)
    table = _normalize_table(prep)
    out = np.empty((3, hwc.shape[0], hwc.shape[1]), np.float32)
    for ch in range(3):
        np.take(table[ch], hwc[:, :, ch], out=out[ch])
    return out


def preprocess(image: Image.Image, prep: Preprocessing) -> np.ndarray:
    """RGB image -> float32 array (3, crop, crop): torchvision's ``Resize`` + ``CenterCrop`` +
    ``ToTensor`` + ``Normalize`` as ``prep`` says, bit-identical to them on a PIL image."""
    return to_model_input(resize_and_crop(image, prep), prep)
