"""Fuzzing the decode path: random bytes and mutated real JPEG/PNG/GIF/WebP/BMP/TIFF files
must either decode to an RGB image or raise one of wanwu's own ImageInputError types —
never anything else (no OSError, ValueError, struct.error, MemoryError…)."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from wanwu.errors import ImageInputError
from wanwu.imaging import load_image, preprocess
from wanwu.models import get_spec

PREP = get_spec("efficientnet_lite0").preprocessing
SMALL_LIMIT = 4_000_000  # keep fuzzed "valid" images cheap


def _seed_files() -> dict[str, bytes]:
    import skimage

    base = Image.open(f"{skimage.data_dir}/chelsea.png").convert("RGB").resize((64, 48))
    out = {}
    for fmt, kwargs in {
        "JPEG": {"quality": 80},
        "PNG": {},
        "GIF": {},
        "WEBP": {"quality": 70},
        "BMP": {},
        "TIFF": {"compression": "tiff_deflate"},
    }.items():
        buf = io.BytesIO()
        img = base.convert("P") if fmt == "GIF" else base
        img.save(buf, fmt, **kwargs)
        out[fmt] = buf.getvalue()
    return out


SEEDS = _seed_files()


def _check(data: bytes) -> None:
    try:
        decoded = load_image(data, max_pixels=SMALL_LIMIT)
    except ImageInputError as exc:
        assert exc.message and exc.code and 400 <= exc.http_status < 500
        return
    assert decoded.image.mode == "RGB"
    x = preprocess(decoded.image, PREP)
    assert x.shape == (3, PREP.crop_size, PREP.crop_size)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=4096))
def test_random_bytes_only_raise_wanwu_errors(data):
    _check(data)


@st.composite
def mutated(draw):
    fmt = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[fmt])
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "header"]))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[pos] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:  # headers hold sizes and offsets: hit the first 64 bytes harder
            hpos = draw(st.integers(0, min(63, len(data) - 1)))
            data[hpos] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
    return bytes(data)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_real_images_only_raise_wanwu_errors(data):
    _check(data)


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_every_prefix_of_a_real_file(fmt):
    """Truncation at every 7th byte: a classic source of decoder crashes."""
    data = SEEDS[fmt]
    for end in range(0, len(data), 7):
        _check(data[:end])
