"""Other apps' sidecars (issue 26 items 4 and 5): the keywords digiKam and Lightroom wrote are
read at index time from every field (dc:subject, lr:hierarchicalSubject, digiKam:TagsList: their
union, not the first one that has some), found by ``wanwu search`` as the user's own, re-read
when the sidecar changes (without the model), and never written back as wanwu's; a later
``wanwu index --write-xmp`` merges wanwu's keywords into those sidecars from the catalogue, and
``--lang zh`` rewrites them in Chinese, both without ``--force``, saying how many sidecars it
wrote, merged and skipped. Read back with exiftool."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from contextlib import redirect_stderr, redirect_stdout

import pytest

from wanwu.cli import main

DIGIKAM = (  # keywords in three fields, and in a second rdf:Description (as some apps split them)
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="5">'
    "<dc:subject><rdf:Bag><rdf:li>family</rdf:li><rdf:li>旅行</rdf:li></rdf:Bag></dc:subject>"
    "</rdf:Description>"
    '<rdf:Description rdf:about="" xmlns:lr="http://ns.adobe.com/lightroom/1.0/" '
    'xmlns:digiKam="http://www.digikam.org/ns/1.0/">'
    "<lr:hierarchicalSubject><rdf:Bag><rdf:li>Places|China|北京</rdf:li></rdf:Bag></lr:hierarchicalSubject>"
    "<digiKam:TagsList><rdf:Seq><rdf:li>Events/Wedding</rdf:li></rdf:Seq></digiKam:TagsList>"
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
)
LIGHTROOM = (  # photo.xmp: only a hierarchy
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:lr="http://ns.adobe.com/lightroom/1.0/">'
    "<lr:hierarchicalSubject><rdf:Bag><rdf:li>Trips|Moonshot</rdf:li></rdf:Bag></lr:hierarchicalSubject>"
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
)
CJK = re.compile("[\u4e00-\u9fff]")
OTHERS = {"family", "旅行", "北京", "Wedding"}
FLAT = {"family", "旅行"}  # the sidecar's dc:subject


def wanwu(*args) -> tuple[int, str, str]:
    """``wanwu ARGS`` in this process (the session's model cache): (status, stdout, stderr)."""
    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline=""), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        rc = main([*map(str, args)])
    out.flush()
    return rc, out.buffer.getvalue().decode(), err.getvalue()  # type: ignore[attr-defined]


def exif_keywords(sidecar) -> dict:
    exiftool = shutil.which("exiftool")
    if exiftool is None:
        pytest.skip("exiftool is not installed (apt-get install libimage-exiftool-perl) to read sidecars back")
    done = subprocess.run(
        [exiftool, "-j", "-XMP-dc:Subject", "-XMP-lr:HierarchicalSubject", "-XMP-digiKam:TagsList", str(sidecar)],
        capture_output=True,
        text=True,
        check=True,
    )
    [found] = json.loads(done.stdout)
    return {k: v if isinstance(v, list) else [v] for k, v in found.items() if k != "SourceFile"}


def test_other_apps_keywords_are_searchable_merged_once_and_reread(album, tmp_path):
    db = tmp_path / "library.db"
    flower, rocket = album / "travel/flower.jpg", album / "space/rocket.jpg"
    digikam, lightroom = album / "travel/flower.jpg.xmp", album / "space/rocket.xmp"
    digikam.write_text(DIGIKAM)
    lightroom.write_text(LIGHTROOM)

    rc, out, err = wanwu("index", album, "--db", db, "-q", "--tag-confidence", "0.05", "--json")
    assert json.loads(out)["keywords_read"] == 2
    for query in ("family", "旅行", "北京", "China", "Wedding"):  # a leaf, or a step of its hierarchy
        rc, out, err = wanwu("search", query, "--db", db, "--format", "paths")
        assert (rc, out) == (0, f"{flower}\n"), (query, err)
    rc, out, _ = wanwu("search", "moonshot", "--db", db, "--format", "json")
    [item] = json.loads(out)
    assert item["path"] == str(rocket)
    [tag] = [t for t in item["tags"] if t["label"] == "Moonshot"]
    assert tag["user"] and tag["source"] == "sidecar" and tag["hierarchy"] == "Trips|Moonshot"
    rc, out, _ = wanwu("search", "family", "--db", db)
    assert "family" in out  # the table shows them

    # --write-xmp after a plain index: every sidecar from the catalogue, no model, counted
    rc, out, err = wanwu("index", album, "--db", db, "-q", "--tag-confidence", "0.05", "--write-xmp", "--lang", "en")
    assert "0 classified" in out
    counts = re.search(r"sidecars: (\d+) new, (\d+) merged, (\d+) skipped", err)
    assert counts and int(counts[2]) == 1 and int(counts[1]) >= 6, err  # the digiKam one merged; Lightroom's is .xmp
    en = exif_keywords(digikam)
    assert FLAT <= set(en["Subject"]) and len(en["Subject"]) == len(set(en["Subject"])) > len(FLAT)
    assert "Places|China|北京" in en["HierarchicalSubject"] and "Events/Wedding" in en["TagsList"]
    assert not any(k.startswith("wanwu|") and k.split("|")[-1] in OTHERS for k in en["HierarchicalSubject"])
    assert not CJK.search(" ".join(set(en["Subject"]) - OTHERS))  # wanwu's in English

    rc, out, err = wanwu("index", album, "--db", db, "-q", "--tag-confidence", "0.05", "--json")
    assert json.loads(out)["classified"] == 0
    assert json.loads(out)["keywords_read"] == 0  # wanwu changed only its own keywords: nothing to read again
    rc, out, _ = wanwu("search", "family", "--db", db, "--format", "json")
    [item] = json.loads(out)
    assert sorted(t["label"] for t in item["tags"] if t.get("source")) == sorted(OTHERS)  # wanwu's not re-read

    # --lang zh: rewritten in Chinese without --force; the user's keywords kept once
    rc, out, err = wanwu("index", album, "--db", db, "-q", "--tag-confidence", "0.05", "--write-xmp", "--lang", "zh")
    counts = re.search(r"sidecars: (\d+) new, (\d+) merged, (\d+) skipped", err)
    assert "0 classified" in out and counts and counts[1] == "0" and int(counts[2]) >= 7, err
    zh = exif_keywords(digikam)
    ours = set(zh["Subject"]) - OTHERS
    assert ours and all(CJK.search(k) for k in ours) and FLAT <= set(zh["Subject"])
    assert len(zh["Subject"]) == len(set(zh["Subject"]))
    rc, out, err = wanwu("index", album, "--db", db, "-q", "--tag-confidence", "0.05", "--write-xmp", "--lang", "zh")
    assert re.search(r"sidecars: 0 new, 0 merged, \d+ skipped", err), err  # up to date now

    # digiKam changes its sidecar: read again on the next index, without the model
    digikam.write_text(DIGIKAM.replace("<rdf:li>family</rdf:li>", "<rdf:li>beach day</rdf:li>"))
    os.utime(digikam, ns=(1, 1))
    rc, out, err = wanwu("index", album, "--db", db, "-q", "--json")
    summary = json.loads(out)
    assert summary["keywords_read"] >= 1 and summary["classified"] == 0
    assert wanwu("search", "beach day", "--db", db, "--format", "paths")[1] == f"{flower}\n"
    assert wanwu("search", "family", "--db", db)[0] == 1
    digikam.unlink()  # gone: so are its keywords
    assert json.loads(wanwu("index", album, "--db", db, "-q", "--json")[1])["keywords_read"] == 1
    assert wanwu("search", "旅行", "--db", db)[0] == 1


def test_every_field_counts_not_the_first_nonempty():
    """immich #28015: a sidecar with dc:subject and digiKam:TagsList gave only one of them."""
    from xml.etree import ElementTree as ET

    from wanwu.library.xmp import Keyword, others_keywords

    found = others_keywords(ET.ElementTree(ET.fromstring(DIGIKAM)))
    assert set(found) == {
        Keyword("family"),
        Keyword("旅行"),
        Keyword("北京", "Places|China|北京"),
        Keyword("Wedding", "Events|Wedding"),
    }


def test_a_named_person_is_written_once_however_often_the_sidecar_is_merged():
    """digiKam:TagsList got one more People/NAME at every merge: never up to date, ever longer."""
    from wanwu.library import xmp

    kw = xmp.keywords_for([{"label": "奶奶", "person": True, "wnid": None}])
    tree = xmp._empty_packet()
    for _ in range(3):
        xmp.merge(tree, kw)
    desc = xmp._description(tree)
    assert xmp._bag_items(desc, "digiKam:TagsList") == ["People/奶奶"]
    assert xmp._bag_items(desc, "lr:hierarchicalSubject") == ["People|奶奶"]
