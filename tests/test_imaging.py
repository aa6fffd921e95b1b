"""Decoding: every bad input ends in the exact wanwu exception with a message naming the
problem; every odd mode, format and orientation decodes to the right upright RGB pixels."""

from __future__ import annotations

import io
import os
import resource
import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from wanwu import Classifier
from wanwu.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageInputError,
    ImageNotFoundError,
    NotAnImageError,
    TooManyPixelsError,
    TruncatedImageError,
    UnsupportedFormatError,
)
from wanwu.imaging import DEFAULT_MAX_PIXELS, load_image

CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}


# --- helpers ---------------------------------------------------------------------------------
def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, bit_depth: int, color_type: int, scanlines: bytes) -> bytes:
    """A PNG built by hand (valid signature, IHDR with correct CRC, one IDAT, IEND)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(scanlines))
        + png_chunk(b"IEND", b"")
    )


def rgb16_png(arr16: np.ndarray) -> bytes:
    """(H, W, 3) uint16 -> 16-bit-per-channel RGB PNG (Pillow cannot write this mode)."""
    h, _, _ = arr16.shape
    rows = b"".join(b"\x00" + arr16[y].astype(">u2").tobytes() for y in range(h))
    return png_bytes(arr16.shape[1], h, 16, 2, rows)


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.int16)


def assert_raises_exactly(exc_type, source, *words, **kwargs) -> ImageInputError:
    with pytest.raises(ImageInputError) as info:
        load_image(source, **kwargs)
    assert info.type is exc_type, f"expected {exc_type.__name__}, got {info.type.__name__}: {info.value}"
    message = str(info.value).lower()
    for word in words:
        assert word.lower() in message, f"{word!r} not in {str(info.value)!r}"
    return info.value


@pytest.fixture(scope="module")
def cat_rgb(chelsea) -> Image.Image:
    return Image.open(chelsea).convert("RGB")  # 451x300


@pytest.fixture(scope="module")
def coffee_rgb(coffee) -> Image.Image:
    return Image.open(coffee).convert("RGB")


@pytest.fixture(scope="module")
def rocket_bytes(rocket_jpeg) -> bytes:
    return rocket_jpeg.read_bytes()


def top1(classifier, source) -> str:
    return classifier.classify(source, top_k=1)[0].label


# --- bad input -------------------------------------------------------------------------------
def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert_raises_exactly(EmptyImageError, path, "empty.jpg", "empty", "0 bytes")
    assert_raises_exactly(EmptyImageError, b"", "empty")


def test_random_bytes():
    data = np.random.default_rng(0).bytes(4096)
    assert_raises_exactly(NotAnImageError, data, "not an image")


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("shopping list: milk, eggs, bread\n" * 20)
    assert_raises_exactly(NotAnImageError, path, "notes.jpg", "not an image")


def test_truncated_jpeg(rocket_bytes):
    half = rocket_bytes[: len(rocket_bytes) // 2]
    assert_raises_exactly(TruncatedImageError, half, "truncated", name="half.jpg")


@pytest.mark.parametrize("path_kind", ["missing", "directory"])
def test_path_that_is_not_a_file(tmp_path, path_kind):
    path = tmp_path / "nope.jpg" if path_kind == "missing" else tmp_path
    assert_raises_exactly(ImageNotFoundError if path_kind == "missing" else NotAnImageError, path, str(path))


def _assert_refused_from_header(data: bytes, dims: str) -> None:
    """Refused with TooManyPixelsError, fast and without allocating the pixels."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        assert_raises_exactly(TooManyPixelsError, data, dims, "megapixels", "limit")
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert elapsed < 0.5, f"took {elapsed:.2f}s: the pixels were decoded"
    assert peak < 50e6, f"traced peak {peak / 1e6:.1f} MB"
    assert grown < 50_000, f"peak RSS grew by {grown / 1e3:.0f} MB"


def test_png_claiming_100000x100000_is_refused_from_its_header():
    scanlines = b"\x00" + b"\x00" * 30  # one short row: the file is tiny, the header is not
    data = png_bytes(100_000, 100_000, 8, 2, scanlines)
    assert Image.open(io.BytesIO(data)).size == (100_000, 100_000)  # a valid header
    _assert_refused_from_header(data, "100000x100000")


def test_gif_with_huge_declared_size_is_refused():
    size = struct.pack("<HH", 60000, 60000)
    data = (
        b"GIF89a"
        + size
        + b"\x00\x00\x00"  # logical screen, no global palette
        + b","
        + struct.pack("<HH", 0, 0)
        + size
        + b"\x00"  # image descriptor
        + b"\x02\x02\x44\x01\x00"  # minimal LZW data
        + b";"
    )
    assert Image.open(io.BytesIO(data)).size == (60000, 60000)
    _assert_refused_from_header(data, "60000x60000")


def test_heic_is_named_and_refused():
    """A broken HEIC: damaged when the HEIC reader is installed, else it says how to install it."""
    from wanwu import formats

    data = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200)
    if formats.HEIF_AVAILABLE:
        assert_raises_exactly(CorruptImageError, data, "damaged HEIC")
    else:
        assert_raises_exactly(UnsupportedFormatError, data, "HEIC", "wanwu-tagger[heif]")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "TIFF"])
def test_damaged_header_of_a_readable_format_is_named(cat_rgb, fmt):
    data = bytearray(encode(cat_rgb.resize((16, 16)), fmt))
    if fmt == "PNG":
        data[29] ^= 0xFF  # the IHDR checksum
    else:
        data = data[:20]  # signature, then nothing Pillow can parse
    assert_raises_exactly(CorruptImageError, bytes(data), f"damaged {fmt}")


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_refused_files_are_closed_even_while_their_errors_are_kept(tmp_path, classifier):
    """Results keep their exception (and its traceback): the file must be closed already."""
    paths = []
    for i in range(20):
        path = tmp_path / f"huge-{i}.png"
        path.write_bytes(png_bytes(100_000, 100_000, 8, 2, b"\x00" * 31))
        paths.append(path)
    before = len(os.listdir("/proc/self/fd"))
    results = classifier.classify(paths)
    assert all(isinstance(r.error, TooManyPixelsError) for r in results)
    assert len(os.listdir("/proc/self/fd")) - before < 5


def test_max_pixels_is_configurable(cat_rgb):
    data = encode(cat_rgb, "PNG")
    n = 451 * 300
    assert DEFAULT_MAX_PIXELS == 40_000_000
    assert load_image(data, max_pixels=n).image.size == (451, 300)  # the limit itself is allowed
    assert_raises_exactly(TooManyPixelsError, data, "451x300", "limit", max_pixels=n - 1)
    small = Classifier(max_pixels=100_000)
    with pytest.raises(TooManyPixelsError):
        small.classify(data)


def test_batch_with_a_bad_file_reports_it_and_classifies_the_rest(classifier, chelsea, coffee, rocket_bytes, tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "readme.jpg"
    text.write_text("hello")
    truncated = rocket_bytes[: len(rocket_bytes) // 2]
    results = classifier.classify([chelsea, empty, coffee, truncated, text], top_k=3)
    assert [type(r.error) for r in results] == [
        type(None),
        EmptyImageError,
        type(None),
        TruncatedImageError,
        NotAnImageError,
    ]
    assert results[0].predictions[0].label in CATS
    assert results[2].predictions[0].label == "espresso"
    assert (results[0].width, results[0].height) == (451, 300)
    assert results[1].name == str(empty) and not results[1].predictions
    assert results[1].to_dict()["error"]["code"] == "empty_image"
    with pytest.raises(EmptyImageError):  # a single bad image raises
        classifier.classify(empty)


def test_path_bytes_and_pil_image_give_the_same_answer(classifier, chelsea):
    by_path = classifier.classify(chelsea)
    by_str = classifier.classify(str(chelsea))
    by_bytes = classifier.classify(chelsea.read_bytes())
    by_image = classifier.classify(Image.open(chelsea))
    for other in (by_str, by_bytes, by_image):
        assert [p.index for p in other] == [p.index for p in by_path]
        np.testing.assert_allclose([p.score for p in other], [p.score for p in by_path], atol=1e-6)


# --- odd modes: the right pixels, the right answer -------------------------------------------
def test_cmyk_jpeg(classifier, cat_rgb):
    data = encode(cat_rgb.convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    decoded = load_image(data).image
    assert decoded.mode == "RGB"
    assert np.abs(pixels(decoded) - pixels(cat_rgb)).mean() < 4  # not inverted, not channel-swapped
    assert top1(classifier, data) in CATS


def test_16bit_greyscale_png(classifier, cat_rgb):
    grey = np.asarray(cat_rgb.convert("L")).astype(np.uint16)
    data = encode(Image.fromarray(grey * 257 + 100), "PNG")  # full 16-bit range, plus a sub-level offset
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    decoded = pixels(load_image(data).image)
    for channel in range(3):
        np.testing.assert_array_equal(decoded[..., channel], grey)  # scaled by 1/257, not clipped
    assert top1(classifier, data) in CATS


def test_16bit_rgb_png(classifier, cat_rgb):
    data = rgb16_png(np.asarray(cat_rgb).astype(np.uint16) * 257)
    decoded = load_image(data).image
    assert decoded.size == (451, 300)
    assert np.abs(pixels(decoded) - pixels(cat_rgb)).max() <= 1
    assert top1(classifier, data) in CATS


def test_rgba_png_is_composited_on_white(cat_rgb):
    rgba = cat_rgb.convert("RGBA")
    rgba.putpixel((0, 0), (10, 20, 30, 0))  # fully transparent
    rgba.putpixel((1, 0), (0, 0, 0, 128))  # half-transparent black
    decoded = load_image(encode(rgba, "PNG")).image
    assert decoded.mode == "RGB"
    assert decoded.getpixel((0, 0)) == (255, 255, 255)
    assert all(abs(v - 127) <= 1 for v in decoded.getpixel((1, 0)))
    np.testing.assert_array_equal(pixels(decoded)[1:], pixels(cat_rgb)[1:])  # opaque rows untouched


def test_la_png(cat_rgb):
    la = cat_rgb.convert("LA")
    la.putpixel((0, 0), (0, 0))
    decoded = pixels(load_image(encode(la, "PNG")).image)
    assert tuple(decoded[0, 0]) == (255, 255, 255)
    grey = np.asarray(cat_rgb.convert("L"))
    for channel in range(3):
        np.testing.assert_array_equal(decoded[1:, :, channel], grey[1:])


def test_palette_gif(classifier, cat_rgb):
    data = encode(cat_rgb.convert("P"), "GIF")
    reference = Image.open(io.BytesIO(data))
    assert reference.mode == "P"
    decoded = load_image(data).image
    np.testing.assert_array_equal(pixels(decoded), pixels(reference.convert("RGB")))
    assert top1(classifier, data) in CATS


@pytest.mark.parametrize("fmt", ["GIF", "PNG"])
def test_palette_with_transparency(cat_rgb, fmt):
    pal = cat_rgb.convert("P")
    index = pal.getpixel((0, 0))
    data = encode(pal, fmt, transparency=index)
    decoded = np.asarray(load_image(data).image)
    transparent = np.asarray(pal) == index
    assert transparent.any() and not transparent.all()
    assert (decoded[transparent] == 255).all()
    opaque_ref = np.asarray(pal.convert("RGB"))
    np.testing.assert_array_equal(decoded[~transparent], opaque_ref[~transparent])


def test_one_bit_png(classifier, cat_rgb):
    bw = cat_rgb.convert("1")
    data = encode(bw, "PNG")
    decoded = pixels(load_image(data).image)
    assert set(np.unique(decoded)) <= {0, 255}
    np.testing.assert_array_equal(decoded[..., 0], np.asarray(bw.convert("L")))
    assert top1(classifier, data) in CATS


def test_animated_gif_uses_the_first_frame(classifier, cat_rgb, coffee_rgb):
    cup = coffee_rgb.resize(cat_rgb.size)

    def animated(first, second) -> bytes:
        return encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)

    cat_first = animated(cat_rgb, cup)
    assert Image.open(io.BytesIO(cat_first)).n_frames == 2
    assert top1(classifier, cat_first) in CATS
    assert top1(classifier, animated(cup, cat_rgb)) in {"espresso", "cup"}


ROTATE_STORED = {  # EXIF orientation -> how the pixels are stored so that they display upright
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
    3: Image.Transpose.ROTATE_180,
}


@pytest.mark.parametrize("orientation", sorted(ROTATE_STORED))
def test_exif_rotated_jpeg_is_decoded_upright(classifier, cat_rgb, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(cat_rgb.transpose(ROTATE_STORED[orientation]), "JPEG", quality=95, exif=exif)
    upright_jpeg = encode(cat_rgb, "JPEG", quality=95)
    decoded = load_image(data)
    assert decoded.image.size == (451, 300)
    assert (decoded.width, decoded.height) == (451, 300), "reported size is the displayed (upright) size"
    diff = np.abs(pixels(decoded.image) - pixels(load_image(upright_jpeg).image)).mean()
    assert diff < 4, f"mean difference {diff:.1f} levels from the upright photo"
    assert top1(classifier, data) == top1(classifier, upright_jpeg)


@pytest.mark.parametrize("fmt,kwargs", [("PNG", {}), ("WEBP", {"lossless": True})])
def test_exif_orientation_in_lossless_formats(cat_rgb, fmt, kwargs):
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(cat_rgb.transpose(Image.Transpose.ROTATE_90), fmt, exif=exif, **kwargs)
    np.testing.assert_array_equal(pixels(load_image(data).image), pixels(cat_rgb))


@pytest.mark.parametrize(
    "fmt,kwargs,lossless",
    [("WEBP", {"quality": 90}, False), ("WEBP", {"lossless": True}, True), ("BMP", {}, True), ("TIFF", {}, True)],
)
def test_other_formats(classifier, cat_rgb, fmt, kwargs, lossless):
    data = encode(cat_rgb, fmt, **kwargs)
    decoded = load_image(data)
    assert decoded.format == fmt and (decoded.width, decoded.height) == (451, 300)
    if lossless:
        np.testing.assert_array_equal(pixels(decoded.image), pixels(cat_rgb))
    assert top1(classifier, data) in CATS


def test_large_jpeg_is_decoded_at_reduced_scale_with_the_same_answer(classifier, cat_rgb):
    """Default draft decoding: a 12 MP JPEG is decoded at a DCT scale that keeps >= 2x the
    model's resize size, reports its real size, and gets the exact decode's top-5."""
    from wanwu import Classifier
    from wanwu.pipeline import DRAFT_MARGIN

    big = encode(cat_rgb.resize((4242, 2822), Image.Resampling.BICUBIC), "JPEG", quality=90)
    assert classifier.draft is True
    decoded = classifier.decode(big)
    keep = classifier.spec.preprocessing.resize_size * DRAFT_MARGIN
    assert (decoded.width, decoded.height) == (4242, 2822)
    assert keep <= min(decoded.image.size) < 2 * keep  # reduced, but not below the margin
    exact = Classifier(draft=False)
    assert exact.decode(big).image.size == (4242, 2822)
    drafted_top5 = [p.index for p in classifier.classify(big, top_k=5)]
    exact_top5 = [p.index for p in exact.classify(big, top_k=5)]
    assert drafted_top5[0] == exact_top5[0] and classifier.classify(big, top_k=1)[0].label in CATS
    assert len(set(drafted_top5[:3]) & set(exact_top5[:3])) >= 2
