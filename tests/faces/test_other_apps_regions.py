"""Names other apps gave faces (issue 21): a photo whose sidecar holds a named MWG face region,
written the way digiKam writes it (and checked with exiftool), names the person wanwu finds
there, and every photo of that person is found by the name; the other app's regions come
through ``--write-xmp`` unchanged; a name the user gave here wins; a region of the stored
pixels of a turned photo is turned as the photo is."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from wanwu.cli import main
from wanwu.library import xmp_regions

needs_exiftool = pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool is not installed")


def digikam_sidecar(regions: list[tuple[str, tuple[float, float, float, float]]], size: tuple[int, int]) -> str:
    """A sidecar as digiKam writes one: ``mwg-rs:Regions`` with the region's fields as
    attributes, and the Microsoft Photo form beside it."""
    mwg = "".join(
        f"""
     <rdf:li>
      <rdf:Description mwg-rs:Name="{name}" mwg-rs:Type="Face">
       <mwg-rs:Area stArea:x="{x + w / 2:.6f}" stArea:y="{y + h / 2:.6f}" stArea:w="{w:.6f}" stArea:h="{h:.6f}"
        stArea:unit="normalized"/>
      </rdf:Description>
     </rdf:li>"""
        for name, (x, y, w, h) in regions
    )
    mp = "".join(
        f"""
     <rdf:li MPReg:PersonDisplayName="{name}" MPReg:Rectangle="{x:.6f}, {y:.6f}, {w:.6f}, {h:.6f}"/>"""
        for name, (x, y, w, h) in regions
    )
    return f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:digiKam="http://www.digikam.org/ns/1.0/"
    xmlns:MP="http://ns.microsoft.com/photo/1.2/"
    xmlns:MPRI="http://ns.microsoft.com/photo/1.2/t/RegionInfo#"
    xmlns:MPReg="http://ns.microsoft.com/photo/1.2/t/Region#"
    xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/"
    xmlns:stDim="http://ns.adobe.com/xap/1.0/sType/Dimensions#"
    xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#">
   <digiKam:TagsList><rdf:Seq><rdf:li>People/Family</rdf:li></rdf:Seq></digiKam:TagsList>
   <MP:RegionInfo rdf:parseType="Resource">
    <MPRI:Regions>
     <rdf:Bag>{mp}
     </rdf:Bag>
    </MPRI:Regions>
   </MP:RegionInfo>
   <mwg-rs:Regions rdf:parseType="Resource">
    <mwg-rs:AppliedToDimensions stDim:w="{size[0]}" stDim:h="{size[1]}" stDim:unit="pixel"/>
    <mwg-rs:RegionList>
     <rdf:Bag>{mwg}
     </rdf:Bag>
    </mwg-rs:RegionList>
   </mwg-rs:Regions>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"""


def _grown(box, by=0.1):
    x, y, w, h = box
    return (x - w * by / 2, y - h * by / 2, w * (1 + by), h * (1 + by))


def _regions(path) -> list[dict]:
    out = subprocess.run(["exiftool", "-j", "-struct", "-XMP:RegionInfo", str(path)], capture_output=True, text=True)
    return json.loads(out.stdout)[0].get("RegionInfo", {}).get("RegionList", [])


def _people(db, capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["people", "--db", str(db), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@needs_exiftool
def test_a_face_named_in_another_apps_sidecar_names_the_person(tmp_path, shared_faces, found, capsys):
    root = tmp_path / "Pictures"
    shutil.copytree(shared_faces / "obama", root)
    (face,) = found["obama/obama.jpg"]
    from PIL import Image

    size = Image.open(root / "obama.jpg").size
    sidecar = root / "obama.jpg.xmp"
    sidecar.write_text(
        digikam_sidecar([("Barack Obama", _grown(face.box)), ("Nobody Here", (0.01, 0.01, 0.05, 0.05))], size),
        encoding="utf-8",
    )
    theirs = _regions(sidecar)  # exiftool reads it as digiKam's
    assert [r["Name"] for r in theirs] == ["Barack Obama", "Nobody Here"]

    db = tmp_path / "l.db"
    assert main(["index", str(root), "--db", str(db), "--quiet"]) == 0
    people = [p for p in _people(db, capsys) if p["id"] is not None]
    assert [(p["name"], p["faces"]) for p in people] == [("Barack Obama", 3)]  # every photo of him
    assert "Nobody Here" not in json.dumps(people)  # no face found there: ignored
    assert main(["search", "Barack Obama", "--db", str(db), "--format", "paths"]) == 0
    assert sorted(capsys.readouterr().out.split()) == sorted(str(p) for p in root.glob("*.jpg"))

    assert main(["index", str(root), "--db", str(db), "--quiet", "--write-xmp"]) == 0
    assert _regions(sidecar) == theirs  # their regions unchanged, and no second region over the face
    (ours,) = _regions(root / "obama1.jpg.xmp")
    assert ours["Name"] == "Barack Obama" and ours["Type"] == "Face"


def test_the_name_given_here_wins(tmp_path, shared_faces, found, capsys):
    root = tmp_path / "Pictures"
    shutil.copytree(shared_faces / "obama", root)
    db = tmp_path / "l.db"
    assert main(["index", str(root), "--db", str(db), "--quiet"]) == 0
    (person,) = [p for p in _people(db, capsys) if p["id"] is not None]
    assert main(["people", "name", str(person["id"]), "奥巴马", "--db", str(db)]) == 0
    (face,) = found["obama/obama.jpg"]
    (root / "obama.jpg.xmp").write_text(digikam_sidecar([("Barack Obama", face.box)], (0, 0)), encoding="utf-8")
    capsys.readouterr()
    assert main(["index", str(root), "--db", str(db), "--quiet", "--force"]) == 0
    err = capsys.readouterr().err
    assert [p["name"] for p in _people(db, capsys) if p["id"] is not None] == ["奥巴马"]
    lines = [line for line in err.splitlines() if "Barack Obama" in line]
    assert len(lines) == 1 and "kept" in lines[0]


def test_a_region_of_the_stored_pixels_is_turned_with_the_photo():
    """A 400x300 photo stored sideways (EXIF orientation 6: shown 300x400) whose region an app
    wrote against the stored 400x300 pixels; and the same region written against the photo
    as shown is taken as it is."""
    stored = (0.1, 0.2, 0.3, 0.4)  # left, top, width, height of the stored pixels
    text = digikam_sidecar([("Someone", stored)], (400, 300))
    tree = ET.ElementTree(ET.fromstring(text.split("?>", 1)[1].rsplit("<?", 1)[0]))
    mwg, mp = xmp_regions._named(tree, (300, 400), lambda: 6)
    # turned a quarter clockwise: the stored left edge is the top, the stored top the right
    assert mwg.box == pytest.approx((1 - 0.2 - 0.4, 0.1, 0.4, 0.3))
    assert mp.name == "Someone" and mp.box == pytest.approx(stored)  # the MP form has no dimensions
    shown = xmp_regions._named(tree, (400, 300), lambda: 6)[0]
    assert shown.box == pytest.approx(stored)


def test_wanwus_own_regions_and_unnamed_ones_are_not_names():
    own = io.StringIO()
    regions = xmp_regions.Regions(100, 100, (xmp_regions.Region(7, (0.1, 0.1, 0.2, 0.2), "奶奶"),))
    from wanwu.library import xmp

    tree = xmp._empty_packet()
    xmp_regions.apply(tree, regions)
    tree.write(own, encoding="unicode")
    assert xmp_regions._named(tree, (100, 100), lambda: 1) == []
    assert "奶奶" in own.getvalue()
