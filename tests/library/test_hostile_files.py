"""The library under hostile folders (issue 24): a photo swapped for a link is never served by
a real server, links never lead the walker out of the indexed folders, a PNG bomb and huge or
endless files cannot fill memory, a FIFO cannot hang indexing, a file name that is not UTF-8
is indexed and printed as it is, a linked --db takes the same writer lock, and ids past
SQLite's integers are a 422."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import pytest
from album_tree import LAYOUT

from wanwu.errors import EXIT_RETRY
from wanwu.library import catalogue
from wanwu.library.backend import LocalBackend
from wanwu.library.catalogue import LibraryBusyError, open_catalogue, writer_lock
from wanwu.library.walker import walk
from wanwu.walk import SkipReport

HOST = "127.0.0.1"
VISIBLE = [rel for rel in LAYOUT if not rel.startswith(".")]


def wanwu(*args, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wanwu.cli", *map(os.fsdecode, args)], capture_output=True, timeout=timeout, **kw
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# -- 1. serving: a real server, a photo swapped for a link ------------------------------------
@pytest.fixture
def served(album, index, tmp_path):
    """The album indexed, and a real ``wanwu serve --library`` on 127.0.0.1: (album, url)."""
    index([album])
    port = _free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wanwu.cli", "serve", "--host", HOST, "--port", str(port)]
            + ["--library", str(index.db), "--log-level", "warning"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if _get(url + "/v2/health/ready")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield album, url
    finally:
        proc.terminate()
        proc.wait(20)


def _ids(url: str) -> dict[str, int]:
    items = json.loads(_get(url + "/api/v1/library/search?limit=200")[1])["items"]
    return {os.path.basename(i["path"]): i["id"] for i in items}


def test_a_photo_swapped_for_a_link_is_never_served(served, tmp_path):
    album, url = served
    ids = _ids(url)
    coffee = album / "kitchen/coffee.png"
    status, body = _get(f"{url}/api/v1/library/photos/{ids['coffee.png']}/image")
    assert status == 200 and body == coffee.read_bytes()

    secret = tmp_path / "secret.png"  # outside the library: a file of the server's
    secret.write_bytes(b"TOP SECRET " * 100)
    coffee.unlink()
    coffee.symlink_to(secret)
    for what in ("image", "thumbnail"):
        status, body = _get(f"{url}/api/v1/library/photos/{ids['coffee.png']}/{what}")
        assert status == 404 and b"TOP SECRET" not in body, (what, status, body[:200])
        assert json.loads(body)["error"]["code"] == "photo_not_served"

    # inside the library, but another photo: not the catalogued content
    rocket = album / "space/rocket.jpg"
    rocket.unlink()
    rocket.symlink_to(album / "people/grace_hopper.jpg")
    status, body = _get(f"{url}/api/v1/library/photos/{ids['rocket.jpg']}/image")
    assert status == 410 and json.loads(body)["error"]["code"] == "photo_changed"

    # a folder swapped for a link leading out
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(album / "cats/chelsea.png", outside / "chelsea.png")
    shutil.rmtree(album / "cats")
    (album / "cats").symlink_to(outside)
    assert _get(f"{url}/api/v1/library/photos/{ids['chelsea.png']}/image")[0] == 404

    # a FIFO in a photo's place: refused at once, never opened for reading
    flower = album / "travel/flower.jpg"
    flower.unlink()
    os.mkfifo(flower)
    assert _get(f"{url}/api/v1/library/photos/{ids['flower.jpg']}/image")[0] == 404

    # the same content touched (other mtime): still the photo, served
    china = album / "travel/2019/summer/china.jpg"
    os.utime(china, (1, 1))
    status, body = _get(f"{url}/api/v1/library/photos/{ids['china.jpg']}/image")
    assert status == 200 and body == china.read_bytes()


def test_roots_are_recorded_and_backfilled_for_an_older_catalogue(tmp_path, album, index):
    index([album])
    conn = open_catalogue(index.db)
    assert catalogue.catalogue_roots(conn) == (os.path.realpath(album),)
    conn.close()

    old = tmp_path / "v1.db"  # a catalogue made before roots were recorded
    conn = sqlite3.connect(old)
    conn.executescript(catalogue.MIGRATIONS[0] + "; PRAGMA user_version = 1;")
    for rel in ("a/x.jpg", "a/b/y.jpg", "c/z.jpg"):
        conn.execute(
            "INSERT INTO photos (path, size, mtime_ns, indexed_at) VALUES (?, 1, 1, 0)", (str(tmp_path / rel),)
        )
    conn.commit()
    conn.close()
    conn = open_catalogue(old)
    assert sorted(catalogue.catalogue_roots(conn)) == [str(tmp_path / "a"), str(tmp_path / "c")]
    conn.close()


# -- 2. what the walker follows -----------------------------------------------------------------
def test_links_never_lead_the_walk_out_of_the_indexed_folders(tmp_path, photos):
    root, outside = tmp_path / "lib", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    shutil.copy(photos["chelsea.png"], root / "a.png")
    shutil.copy(photos["coffee.png"], root / "sub/b.png")
    shutil.copy(photos["rocket.jpg"], outside / "private.jpg")
    (root / "out.jpg").symlink_to(outside / "private.jpg")  # a photo link leading out
    (root / "zero.jpg").symlink_to("/dev/zero")  # leading out, and endless
    (root / "outdir").symlink_to(outside)  # a folder link leading out
    (root / "in.png").symlink_to(root / "sub/b.png")  # a photo link inside: followed
    (root / "indir").symlink_to(root / "sub")  # a folder link inside: not followed (no loops)
    os.mkfifo(root / "fifo.jpg")

    report = SkipReport()
    found = {os.path.relpath(e.path, root) for e in walk([root], report=report)}
    assert found == {"a.png", "in.png", "sub/b.png"}
    assert sorted(p.name for p in report.outside) == ["out.jpg", "outdir", "zero.jpg"]
    assert [(p.name, kind) for p, kind in report.special] == [("fifo.jpg", "FIFO")]
    assert [p.name for p in report.linked_folders] == ["indir"]
    lines = report.lines()
    assert sum("leading out of the indexed folders" in line for line in lines) == 1  # reported once
    assert any("fifo.jpg: FIFO" in line and "never opened" in line for line in lines)

    # a file named directly is the user's choice: followed wherever it leads
    assert [e.path for e in walk([root / "out.jpg"])] == [str(root / "out.jpg")]


def test_index_skips_links_leading_out_and_reports_them(tmp_path, photos, index):
    root, outside = tmp_path / "lib", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    shutil.copy(photos["chelsea.png"], root / "a.png")
    shutil.copy(photos["rocket.jpg"], outside / "private.jpg")
    (root / "out.jpg").symlink_to(outside / "private.jpg")
    (root / "in.png").symlink_to(root / "a.png")
    summary, _ = index([root])
    conn = open_catalogue(index.db, readonly=True)
    paths = {os.path.basename(r[0]) for r in conn.execute("SELECT path FROM photos")}
    conn.close()
    assert paths == {"a.png", "in.png"}
    assert summary.skipped.outside == [root / "out.jpg"]


# -- 3. a PNG bomb under a memory ceiling -------------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(side: int = 60000) -> bytes:
    """A real ``side`` x ``side`` greyscale PNG of zeros (3.6 GB of pixels in ~3.5 MB): one fully
    flushed deflate block of 100 zero rows, repeated; decoding it writes every pixel."""
    rows = 100
    raw = b"\0" * ((side + 1) * rows)  # a filter byte and the row, per row
    comp = zlib.compressobj(9)
    first = comp.compress(raw) + comp.flush(zlib.Z_FULL_FLUSH)  # with the zlib header
    unit = comp.compress(raw) + comp.flush(zlib.Z_FULL_FLUSH)
    adler = (((side + 1) * side % 65521) << 16) | 1  # Adler-32 of that many zeros
    last = b"\x01\x00\x00\xff\xff" + struct.pack(">I", adler)  # an empty final stored block
    idat = first + unit * (side // rows - 1) + last
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


PEAK_RUN = textwrap.dedent("""
    import resource, sys
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from wanwu.cli import main
    status = main(sys.argv[2:])
    print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
    sys.exit(status)
""")


def _run_with_ceiling(ceiling_gb: float, *argv) -> tuple[subprocess.CompletedProcess, float]:
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_RUN, str(int(ceiling_gb * 2**30)), *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    peak = next((int(line.split()[1]) / 2**20 for line in proc.stderr.splitlines() if line.startswith("PEAK_KB")), -1.0)
    return proc, peak


def test_a_png_bomb_is_refused_from_its_header_before_exif(tmp_path, photos):
    root = tmp_path / "lib"
    root.mkdir()
    (root / "bomb.png").write_bytes(png_bomb())
    assert (root / "bomb.png").stat().st_size < 8_000_000
    shutil.copy(photos["chelsea.png"], root / "cat.png")
    shutil.copy(photos["rocket.jpg"], root / "rocket.jpg")
    db = tmp_path / "library.db"
    # 8 GB of address space: room for the runtime's reservations, not for runaway growth
    proc, peak_gb = _run_with_ceiling(8, "index", root, "--db", db, "--json", "-q")
    print(f"\nwanwu index with a 60000x60000 PNG bomb: peak RSS {peak_gb:.2f} GB")
    assert proc.returncode == 1, proc.stderr  # the bomb is a failed file; the run finished
    summary = json.loads(proc.stdout)
    assert summary["new"] == 2 and summary["failed"] == 1
    assert "bomb.png is 60000x60000" in summary["failures"][0]["error"]
    assert peak_gb < 1.5, f"peak RSS {peak_gb:.2f} GB: the bomb's pixels were allocated"


# -- 4. bytes in flight, huge files, only regular files -----------------------------------------
def test_files_over_the_size_limit_are_a_per_file_error_and_never_read(tmp_path, photos):
    root = tmp_path / "lib"
    root.mkdir()
    shutil.copy(photos["chelsea.png"], root / "cat.png")
    with open(root / "huge.tif", "wb") as f:  # sparse: 3 GB that take no disk
        f.truncate(3_000_000_000)
    try:
        os.mknod(root / "zero.jpg", 0o644 | 0o020000, os.makedev(1, 5))  # a /dev/zero inside the folder
    except PermissionError:
        pass
    db = tmp_path / "library.db"
    proc, peak_gb = _run_with_ceiling(8, "index", root, "--db", db, "--json", "-q", "--max-file-mb", "1000")
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["new"] == 1 and summary["failed"] == 1
    assert "huge.tif is 3000 MB, over the limit of 1000 MB per file" in summary["failures"][0]["error"]
    assert "--max-file-mb" in summary["failures"][0]["error"]
    if (root / "zero.jpg").exists():
        assert any("zero.jpg: character device" in line for line in summary["skipped"])
    assert peak_gb < 1.5, peak_gb
    env = {**os.environ, "WANWU_MAX_FILE_MB": "0"}
    assert "WANWU_MAX_FILE_MB" in wanwu("index", root, "--db", db, env=env, text=True).stderr


def test_bytes_in_flight_are_bounded_not_the_file_count(tmp_path, classifier):
    paths = []
    for i in range(6):
        p = tmp_path / f"big{i}.jpg"
        with open(p, "wb") as f:
            f.truncate(60_000_000)  # sparse zeros: read for real, then not an image
        paths.append(str(p))
    backend = LocalBackend(classifier, top_k=1, batch_size=4, threads=2, max_file_bytes=100_000_000)
    peak = 0
    hold = backend.budget.hold

    def watched(n):
        nonlocal peak
        cm = hold(n)

        class Watch:
            def __enter__(self):
                nonlocal peak
                cm.__enter__()
                peak = max(peak, backend.budget.used)

            def __exit__(self, *exc):
                return cm.__exit__(*exc)

        return Watch()

    backend.budget.hold = watched
    try:
        results = list(backend.classify(paths))
    finally:
        backend.close()
    assert len(results) == 6 and all(r.result.error.code == "not_an_image" for r in results)
    assert peak == 60_000_000  # two threads, but never two 60 MB files at once under a 100 MB budget


# -- 5. a FIFO, and Ctrl-C ----------------------------------------------------------------------
def test_a_fifo_named_jpg_is_skipped_and_never_opened(tmp_path, photos):
    root = tmp_path / "lib"
    root.mkdir()
    shutil.copy(photos["chelsea.png"], root / "cat.png")
    os.mkfifo(root / "x.jpg")
    db = tmp_path / "library.db"
    proc = wanwu("index", root, "--db", db, "--json", "-q", timeout=300, text=True)  # hung forever before
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["new"] == 1
    assert "x.jpg: FIFO" in proc.stderr and "never opened" in proc.stderr


def test_a_file_that_becomes_a_fifo_after_the_walk_is_refused_at_once(tmp_path, classifier):
    fifo = tmp_path / "late.jpg"
    os.mkfifo(fifo)
    backend = LocalBackend(classifier, top_k=1)
    out: list = []
    t = threading.Thread(target=lambda: out.extend(backend.classify([str(fifo)])), daemon=True)
    t.start()
    t.join(30)
    if t.is_alive():  # release the blocked open() so the thread ends
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a FIFO blocked")
    backend.close()
    assert out[0].result.error.code == "not_a_regular_file"


def test_ctrl_c_stops_an_index_with_a_fifo_in_the_tree(tmp_path, photos):
    root = tmp_path / "lib"
    sources = sorted(photos.values())
    for i in range(120):
        (root / f"roll{i % 4}").mkdir(parents=True, exist_ok=True)
        shutil.copy(sources[i % len(sources)], root / f"roll{i % 4}" / f"{i:04d}{sources[i % len(sources)].suffix}")
    os.mkfifo(root / "roll0" / "0000a.jpg")  # among the first files read
    db = tmp_path / "library.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wanwu.cli", "index", str(root), "--db", str(db), "--batch-size", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
        if db.exists():
            try:
                conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                done = conn.execute("SELECT count(*) FROM photos").fetchone()[0]
                conn.close()
            except sqlite3.OperationalError:
                continue
            if done >= 4:
                break
    assert proc.poll() is None, f"finished before it could be interrupted: {proc.communicate()}"
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("wanwu index did not stop on Ctrl-C")
    print(f"\nstopped {time.monotonic() - sent:.2f} s after SIGINT")
    assert proc.returncode == 130, err
    assert "Traceback" not in err


# -- 6. a file name that is not UTF-8 -------------------------------------------------------------
def test_a_file_name_that_is_not_utf8_is_indexed_and_printed_as_it_is(tmp_path, photos, app_clients):
    from wanwu.server.config import ServerConfig

    root = tmp_path / "lib"
    root.mkdir()
    bad = os.fsencode(root) + b"/bad\xffcoffee.png"
    shutil.copy(photos["coffee.png"], bad)
    shutil.copy(photos["chelsea.png"], root / "cat.png")
    db = tmp_path / "library.db"
    first = wanwu("index", root, "--db", db, "--json", "-q")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["new"] == 2
    again = wanwu("index", root, "--db", db, "--json", "-q")
    assert json.loads(again.stdout)["unchanged"] == 2  # found under its own name, not new again

    paths = wanwu("search", "espresso", "--db", db, "--format", "paths")
    assert paths.returncode == 0 and paths.stdout == bad + b"\n"  # the name's own bytes
    table = wanwu("search", "espresso", "--db", db)
    assert table.returncode == 0 and bad in table.stdout
    items = json.loads(wanwu("search", "espresso", "--db", db, "--format", "json").stdout)
    assert os.fsencode(items[0]["path"]) == bad  # JSON: a \udcff escape, lossless
    line = wanwu("search", "espresso", "--db", db, "--format", "jsonl").stdout
    assert os.fsencode(json.loads(line)["path"]) == bad
    assert wanwu("library", "--db", db, "--format", "json").returncode == 0
    export = tmp_path / "all.jsonl"
    assert wanwu("library", "--db", db, "--export", export).returncode == 0
    assert {os.fsencode(json.loads(x)["path"]) for x in export.read_text().splitlines()} == {
        bad,
        os.fsencode(root / "cat.png"),
    }

    client = app_clients(ServerConfig.from_env(library=str(db)))
    r = client.get("/api/v1/library/search", params={"q": "espresso"})
    assert r.status_code == 200
    item = r.json()["items"][0]
    assert os.fsencode(item["path"]) == bad
    image = client.get(item["image_url"])
    assert image.status_code == 200 and image.content == Path(os.fsdecode(bad)).read_bytes()


# -- 9. the writer lock follows links -------------------------------------------------------------
def test_a_linked_db_takes_the_same_writer_lock(tmp_path, album):
    real = tmp_path / "real" / "library.db"
    real.parent.mkdir()
    open_catalogue(real).close()
    link = tmp_path / "link.db"
    link.symlink_to(real)
    with writer_lock(real), pytest.raises(LibraryBusyError), writer_lock(link):
        pass
    with writer_lock(link):
        proc = wanwu("index", album, "--db", real, text=True)
    assert proc.returncode == EXIT_RETRY and f"pid {os.getpid()}" in proc.stderr  # busy: try again later


# -- 11. ids and offsets past SQLite's integers ---------------------------------------------------
@pytest.mark.parametrize("value", [2**63, 2**64, 10**30, -1])
def test_huge_or_negative_ids_and_offsets_are_422(album, index, app_clients, value):
    from wanwu.server.config import ServerConfig

    index([album])
    client = app_clients(ServerConfig.from_env(library=str(index.db)))
    for url in (
        f"/api/v1/library/photos/{value}",
        f"/api/v1/library/photos/{value}/thumbnail",
        f"/api/v1/library/photos/{value}/image",
        f"/api/v1/library/search?offset={value}",
        f"/api/v1/library/search?limit={value}",
        f"/api/v1/library/suggest?q=dog&limit={value}",
    ):
        r = client.get(url)
        assert r.status_code == 422, (url, r.status_code, r.text[:200])
    assert client.get(f"/api/v1/library/photos/{2**63 - 1}").status_code == 404
    last = client.get(f"/api/v1/library/search?offset={2**63 - 1}")
    assert last.status_code == 200 and last.json()["items"] == []
