"""``SidecarWriter``: the sidecars of catalogued photos for ``wanwu index`` / ``wanwu tag`` /
``wanwu people`` (``--write-xmp``), from the catalogue's tags and face regions, written with
``xmp.write_sidecar`` (which only knows sidecars, never the catalogue)."""

from __future__ import annotations

import os
import sqlite3
from collections import Counter

from ..errors import SidecarError
from .search import photos_by_id
from .xmp import MERGED, NEW, UP_TO_DATE, keywords_for, sidecar_stamp, write_sidecar
from .xmp_regions import regions_for


class SidecarWriter:
    """Writes the sidecars of catalogued photos for ``wanwu index`` / ``wanwu tag``
    (``--write-xmp``), after their rows are committed. A photo that failed gets none; each
    problem is kept once per photo (``problems``); once a disk is full, no more sidecars are
    tried on it in this run."""

    def __init__(self, conn: sqlite3.Connection, lang: str, confidence: float | None, naming: str = "ext"):
        self.conn, self.lang, self.confidence, self.naming = conn, lang, confidence, naming
        self.problems: dict[str, str] = {}  # photo path -> the one line about it
        self._full_disks: set[int] = set()
        self._done: set[int] = set()  # photos whose sidecar this run already brought up to date
        self.outcomes: dict[int, str] = {}  # photo id -> what its sidecar write did first (``counts``)

    def __call__(self, photo_id: int) -> None:
        row = self.conn.execute(
            "SELECT path, error_code, sidecar_stamp FROM photos WHERE id = ?", (photo_id,)
        ).fetchone()
        if row is None or row["error_code"] is not None or row["path"] in self.problems:
            return
        path = row["path"]
        if self._full_disks and _device(path) in self._full_disks:
            return
        self._done.add(photo_id)
        for p in photos_by_id(self.conn, [photo_id], self.lang, self.confidence):
            try:
                regions = regions_for(self.conn, photo_id)  # MWG face regions
                before = sidecar_stamp(path)
                done = write_sidecar(path, keywords_for(p["tags"], self.lang), self.naming, regions)
                if done in (NEW, MERGED) and before == (row["sidecar_stamp"] or ""):
                    self._keep_read(photo_id, path)
                if done is not None and self.outcomes.get(photo_id, UP_TO_DATE) == UP_TO_DATE:
                    self.outcomes[photo_id] = done
            except SidecarError as exc:
                message = str(exc)
                if exc.disk_full:
                    self._full_disks.add(_device(path))
                    message += "; no more sidecars are written on that disk in this run"
                self.problems[path] = message

    def _keep_read(self, photo_id: int, path: str) -> None:
        """The sidecar's other keywords were read before wanwu rewrote only its own: its new stamp
        is recorded, so the next ``wanwu index`` does not read it again (if the catalogue is
        busy, it does: no harm)."""
        try:
            self.conn.execute("UPDATE photos SET sidecar_stamp = ? WHERE id = ?", (sidecar_stamp(path), photo_id))
        except sqlite3.OperationalError:
            pass

    def counts(self) -> dict[str, int]:
        """Sidecars written in this run: new, merged, up to date, not written (``problems``)."""
        found = Counter(self.outcomes.values())
        return {
            "new": found[NEW],
            "merged": found[MERGED],
            "up_to_date": found[UP_TO_DATE],
            "not_written": len(self.problems),
        }

    def summary(self) -> str:
        """The index summary's line about them."""
        n = self.counts()
        skipped = n["up_to_date"] + n["not_written"]
        return (
            f"sidecars: {n['new']} new, {n['merged']} merged, {skipped} skipped "
            f"({n['up_to_date']} up to date, {n['not_written']} not written)"
        )

    def refresh(self) -> None:
        """With --write-xmp on an already indexed tree: every photo's sidecar brought up to date
        from the catalogue, without the model (missing ones made when there is something to say;
        a changed --tag-confidence or user tag rewrites; an unchanged one is left alone). Photos
        this run already wrote are not read again."""
        rows = self.conn.execute("SELECT id, path FROM photos WHERE error_code IS NULL").fetchall()
        for row in rows:
            if row["id"] not in self._done and os.path.exists(row["path"]):
                self(row["id"])


def _device(path: str) -> int:
    try:
        return os.stat(os.path.dirname(path) or ".").st_dev
    except OSError:
        return -1
