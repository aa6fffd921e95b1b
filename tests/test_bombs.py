"""Decompression bombs: tiny files whose headers declare huge images, in every format wanwu
reads, refused from the header before a pixel is allocated — at the imaging level (no
decode call, tracemalloc peak and process RSS flat) and through the HTTP API (413
``too_many_pixels``). Plus the legitimate worst case: a highly compressed PNG under the pixel
limit is answered, and its memory peak is measured and bounded.

Found this way: an ICO decodes its embedded PNG/BMP inside ``Image.open`` and a WebP sets up
its whole canvas there, both before a size could be checked; ``wanwu.imaging`` now reads
their declared sizes from the bytes first."""

from __future__ import annotations

import base64
import io
import json
import struct
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from wanwu.errors import TooManyPixelsError
from wanwu.imaging import DEFAULT_MAX_PIXELS, load_image


# -- crafting ---------------------------------------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width: int, height: int, color_type: int = 2, bit_depth: int = 8) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")
    )


def gif(screen: tuple[int, int], frame: tuple[int, int]) -> bytes:
    return (
        b"GIF89a"
        + struct.pack("<HH", *screen)
        + b"\x80\x00\x00"
        + b"\x00\x00\x00\xff\xff\xff"
        + b","
        + struct.pack("<HHHH", 0, 0, *frame)
        + b"\x00"
        + b"\x02\x02\x44\x01\x00"
        + b";"
    )


def jpeg(width: int, height: int, progressive: bool = False) -> bytes:
    """A real 64x48 JPEG whose SOF0 (or SOF2) header is patched to say ``width`` x ``height``."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buf, "JPEG", progressive=progressive)
    data = bytearray(buf.getvalue())
    i = 2
    while True:
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC2):
            data[i + 5 : i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length


def tiff(width: int, height: int) -> bytes:
    entries = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 8 + 2 + 12 * 8 + 4),
        (278, 4, height),
        (279, 4, 16),
    ]
    ifd = (
        struct.pack("<H", len(entries))
        + b"".join(
            struct.pack("<HHII", tag, kind, 1, value) if kind == 4 else struct.pack("<HHIHH", tag, kind, 1, value, 0)
            for tag, kind, value in entries
        )
        + struct.pack("<I", 0)
    )
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\0" * 16


def _small_webp(**kwargs) -> bytearray:
    buf = io.BytesIO()
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(buf, "WEBP", lossless=True, **kwargs)
    return bytearray(buf.getvalue())


def webp_lossless(width: int, height: int) -> bytes:
    data = _small_webp()
    i = data.index(b"VP8L") + 9
    bits = int.from_bytes(data[i : i + 4], "little") & ~((1 << 28) - 1)
    data[i : i + 4] = (bits | (width - 1) | ((height - 1) << 14)).to_bytes(4, "little")
    return bytes(data)


def webp_animated_canvas(width: int, height: int) -> bytes:
    frames = [Image.new("RGB", (4, 4), c) for c in ((0, 0, 255),)]
    data = _small_webp(save_all=True, append_images=frames)
    i = data.index(b"VP8X") + 8
    data[i + 4 : i + 7] = (width - 1).to_bytes(3, "little")
    data[i + 7 : i + 10] = (height - 1).to_bytes(3, "little")
    return bytes(data)


def bmp(width: int, height: int) -> bytes:
    return (
        b"BM"
        + struct.pack("<IHHI", 54 + 16, 0, 0, 54)
        + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 16, 2835, 2835, 0, 0)
        + b"\0" * 16
    )


def ppm(width: int, height: int) -> bytes:
    return b"P6\n%d %d\n255\n" % (width, height) + b"\0" * 16


def tga(width: int, height: int) -> bytes:
    return struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, width, height, 24, 0) + b"\0" * 16


def ico(inner: bytes) -> bytes:
    """An icon whose directory says 16x16 around an embedded image of any size."""
    return struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(inner), 22) + inner


def dib(width: int, height: int) -> bytes:
    return struct.pack("<IiiHHIIiiII", 40, width, height * 2, 1, 24, 0, 0, 0, 0, 0, 0) + b"\0" * 64


def _real_png_ico(side: int) -> bytes:
    """An icon around a *real* (decodable) PNG of side x side zeros: ~0.2 MB for 8000."""
    buf = io.BytesIO()
    Image.new("RGB", (side, side)).save(buf, "PNG")
    return ico(buf.getvalue())


BOMBS: dict[str, tuple[bytes, str]] = {  # name -> (file, the size its message must name)
    "png 100000x100000 rgb": (png(100_000, 100_000), "100000x100000"),
    "png 65535x65535 16-bit rgba": (png(65_535, 65_535, color_type=6, bit_depth=16), "65535x65535"),
    "gif huge screen": (gif((65_535, 65_535), (65_535, 65_535)), "65535x65535"),
    "gif 1x1 screen, huge frame": (gif((1, 1), (65_535, 65_535)), "65535x65535"),
    # baseline JPEGs decode reduced, so their header may say up to 8x the limit (320 MP): past it
    "jpeg sof0 patched to 400 MP": (jpeg(20_000, 20_000), "20000x20000"),
    "jpeg sof0 65500x6000": (jpeg(65_500, 6_000), "65500x6000"),
    "jpeg progressive sof2 200 MP": (jpeg(14_142, 14_142, progressive=True), "14142x14142"),
    "tiff 100000x100000": (tiff(100_000, 100_000), "100000x100000"),
    "webp lossless 16384x16384": (webp_lossless(16_384, 16_384), "16384x16384"),
    "webp animated canvas 16000x16000": (webp_animated_canvas(16_000, 16_000), "16000x16000"),
    "bmp 100000x100000": (bmp(100_000, 100_000), "100000x100000"),
    "ppm 100000x100000": (ppm(100_000, 100_000), "100000x100000"),
    "tga 65535x65535": (tga(65_535, 65_535), "65535x65535"),
    "ico around a 100000x100000 png": (ico(png(100_000, 100_000)), "100000x100000"),
    "ico around a 60000x60000 bmp": (ico(dib(60_000, 60_000)), "60000x60000"),
}


@pytest.fixture(scope="module")
def real_ico_bomb() -> bytes:
    return _real_png_ico(8000)  # 64 MP of real pixel data: Pillow alone would decode it on open


# -- at the imaging level ---------------------------------------------------------------------
@pytest.mark.parametrize("name", list(BOMBS))
def test_bomb_is_refused_from_its_header(name, monkeypatch):
    data, dims = BOMBS[name]
    decoded = []
    real_load = ImageFile.ImageFile.load

    def spy_load(self):
        decoded.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy_load)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(TooManyPixelsError) as err:
            load_image(data, name="bomb")
        took = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert dims in err.value.message and "limit of 40 MP" in err.value.message
    assert decoded == [], f"pixels were decoded: {decoded}"
    assert peak < 20e6, f"tracemalloc peak {peak / 1e6:.1f} MB"
    assert took < 0.5
    assert len(data) < 1000  # a few hundred bytes each


def test_icon_around_a_real_big_png_is_refused_before_opening(real_ico_bomb):
    """Pillow decodes an icon's PNG while *opening* the file: the size must be read before."""
    with pytest.raises(TooManyPixelsError) as err:
        load_image(real_ico_bomb, name="icon.ico")
    assert "icon.ico holds an icon that is 8000x8000" in err.value.message
    small = _real_png_ico(64)
    assert load_image(small).image.size == (64, 64)  # icons as such still work


def test_bombs_leave_the_process_rss_flat(tmp_path, real_ico_bomb):
    """tracemalloc cannot see Pillow's C allocations; the peak RSS of a fresh process can."""
    for i, (data, _) in enumerate(list(BOMBS.values()) + [(real_ico_bomb, "")]):
        (tmp_path / f"{i}.bin").write_bytes(data)
    script = textwrap.dedent(f"""
        import json, pathlib, resource
        from wanwu.errors import TooManyPixelsError
        from wanwu.imaging import load_image
        paths = sorted(pathlib.Path({str(tmp_path)!r}).glob("*.bin"))
        load_image(b"P6 1 1 255 abc")  # a 1x1 image: warms the decoding path
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        codes = []
        for p in paths:
            try:
                load_image(p.read_bytes())
                codes.append("decoded")
            except TooManyPixelsError as e:
                codes.append(e.code)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(json.dumps({{"codes": codes, "grown_kb": grown}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(result["codes"]) == {"too_many_pixels"}
    assert result["grown_kb"] < 20 * 1024, f"peak RSS grew by {result['grown_kb'] / 1024:.1f} MB"


ZERO_PNG_PEAK = textwrap.dedent("""
    import io, json, sys, time, psutil
    from PIL import Image
    from wanwu.imaging import load_image, preprocess
    from wanwu.models import get_spec
    prep = get_spec("efficientnet_lite0").preprocessing
    buf = io.BytesIO()
    Image.new(sys.argv[1], (6000, 6000)).save(buf, "PNG")
    data = buf.getvalue()
    del buf
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current RSS
    base = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    x = preprocess(load_image(data).image, prep)
    took = time.perf_counter() - t0
    hwm = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) * 1024
    print(json.dumps({"file_kb": len(data) / 1024, "peak_mb": (hwm - base) / 2**20, "seconds": took, "shape": list(x.shape)}))
""")


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_highly_compressed_png_under_the_limit_is_answered_with_a_bounded_peak(mode):
    """6000x6000 zeros (36 MP, under the 40 MP limit) is a ~35-105 KB file that must really be
    decoded. The peak is what the decoded pixels need: about 4-5 bytes per pixel (the
    decoded image, plus its RGB copy for greyscale), nothing more."""
    out = subprocess.run([sys.executable, "-c", ZERO_PNG_PEAK, mode], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"\n6000x6000 zeros PNG ({mode}): {r['file_kb']:.0f} KB file, peak RSS +{r['peak_mb']:.0f} MB, "
        f"{r['seconds']:.2f} s"
    )
    assert r["file_kb"] < 150 and r["shape"] == [3, 224, 224]
    assert r["peak_mb"] < 6 * 36e6 / 2**20, r  # < 6 bytes per pixel
    assert r["seconds"] < 5


# -- through the API ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api():
    from fastapi.testclient import TestClient

    from wanwu.server import ServerConfig, create_app

    with TestClient(create_app(ServerConfig.from_env(environ={})), raise_server_exceptions=False) as c:
        yield c


def _assert_413(r) -> None:
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "too_many_pixels"


@pytest.mark.parametrize("name", list(BOMBS))
def test_bomb_through_the_api_is_413_too_many_pixels(api, name):
    data, dims = BOMBS[name]
    tracemalloc.start()
    try:
        r = api.post("/api/v1/classify", content=data, headers={"X-Filename": "bomb.bin"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    _assert_413(r)
    assert dims in r.json()["error"]["message"]
    assert peak < 20e6


def test_bombs_on_every_route(api, real_ico_bomb):
    bombs = [data for data, _ in BOMBS.values()] + [real_ico_bomb]
    files = [("file", (f"bomb{i}", data)) for i, data in enumerate(bombs)]
    r = api.post("/api/v1/classify", files=files)
    _assert_413(r)
    assert [x["error"]["code"] for x in r.json()["results"]] == ["too_many_pixels"] * len(bombs)
    for data in (real_ico_bomb, BOMBS["jpeg sof0 patched to 400 MP"][0]):
        _assert_413(api.put("/predictions/efficientnet_lite0", content=data))
        v2 = {
            "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(data).decode()]}]
        }
        r = api.post("/v2/models/efficientnet_lite0/infer", json=v2)
        assert r.status_code == 413 and "megapixels" in r.json()["error"]


def test_zero_png_under_the_limit_is_classified_through_the_api(api):
    buf = io.BytesIO()
    Image.new("RGB", (6000, 6000)).save(buf, "PNG")
    r = api.post("/api/v1/classify?top_k=1", content=buf.getvalue())
    assert r.status_code == 200
    result = r.json()["results"][0]
    assert (result["width"], result["height"]) == (6000, 6000) and len(result["predictions"]) == 1


def test_the_limit_is_the_one_configured():
    assert DEFAULT_MAX_PIXELS == 40_000_000
    data = ico(png(300, 200))
    with pytest.raises(TooManyPixelsError):
        load_image(data, max_pixels=300 * 200 - 1)
    with pytest.raises(Exception) as err:  # allowed by size: then it is just a damaged icon
        load_image(data, max_pixels=300 * 200)
    assert not isinstance(err.value, TooManyPixelsError)
