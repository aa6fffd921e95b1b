"""``wanwu tag``: the user's own corrections. ``add`` records a tag (an ImageNet class when the
name names exactly one, else a free keyword); ``remove`` hides the model's tags that the name
names (or drops a tag the user added). They live in ``user_tags``, which indexing never
touches, so they survive re-indexing, moves and re-tagging with another model."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from . import names
from .catalogue import transaction
from .files import db_text


@dataclass
class TagOutcome:
    path: str
    photo_id: int | None
    message: str  # what happened, or why nothing did

    @property
    def ok(self) -> bool:
        return self.photo_id is not None


# what ``apply`` says, in the language of the rest of its line (issue 26 item 18: "+loggerhead
# -黄道蟹 (no such tag)" mixed two)
SAYS = {
    "en": {
        "no_such_tag": " (no such tag)",
        "not_catalogued": "not in the catalogue (run `wanwu index` on its folder first)",
    },
    "zh": {"no_such_tag": "（没有这个标签）", "not_catalogued": "不在相册中（请先对它的文件夹运行 `wanwu index`）"},
}


def _shown(name: str, wnid: str | None, lang: str) -> str:
    """A tag as the confirmation shows it: a class in ``lang``, a free keyword as typed."""
    return names.label(wnid, lang) if wnid else name


def _class_of(name: str) -> str | None:
    wnids = names.find_wnids(name)
    return wnids[0] if len(wnids) == 1 else None


def apply(conn: sqlite3.Connection, path: str, add: list[str], remove: list[str], lang: str = "en") -> TagOutcome:
    """Record the tags for the photo at ``path`` (absolute) in one transaction: every change or
    none; the outcome's message names classes in ``lang``. Names are looked up first, so the
    write lock is held for the SQL only; while ``wanwu index`` runs, this waits for its current batch (milliseconds: the indexer holds the
    write lock only to write), up to the connection's busy timeout."""
    removing = [(name, set(names.find_wnids(name)), _class_of(name)) for name in (n.strip() for n in remove)]
    adding = []
    for name in (n.strip() for n in add):
        if name:
            wnid = _class_of(name)
            adding.append((name, wnid, names.label(wnid) if wnid else name))
    rejected_labels = {w: names.label(w) for _, wnids, _ in removing for w in wnids}
    says = SAYS.get(lang, SAYS["en"])
    done: list[str] = []
    with transaction(conn):
        row = conn.execute("SELECT id FROM photos WHERE path = CAST(? AS TEXT)", (db_text(path),)).fetchone()
        if row is None:
            return TagOutcome(path, None, says["not_catalogued"])
        pid = row["id"]
        for name, wnids, named_class in removing:
            dropped = conn.execute(  # by its name, or by the class a name or wnid names (金毛, n02099601)
                "DELETE FROM user_tags WHERE photo_id = ? AND (lower(name) = lower(?) OR wnid = ?) AND removed = 0",
                (pid, name, named_class),
            ).rowcount
            hits = [r[0] for r in conn.execute("SELECT wnid FROM tags WHERE photo_id = ?", (pid,)) if r[0] in wnids]
            for wnid in hits:
                conn.execute(
                    "INSERT INTO user_tags (photo_id, name, wnid, removed) VALUES (?, ?, ?, 1) "
                    "ON CONFLICT(photo_id, name) DO UPDATE SET removed = 1, wnid = excluded.wnid",
                    (pid, rejected_labels[wnid], wnid),
                )
            shown = _shown(name, named_class, lang)
            done.append(f"-{shown}" if hits or dropped else f"-{shown}{says['no_such_tag']}")
        for name, wnid, label in adding:
            conn.execute(
                "DELETE FROM user_tags WHERE photo_id = ? AND removed = 1 AND (wnid = ? OR lower(name) = lower(?))",
                (pid, wnid, name),
            )
            conn.execute(
                "INSERT INTO user_tags (photo_id, name, wnid, removed) VALUES (?, ?, ?, 0) "
                "ON CONFLICT(photo_id, name) DO UPDATE SET removed = 0, wnid = excluded.wnid",
                (pid, label, wnid),
            )
            done.append(f"+{_shown(name, wnid, lang)}")
    return TagOutcome(path, pid, " ".join(done))
