"""The sidecar rules (docs/library.md, "XMP sidecars"): modes kept or taken from the photo, never
0600; wanwu's temporary files cleaned up after a ``kill -9``; no sidecar when there is nothing
to say; problems reported once per photo, naming the photo and its sidecar (never a temporary
file); a linked sidecar left alone; the usual XMP prefixes written back as such."""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest
from album_tree import CORRUPT, LAYOUT

from wanwu import atomic
from wanwu.cli import main

VISIBLE = [rel for rel in LAYOUT if not rel.startswith(".")]
RATED = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
    'xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:acme="http://example.com/acme/1.0/" '
    'xmp:Rating="4" xmpMM:DocumentID="xmp.did:1234" photoshop:DateCreated="2019-07-01" acme:Flag="red">'
    "<dc:subject><rdf:Bag><rdf:li>holiday</rdf:li></rdf:Bag></dc:subject>"
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
)


def _mode(p) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def index(*args, db) -> tuple[int, str]:
    """``wanwu index`` in this process (the session's model cache): (exit status, stderr)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        rc = main(["index", *map(str, args), "--db", str(db), "-q"])
    return rc, err.getvalue()


def tag(*args, db) -> tuple[int, str]:
    import io
    from contextlib import redirect_stderr, redirect_stdout

    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        rc = main(["tag", *map(str, args), "--db", str(db)])
    return rc, err.getvalue()


@pytest.fixture
def db(tmp_path):
    return tmp_path / "catalogue" / "library.db"


@pytest.fixture
def umask_077():
    old = os.umask(0o077)  # the umask that made every sidecar 0600 is the photo's business, not ours
    yield
    os.umask(old)


def test_sidecars_keep_their_mode_and_new_ones_take_the_photos(album, db, umask_077):
    coffee, china = album / "kitchen/coffee.png", album / "travel/2019/summer/china.jpg"
    for photo in album.rglob("*"):
        if photo.is_file():
            photo.chmod(0o644)
    coffee.chmod(0o640)
    china.chmod(0o755)  # a photo from a FAT card: executable bits, which a sidecar does not get
    own = album / "space/rocket.jpg.xmp"
    own.write_text(RATED)
    own.chmod(0o664)
    # a low --tag-confidence: every photo has something to say, so every photo gets a sidecar
    rc, err = index(album, "--write-xmp", "--tag-confidence", "0.05", db=db)
    assert rc == 1 and "wanwu: sidecar:" not in err  # 1: the corrupt photo
    assert _mode(own) == 0o664 and "wanwu|" in own.read_text()  # rewritten, mode kept
    assert _mode(str(coffee) + ".xmp") == 0o640
    assert _mode(str(china) + ".xmp") == 0o644
    modes = {_mode(p) for p in album.rglob("*.xmp")}
    assert 0o600 not in modes and len(list(album.rglob("*.xmp"))) == len(VISIBLE)


def test_no_sidecar_for_a_failed_photo_or_one_with_nothing_to_say(album, db):
    user_own = album / "people/grace_hopper.jpg.xmp"
    user_own.write_text(RATED)
    old = time.time() - 3600
    os.utime(user_own, (old, old))
    before = user_own.read_bytes()
    # no tag reaches 1, and no faces looked for: nothing to say (a face region would be something)
    rc, err = index(album, "--write-xmp", "--tag-confidence", "1", "--no-faces", db=db)
    assert rc == 1 and "wanwu: sidecar:" not in err
    assert list(album.rglob("*.xmp")) == [user_own]  # none made, not even for the failed file
    assert user_own.read_bytes() == before and user_own.stat().st_mtime == old  # untouched: nothing changed
    rc, _ = index(album, "--write-xmp", "--force", "--tag-confidence", "0.05", db=db)
    assert not (album / (CORRUPT + ".xmp")).exists()  # a failed photo never gets one
    assert len(list(album.rglob("*.xmp"))) == len(VISIBLE)
    assert "holiday" in user_own.read_text() and "wanwu|" in user_own.read_text()


def test_kill_9_leftovers_are_removed_on_the_next_run(album, db):
    """A real ``kill -9`` in the middle of a sidecar write leaves wanwu's temporary file; the next
    ``wanwu index`` (with or without --write-xmp) removes it once it is older than a minute,
    and leaves everything that is not wanwu's own alone."""
    folder = album / "kitchen"
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import os, signal
                from wanwu.atomic import atomic_writer
                with atomic_writer({str(folder / "coffee.png.xmp")!r}) as f:
                    f.write(b"<x:xmpmeta half")
                    f.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
            """),
        ],
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL
    leftovers = [p for p in folder.iterdir() if atomic.is_own_temp(p.name)]
    assert len(leftovers) == 1 and leftovers[0].name.endswith(".xmp.tmp")
    old_format = album / "cats" / ".wanwu-k3j2h1x0.xmp.tmp"  # what wanwu 0.x's mkstemp names looked like
    old_format.write_text("half")
    fresh = album / "cats" / atomic.temp_name("chelsea.png.xmp")  # a `wanwu tag` writing right now
    fresh.write_text("half")
    theirs = album / "cats" / ".wanwu-settings.xmp"  # not a name wanwu makes
    theirs.write_text("keep")
    hour_ago = time.time() - 3600
    for p in (*leftovers, old_format, theirs):
        os.utime(p, (hour_ago, hour_ago))

    rc, err = index(album, db=db)
    assert "removed 2 temporary sidecar file(s) left by an interrupted run" in err
    assert not leftovers[0].exists() and not old_format.exists()
    assert fresh.exists() and theirs.exists()
    assert "removed" not in index(album, db=db)[1]


def test_a_read_only_folder_is_reported_once_per_photo_naming_photo_and_sidecar(album, db, monkeypatch):
    """What a read-only folder answers (EACCES on the temporary file), simulated so that it
    holds for root too; tests below do it for real on a read-only tmpfs."""
    kitchen, cats = album / "kitchen", album / "cats"
    real = atomic._create_temp

    def read_only(folder, name):
        if folder in (str(kitchen), str(cats)):
            raise PermissionError(errno.EACCES, "Permission denied", os.path.join(folder, atomic.temp_name(name)))
        return real(folder, name)

    monkeypatch.setattr(atomic, "_create_temp", read_only)
    rc, err = index(album, "--write-xmp", db=db)
    lines = [line for line in err.splitlines() if line.startswith("wanwu: sidecar:")]
    photos = [kitchen / "coffee.png", cats / "chelsea.png"]
    assert rc == 1 and len(lines) == len(photos), err
    for photo in photos:
        (line,) = [x for x in lines if f"{photo}:" in x]
        assert f"{photo}.xmp not written: Permission denied" in line
    assert ".tmp" not in err
    assert not list(kitchen.glob("*.xmp")) and not list(kitchen.glob(".wanwu-*"))


def test_a_real_read_only_disk(tmpfs, photos, db):
    disk = tmpfs("4m")
    for name in ("chelsea.png", "coffee.png"):
        shutil.copy(photos[name], disk / name)
    tmpfs.remount(disk, "ro")
    rc, err = index(disk, "--write-xmp", db=db)
    lines = sorted(line for line in err.splitlines() if line.startswith("wanwu: sidecar:"))
    assert rc == 1 and len(lines) == 2, err
    for line, name in zip(lines, ("chelsea.png", "coffee.png")):
        assert line == f"wanwu: sidecar: {disk / name}: {disk / name}.xmp not written: Read-only file system"


def test_a_full_photo_disk_stops_sidecars_there_after_one_line(album, db, monkeypatch):
    calls = []

    def full(path, data, **kw):
        calls.append(path)
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("wanwu.library.xmp.write_atomic", full)
    rc, err = index(album, "--write-xmp", db=db)
    lines = [line for line in err.splitlines() if line.startswith("wanwu: sidecar:")]
    assert rc == 1 and len(calls) == 1 and len(lines) == 1, err
    assert (
        "no space left on the disk mounted at" in lines[0] and "no more sidecars are written on that disk" in lines[0]
    )


def test_a_linked_sidecar_is_left_alone_and_reported_once(album, db, tmp_path):
    elsewhere = tmp_path / "elsewhere.xmp"
    elsewhere.write_text(RATED)
    linked = album / "cats/chelsea.png.xmp"
    linked.symlink_to(elsewhere)
    dangling = album / "space/rocket.jpg.xmp"
    dangling.symlink_to(tmp_path / "nothing-here.xmp")
    before = (elsewhere.read_bytes(), elsewhere.stat().st_mtime_ns)

    for run in (("--write-xmp",), ("--write-xmp", "--force")):
        rc, err = index(album, *run, db=db)
        assert rc == 1
        for link in (linked, dangling):
            assert err.count(f"{link} left alone: it is a symbolic link") == 1, err
    rc, err = tag(linked.with_suffix(""), "--add", "holiday", "--write-xmp", db=db)
    assert rc == 1 and err.count(f"{linked} left alone: it is a symbolic link") == 1
    assert linked.is_symlink() and dangling.is_symlink() and not (tmp_path / "nothing-here.xmp").exists()
    assert (elsewhere.read_bytes(), elsewhere.stat().st_mtime_ns) == before


def test_usual_xmp_prefixes_are_written_back_as_such(album, db):
    sidecar = album / "kitchen/coffee.png.xmp"
    sidecar.write_text(RATED)
    rc, err = index(album, "--write-xmp", db=db)
    text = sidecar.read_text()
    assert "wanwu|" in text and "wanwu: sidecar:" not in err
    assert 'xmp:Rating="4"' in text and 'xmpMM:DocumentID="xmp.did:1234"' in text
    assert 'photoshop:DateCreated="2019-07-01"' in text and 'acme:Flag="red"' in text  # an unknown app's own prefix
    assert not re.search(r"\bns\d+:", text), text
    exiftool = shutil.which("exiftool")
    if exiftool is None:
        pytest.skip("exiftool is not installed (apt-get install libimage-exiftool-perl) to read the sidecar back")
    out = subprocess.run(
        [exiftool, "-s3", "-XMP-xmp:Rating", "-XMP-dc:Subject", str(sidecar)], capture_output=True, text=True
    ).stdout.splitlines()
    assert out[0] == "4" and "holiday" in out[1] and "espresso" in out[1]
