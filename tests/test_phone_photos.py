"""Phone-sized JPEGs: 48 MP (8064x6048) to 200 MP photos are accepted by default because the
pixel limit bounds what is decoded (after DCT scaling), not what the header declares; formats
that cannot be decoded reduced keep the strict limit, and a refusal names the option."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from wanwu import Classifier
from wanwu.errors import TooManyPixelsError
from wanwu.imaging import DEFAULT_MAX_PIXELS, JPEG_HEADER_FACTOR, load_image

CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}
PHONE_48MP = (8064, 6048)
PHONE_200MP = (16320, 12240)


def flat_jpeg(width: int, height: int) -> bytes:
    """A valid baseline greyscale JPEG of any size, built by hand in ~1 ms: one Huffman code
    ("0") for both a DC difference of 0 and end-of-block, so every 8x8 block is two zero bits
    (a 200 MP image is 0.8 MB, uniformly grey)."""

    def segment(marker: int, payload: bytes) -> bytes:
        return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload

    table = bytes([1] + [0] * 15) + b"\x00"
    blocks = -(-width // 8) * -(-height // 8)
    return (
        b"\xff\xd8"
        + segment(0xDB, b"\x00" + b"\x01" * 64)
        + segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
        + segment(0xC4, b"\x00" + table + b"\x10" + table)
        + segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
        + bytes(-(-2 * blocks // 8))
        + b"\xff\xd9"
    )


def progressive_header(width: int, height: int) -> bytes:
    """A small real progressive JPEG whose SOF2 header is patched to ``width`` x ``height``."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buf, "JPEG", progressive=True)
    data = bytearray(buf.getvalue())
    i = 2
    while data[i + 1] != 0xC2:
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.fixture(scope="module")
def phone_cat(tmp_path_factory, chelsea) -> bytes:
    """chelsea.png blown up to a 48 MP phone-sized JPEG (about 1 s and 200 MB to make, once)."""
    path = tmp_path_factory.mktemp("phone") / "IMG_4800.jpg"
    Image.open(chelsea).convert("RGB").resize(PHONE_48MP, Image.Resampling.NEAREST).save(path, quality=60)
    return path.read_bytes()


def test_48mp_phone_photo_is_classified_by_default(classifier, phone_cat):
    result = classifier.classify_one(phone_cat, top_k=1)
    assert result.ok, result.error
    assert (result.width, result.height) == PHONE_48MP
    assert result.predictions[0].label in CATS


def test_200mp_jpeg_decodes_reduced_within_the_limit():
    draft_size = 512  # what the default model asks for (2x its resize size)
    decoded = load_image(flat_jpeg(*PHONE_200MP), draft_size=draft_size)
    assert (decoded.width, decoded.height) == PHONE_200MP  # reported as the photo is
    assert decoded.image.size == (2040, 1530)  # decoded at 1/8: 3.1 MP held, not 200
    assert decoded.image.size[0] * decoded.image.size[1] <= DEFAULT_MAX_PIXELS


def test_200mp_through_the_classifier(classifier):
    result = classifier.classify_one(flat_jpeg(*PHONE_200MP), top_k=1)
    assert result.ok, result.error
    assert (result.width, result.height) == PHONE_200MP


def test_jpeg_header_has_a_ceiling():
    side = int((DEFAULT_MAX_PIXELS * JPEG_HEADER_FACTOR) ** 0.5) + 10
    with pytest.raises(TooManyPixelsError) as err:
        load_image(flat_jpeg(side, side), draft_size=512)
    assert f"{side}x{side}" in err.value.message and "--max-pixels" in err.value.message


def test_full_size_decodes_keep_the_strict_limit_and_name_the_option(phone_cat):
    with pytest.raises(TooManyPixelsError) as err:  # exact decoding holds all 48 MP
        Classifier(draft=False).classify(phone_cat)
    assert "8064x6048" in err.value.message and "limit of 40 MP" in err.value.message
    assert "--max-pixels" in err.value.message
    with pytest.raises(TooManyPixelsError) as err:  # progressive: every coefficient is held anyway
        load_image(progressive_header(*PHONE_48MP), draft_size=512)
    assert "progressive" in err.value.message and "--max-pixels" in err.value.message
    raised = Classifier(draft=False, max_pixels=50_000_000).classify(phone_cat, top_k=1)
    assert raised[0].label in CATS


def test_png_of_phone_size_is_still_refused():
    buf = io.BytesIO()
    Image.new("L", (8000, 6000)).save(buf, "PNG")  # no reduced decoding for PNG: strict
    with pytest.raises(TooManyPixelsError) as err:
        load_image(buf.getvalue(), draft_size=512)
    assert "limit of 40 MP" in err.value.message and "--max-pixels" in err.value.message
