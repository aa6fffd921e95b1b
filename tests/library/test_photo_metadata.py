"""What a photo says about itself (issue 26 items 5 and 9): GPS latitude/longitude from EXIF
(references, rationals; garbage is no place, never a crash) and the photo's own XMP/IPTC keywords
are stored at index time, shown in the photo item, and a catalogue made before schema 5 is
upgraded in place and gets them on the next index without the model."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from PIL import Image, TiffImagePlugin

from wanwu.library.catalogue import MIGRATIONS, SCHEMA_VERSION, open_catalogue
from wanwu.library.metadata import gps
from wanwu.library.search import photo, search

SYDNEY = {1: "S", 2: (33.0, 51.0, 54.0), 3: "E", 4: (151.0, 12.0, 36.5)}  # 33°51'54" S 151°12'36.5" E
ZERO = TiffImagePlugin.IFDRational(1, 0)


def _with_gps(src, dest, gps_ifd) -> None:
    with Image.open(src) as img:
        exif = Image.Exif()
        exif[0x010F], exif[0x0110] = "Canon", "Canon EOS 5D"
        exif[0x8825] = gps_ifd
        img.convert("RGB").save(dest, "JPEG", exif=exif, quality=90)


@pytest.fixture
def folder(tmp_path, photos):
    root = tmp_path / "trip"
    root.mkdir()
    _with_gps(photos["rocket.jpg"], root / "sydney.jpg", SYDNEY)
    _with_gps(photos["china.jpg"], root / "garbage.jpg", {1: "Q", 2: (ZERO, 0.0, 0.0), 3: "E", 4: (1000.0, 0.0, 0.0)})
    shutil.copy(photos["coffee.png"], root / "coffee.png")  # no EXIF at all
    exiftool = shutil.which("exiftool")
    if exiftool is not None:  # the photo's own keywords, as a camera app or Photoshop writes them
        subprocess.run(
            [exiftool, "-q", "-overwrite_original", "-XMP-dc:Subject=海滩", "-IPTC:Keywords=holiday",
             "-IPTC:CodedCharacterSet=UTF8", str(root / "sydney.jpg")],
            check=True,
        )  # fmt: skip
    return root


@pytest.mark.parametrize(
    "ifd, expected",
    [
        (SYDNEY, (-33.865, 151.210139)),
        ({1: b"N\x00", 2: (10, 30, 0), 3: b"W", 4: (1, 0, 0)}, (10.5, -1.0)),  # bytes refs, whole numbers
        ({1: "N", 2: (ZERO, 0, 0), 3: "E", 4: (1, 2, 3)}, (None, None)),  # a zero denominator
        ({1: "X", 2: (1, 2, 3), 3: "E", 4: (1, 2, 3)}, (None, None)),  # no such reference
        ({1: "N", 2: (200, 0, 0), 3: "E", 4: (1, 0, 0)}, (None, None)),  # out of range
        ({2: "garbage", 4: b"x"}, (None, None)),
        ({1: "N", 2: (0, 0, 0), 3: "E", 4: (0, 0, 0)}, (None, None)),  # 0, 0: a camera without a fix
        ({1: "N", 2: (1, 2, 3)}, (None, None)),  # no longitude
        ({}, (None, None)),
    ],
)
def test_gps_from_an_exif_gps_ifd(ifd, expected):
    assert gps(ifd) == expected


def test_gps_and_own_keywords_are_stored_and_shown(folder, index):
    summary, _ = index([folder])
    assert summary.new == 3 and summary.failed == 0
    conn = open_catalogue(index.db, readonly=True)
    rows = {r["path"].rsplit("/", 1)[1]: r for r in conn.execute("SELECT * FROM photos")}
    assert (rows["sydney.jpg"]["latitude"], rows["sydney.jpg"]["longitude"]) == (-33.865, 151.210139)
    assert rows["garbage.jpg"]["latitude"] is None and rows["garbage.jpg"]["camera"] == "Canon EOS 5D"
    assert rows["coffee.png"]["latitude"] is None and all(r["metadata_read"] == 1 for r in rows.values())
    item = photo(conn, rows["sydney.jpg"]["id"])
    assert item is not None and (item["latitude"], item["longitude"]) == (-33.865, 151.210139)
    if shutil.which("exiftool"):
        own = {t["label"]: t for t in item["tags"] if t.get("source")}
        assert set(own) == {"海滩", "holiday"} and all(t["user"] and t["source"] == "embedded" for t in own.values())
        assert [p["path"] for p in search(conn, "海滩").items] == [rows["sydney.jpg"]["path"]]
    conn.close()


def test_a_version_4_catalogue_is_upgraded_and_backfilled_without_the_model(folder, index):
    index([folder])
    conn = open_catalogue(index.db)
    conn.executescript(  # what a catalogue made before schema 5 is
        "DROP TABLE keywords; ALTER TABLE photos DROP COLUMN latitude; ALTER TABLE photos DROP COLUMN longitude;"
        "ALTER TABLE photos DROP COLUMN metadata_read; ALTER TABLE photos DROP COLUMN sidecar_stamp;"
        "PRAGMA user_version = 4;"
    )
    conn.close()
    assert SCHEMA_VERSION == len(MIGRATIONS) == 5
    with pytest.raises(Exception, match="run `wanwu index` once"):
        open_catalogue(index.db, readonly=True)  # readers never migrate

    summary, made = index([folder])
    assert made == [] and summary.classified == 0  # the model was not even loaded
    assert summary.metadata_read == 3 and summary.unchanged == 3
    conn = open_catalogue(index.db, readonly=True)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
    located = conn.execute("SELECT latitude, longitude FROM photos WHERE latitude IS NOT NULL").fetchall()
    assert [tuple(r) for r in located] == [(-33.865, 151.210139)]
    if shutil.which("exiftool"):
        assert {r[0] for r in conn.execute("SELECT name FROM keywords")} == {"海滩", "holiday"}
    conn.close()
    again, _ = index([folder])
    assert again.metadata_read == 0 and again.keywords_read == 0  # read once


def test_exports_carry_the_place(folder, index, tmp_path):
    """CSV, JSON Lines and Parquet exports have latitude/longitude (empty/null without a fix)."""
    import csv
    import json

    from wanwu.library.export import export

    index([folder])
    conn = open_catalogue(index.db, readonly=True)
    export(conn, str(tmp_path / "all.csv"))
    with open(tmp_path / "all.csv", encoding="utf-8-sig", newline="") as f:
        places = {r["path"].rsplit("/", 1)[1]: (r["latitude"], r["longitude"]) for r in csv.DictReader(f)}
    assert places["sydney.jpg"] == ("-33.865", "151.210139")
    assert places["garbage.jpg"] == places["coffee.png"] == ("", "")
    export(conn, str(tmp_path / "all.jsonl"))
    lines = [json.loads(x) for x in (tmp_path / "all.jsonl").read_text("utf-8").splitlines()]
    assert {(p["latitude"], p["longitude"]) for p in lines} == {(-33.865, 151.210139), (None, None)}
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet needs the parquet extra (pyarrow)")
    export(conn, str(tmp_path / "all.parquet"))
    table = pq.read_table(tmp_path / "all.parquet").to_pylist()
    assert {p["path"].rsplit("/", 1)[1]: p["latitude"] for p in table} == {
        "sydney.jpg": -33.865,
        "garbage.jpg": None,
        "coffee.png": None,
    }
    conn.close()
