"""MWG face regions and names in XMP sidecars, read back with exiftool: wanwu's regions
(Type Face, normalised stArea with x, y the centre, Name once named), the name as keywords
(People|name, and the plain name), another app's region kept through every write, and every
region wanwu wrote gone after --forget-all."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from wanwu.cli import main

OTHER_APP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/"
  xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#" xmlns:dc="http://purl.org/dc/elements/1.1/">
 <dc:subject><rdf:Bag><rdf:li>my trip</rdf:li></rdf:Bag></dc:subject>
 <mwg-rs:Regions rdf:parseType="Resource"><mwg-rs:RegionList><rdf:Bag>
  <rdf:li><rdf:Description mwg-rs:Name="Someone Else" mwg-rs:Type="Face">
   <mwg-rs:Area stArea:x="0.1" stArea:y="0.1" stArea:w="0.05" stArea:h="0.05" stArea:unit="normalized"/>
  </rdf:Description></rdf:li>
 </rdf:Bag></mwg-rs:RegionList></mwg-rs:Regions>
</rdf:Description></rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>
"""


def _exif(path) -> dict:
    out = subprocess.run(
        ["exiftool", "-j", "-struct", "-XMP:RegionInfo", "-XMP:HierarchicalSubject", "-XMP:Subject", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)[0]


def _regions(info: dict) -> list[dict]:
    return info.get("RegionInfo", {}).get("RegionList", [])


def _listed(x) -> list:
    return x if isinstance(x, list) else [] if x is None else [x]


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool is not installed (libimage-exiftool-perl)")
def test_regions_and_names_in_sidecars_read_back_with_exiftool(tmp_path, shared_faces, finder, capsys):
    root = tmp_path / "Pictures"
    shutil.copytree(shared_faces / "obama", root)
    (root / "obama.jpg.xmp").write_text(OTHER_APP, encoding="utf-8")
    db = str(tmp_path / "l.db")
    assert main(["index", str(root), "--db", db, "--quiet", "--write-xmp"]) == 0
    capsys.readouterr()

    info = _exif(root / "obama1.jpg.xmp")
    (region,) = _regions(info)
    assert region["Type"] == "Face" and "Name" not in region  # not named yet
    area = region["Area"]
    assert area["Unit"] == "normalized" and 0 < area["W"] < 1 and 0 < area["H"] < 1
    assert 0.3 < area["X"] < 0.7 and 0.2 < area["Y"] < 0.7  # the centre of a portrait's face
    assert info["RegionInfo"]["AppliedToDimensions"]["W"] == 1480

    assert main(["people", "--db", db, "--format", "json"]) == 0
    (person,) = [p for p in json.loads(capsys.readouterr().out) if p["id"] is not None]
    assert main(["people", "name", str(person["id"]), "奥巴马", "--db", db, "--write-xmp"]) == 0
    for name in ("obama.jpg", "obama1.jpg", "obama2.jpg"):
        info = _exif(root / f"{name}.xmp")
        named = [r for r in _regions(info) if r.get("Name") == "奥巴马"]
        assert len(named) == 1 and named[0]["Type"] == "Face", name
        assert "People|奥巴马" in _listed(info.get("HierarchicalSubject"))
        assert "奥巴马" in _listed(info.get("Subject"))
    kept = _exif(root / "obama.jpg.xmp")
    assert [r["Name"] for r in _regions(kept) if r.get("Name") != "奥巴马"] == ["Someone Else"]
    assert "my trip" in _listed(kept.get("Subject"))

    assert main(["people", "--forget-all", "--db", db, "--write-xmp"]) == 0
    after = _exif(root / "obama.jpg.xmp")
    assert [r["Name"] for r in _regions(after)] == ["Someone Else"]  # another app's region stays
    assert "People|奥巴马" not in _listed(after.get("HierarchicalSubject"))
    assert "奥巴马" not in _listed(after.get("Subject")) and "my trip" in _listed(after.get("Subject"))
    assert _regions(_exif(root / "obama1.jpg.xmp")) == []
