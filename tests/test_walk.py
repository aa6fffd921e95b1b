"""Folder walks: recursive and sorted, hidden entries skipped, and every image file that is left
out reported with what to do (a folder of HEIC photos used to say only "no images found")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from wanwu import formats
from wanwu.cli import main
from wanwu.walk import SkipReport, iter_images

CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}
NO_HEIF = "import sys; sys.modules['pillow_heif'] = None; from wanwu.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.fixture(scope="module")
def heic(tmp_path_factory, photos) -> Path:
    """chelsea.png as a real HEIC file (encoded by pillow-heif)."""
    if not formats.HEIF_AVAILABLE:
        pytest.skip("pillow-heif not installed (pip install 'wanwu-tagger[heif]')")
    path = tmp_path_factory.mktemp("heic") / "chelsea.heic"
    Image.open(photos["chelsea.png"]).convert("RGB").save(path, quality=80)
    assert path.read_bytes()[4:12] == b"ftypheic"
    return path


@pytest.fixture
def library(tmp_path, photos) -> Path:
    """A phone-dump-like folder: photos in subfolders, a hidden folder, junk, RAW and notes."""
    root = tmp_path / "photos"
    (root / "2024" / "summer").mkdir(parents=True)
    (root / ".thumbnails").mkdir()
    (root / "b").mkdir()
    shutil.copy(photos["chelsea.png"], root / "2024" / "summer" / "cat.png")
    shutil.copy(photos["rocket.jpg"], root / "2024" / "rocket.JPG")
    shutil.copy(photos["coffee.png"], root / "b" / "coffee.png")
    shutil.copy(photos["coffee.png"], root / ".thumbnails" / "coffee.png")
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "notes.txt").write_text("not a photo")
    (root / "b" / "IMG_0001.CR2").write_bytes(b"II*\0\x10\0\0\0CR")
    (root / "b" / "IMG_0002.cr2").write_bytes(b"II*\0\x10\0\0\0CR")
    return root


def test_walk_is_recursive_sorted_and_skips_hidden(library):
    report = SkipReport()
    found = [p.relative_to(library).as_posix() for p in iter_images([library], report)]
    assert found == ["2024/rocket.JPG", "2024/summer/cat.png", "b/coffee.png"]
    assert report.hidden == 2 and report.other == 1
    assert report.lines() == [
        "skipped 2 camera RAW files (IMG_0001.CR2, IMG_0002.cr2): wanwu does not read RAW files; export them to JPEG"
    ]
    verbose = report.lines(verbose=True)
    assert "skipped 1 file that is not an image" in verbose
    assert "skipped 2 hidden files or folders (names starting with '.')" in verbose


def test_files_named_directly_are_kept(library):
    named = [library / "notes.txt", library / ".DS_Store", library / "missing.jpg"]
    assert list(iter_images(named)) == named  # decoding them says what is wrong


def test_unreadable_folder_is_reported(library):
    if os.geteuid() == 0:
        pytest.skip("root reads every folder")
    locked = library / "b"
    locked.chmod(0)
    try:
        report = SkipReport()
        list(iter_images([library], report))
        assert any(line.startswith(f"skipped folder {locked}") for line in report.lines())
    finally:
        locked.chmod(0o755)


def test_heic_needs_the_extra_only_when_missing():
    assert formats.unreadable(".cr2")[0] == "camera RAW"
    assert formats.unreadable(".txt") is None and formats.unreadable(".jpg") is None
    if formats.HEIF_AVAILABLE:
        assert formats.unreadable(".HEIC") is None and ".heic" in formats.IMAGE_EXTENSIONS
    else:
        assert formats.unreadable(".heic") == ("HEIC", f"install the HEIC reader: {formats.HEIF_EXTRA}")


def test_classify_reports_skipped_files_on_stderr(library, capsys):
    assert main(["classify", str(library), "--format", "json", "--top-k", "1"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)  # stdout stays JSON
    assert [Path(r["filename"]).name for r in out["results"]] == ["rocket.JPG", "cat.png", "coffee.png"]
    assert "wanwu: skipped 2 camera RAW files (IMG_0001.CR2, IMG_0002.cr2)" in captured.err
    assert "hidden" not in captured.err  # only with -v
    assert main(["-v", "classify", str(library), "--top-k", "1", "-q"]) == 0
    assert "skipped" not in capsys.readouterr().err  # -q: nothing on stderr


def test_heic_folder_is_classified_with_the_extra(heic, tmp_path, capsys):
    shutil.copy(heic, tmp_path / "IMG_1.HEIC")
    assert main(["classify", str(tmp_path), "--format", "json", "--top-k", "1"]) == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert (result["width"], result["height"]) == (451, 300)
    assert result["predictions"][0]["label"] in CATS


def test_heic_folder_without_the_extra_says_what_to_install(heic, tmp_path):
    for i in range(3):
        shutil.copy(heic, tmp_path / f"IMG_{i}.heic")
    run = subprocess.run([sys.executable, "-c", NO_HEIF, "classify", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 1 and run.stdout == ""
    assert (
        "wanwu: skipped 3 HEIC files (IMG_0.heic, IMG_1.heic, and 1 more): install the HEIC reader: "
        "pip install 'wanwu-tagger[heif]'" in run.stderr
    )
    assert "no images wanwu can read in the given paths" in run.stderr
    assert "no images found" not in run.stderr
    named = subprocess.run(
        [sys.executable, "-c", NO_HEIF, "classify", str(tmp_path / "IMG_0.heic")], capture_output=True, text=True
    )
    assert named.returncode == 1 and "pip install 'wanwu-tagger[heif]'" in named.stderr


def test_empty_folder_still_says_no_images_found(tmp_path, capsys):
    assert main(["classify", str(tmp_path)]) == 1
    assert "wanwu: no images found in the given paths" in capsys.readouterr().err
