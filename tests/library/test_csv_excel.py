"""CSV that Excel reads (issue 26 item 8): every CSV wanwu writes starts with a UTF-8 byte-order
mark, so Excel on Chinese Windows shows 长城 and 旅行, not mojibake."""

from __future__ import annotations

import csv
import io
import time
from contextlib import redirect_stderr, redirect_stdout

from wanwu.cli import main
from wanwu.library.catalogue import open_catalogue, transaction
from wanwu.library.export import export

BOM = b"\xef\xbb\xbf"
PATH = "/照片/旅行 北京/长城.jpg"


def _catalogue(db) -> None:
    conn = open_catalogue(db)
    with transaction(conn):
        pid = conn.execute(
            "INSERT INTO photos (path, size, mtime_ns, tagger, indexed_at) VALUES (?, 1, 1, 't/fp32/x', ?) RETURNING id",
            (PATH, time.time()),
        ).fetchone()[0]
        conn.execute("INSERT INTO user_tags (photo_id, name) VALUES (?, '家人')", (pid,))
    conn.close()


def test_library_export_csv_starts_with_a_bom(tmp_path):
    db, out = tmp_path / "library.db", tmp_path / "photos.csv"
    _catalogue(db)
    conn = open_catalogue(db, readonly=True)
    assert export(conn, str(out)) == 1
    conn.close()
    data = out.read_bytes()
    assert data.startswith(BOM) and not data[3:].startswith(BOM)
    [row] = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
    assert row["id"] == "1" and row["path"] == PATH and row["label"] == "家人"


def test_search_csv_starts_with_a_bom(tmp_path):
    db = tmp_path / "library.db"
    _catalogue(db)
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="")
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        assert main(["search", "家人", "--db", str(db), "--format", "csv"]) == 0
    out.flush()
    data = out.buffer.getvalue()  # type: ignore[attr-defined]
    assert data.startswith(BOM)
    [row] = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
    assert row["id"] == "1" and row["path"] == PATH and row["label"] == "家人"
