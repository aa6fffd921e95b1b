"""``wanwu library``: what the catalogue holds (summary), and every photo with its tags as
JSON Lines, CSV or Parquet (through pyarrow, the ``wanwu-tagger[parquet]`` extra) — the hand-off to
spreadsheets and data teams. Rows stream from SQLite in pages; nothing holds the whole table."""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Iterator

from .. import csv_out
from ..errors import ConfigError
from ..install import pip_install
from . import names
from .files import json_text, printable_name
from .search import group_counts, label_counts, photos_by_id

EXPORT_FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}
PAGE = 500


def summary(
    conn: sqlite3.Connection, db_path: str, lang: str = "en", confidence: float | None = None, top: int = 10
) -> dict:
    photos, failed, size = conn.execute(
        "SELECT count(*), count(error_code), coalesce(sum(size), 0) FROM photos"
    ).fetchone()
    taggers = {
        r[0]: r[1]
        for r in conn.execute(
            "SELECT tagger, count(*) FROM photos WHERE error_code IS NULL GROUP BY tagger ORDER BY 2 DESC"
        )
    }
    labels = [
        {"wnid": w, "label": names.label(w, lang), "count": n}
        for w, n in label_counts(conn, confidence).most_common(top)
    ]
    db_bytes = sum(os.path.getsize(p) for p in (db_path, db_path + "-wal") if os.path.exists(p))
    return {
        "catalogue": db_path,
        "photos": photos,
        "failed": failed,
        "photo_bytes": size,
        "catalogue_bytes": db_bytes,
        "user_tags": conn.execute("SELECT count(*) FROM user_tags").fetchone()[0],
        "models": taggers,
        "groups": group_counts(conn, lang, confidence, top),
        "labels": labels,
    }


def failed_photos(conn: sqlite3.Connection) -> list[dict]:
    """The files that could not be indexed: ``[{path, code, error}]`` by path. A file stays
    listed until it changes and then indexes (or leaves the folder)."""
    return [
        {"path": r["path"], "code": r["error_code"], "error": r["error"] or ""}
        for r in conn.execute("SELECT path, error_code, error FROM photos WHERE error_code IS NOT NULL ORDER BY path")
    ]


def iter_photos(conn: sqlite3.Connection, lang: str = "en", confidence: float | None = None) -> Iterator[dict]:
    """Every photo (failed ones with their error), in id order, page by page."""
    last = 0
    while True:
        rows = conn.execute(
            "SELECT id, error, tagger, size, sha256 FROM photos WHERE id > ? ORDER BY id LIMIT ?", (last, PAGE)
        ).fetchall()
        if not rows:
            return
        extra = {r["id"]: r for r in rows}
        for p in photos_by_id(conn, [r["id"] for r in rows], lang, confidence):
            r = extra[p["id"]]
            p.update(size=r["size"], sha256=r["sha256"], tagger=r["tagger"], error=r["error"])
            yield p
        last = rows[-1]["id"]


def export(conn: sqlite3.Connection, out_path: str, lang: str = "en", confidence: float | None = None) -> int:
    """Write every photo to ``out_path`` (format from its extension); returns the count."""
    ext = os.path.splitext(out_path)[1].lower()
    fmt = EXPORT_FORMATS.get(ext)
    if fmt is None:
        raise ConfigError(f"--export {out_path}: use a .jsonl, .csv or .parquet file name")
    rows = iter_photos(conn, lang, confidence)
    if fmt == "parquet":
        return _parquet(rows, out_path)
    n = 0
    # a file name that is not UTF-8: its bytes as they are in CSV, a \udcXX escape in JSON
    with open(out_path, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
        if fmt == "jsonl":
            for p in rows:
                f.write(json_text(json.dumps(p, ensure_ascii=False)) + "\n")
                n += 1
            return n
        w = csv_out.writer(
            f,
            [
                "id",
                "path",
                "width",
                "height",
                "taken",
                "camera",
                "latitude",
                "longitude",
                "rank",
                "wnid",
                "label",
                "score",
                "user",
                "error",
                "group",
            ],
        )
        for p in rows:
            n += 1
            place = ["" if p.get(k) is None else p[k] for k in ("latitude", "longitude")]
            base = [p["id"], p["path"], p["width"], p["height"], p["taken"], p["camera"], *place]
            if not p["tags"]:
                w.writerow(base + ["", "", "", "", "", p["error"] or "", ""])
            for rank, t in enumerate(p["tags"], 1):
                w.writerow(
                    base
                    + [
                        rank,
                        t["wnid"] or "",
                        t["label"],
                        "" if t["score"] is None else t["score"],
                        int(bool(t.get("user"))),
                        "",
                        t.get("group") or "",
                    ]
                )
    return n


def _parquet(rows: Iterator[dict], out_path: str) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(f"Parquet export needs pyarrow: {pip_install('parquet')} (or export .jsonl / .csv)") from None
    tag = pa.struct(
        [
            ("wnid", pa.string()),
            ("label", pa.string()),
            ("score", pa.float64()),
            ("user", pa.bool_()),
            ("group", pa.string()),  # a label group's key when the tag is the group, not one class
        ]
    )
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("path", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("taken", pa.string()),
            ("camera", pa.string()),
            ("latitude", pa.float64()),  # EXIF GPS, decimal degrees (south and west negative); null: none
            ("longitude", pa.float64()),
            ("size", pa.int64()),
            ("sha256", pa.string()),
            ("tagger", pa.string()),
            ("error", pa.string()),
            ("tags", pa.list_(tag)),
        ]
    )
    n = 0
    with pq.ParquetWriter(out_path, schema) as writer:
        chunk: list[dict] = []
        for p in rows:
            p["tags"] = [{**t, "user": bool(t.get("user")), "group": t.get("group")} for t in p["tags"]]
            p["path"] = printable_name(p["path"])  # Arrow strings are UTF-8: \xff for a byte that is not
            chunk.append({k: p.get(k) for k in schema.names})
            if len(chunk) >= PAGE:
                writer.write_table(pa.Table.from_pylist(chunk, schema))
                n += len(chunk)
                chunk = []
        if chunk or n == 0:
            writer.write_table(pa.Table.from_pylist(chunk, schema))
            n += len(chunk)
    return n
