"""``wanwu similar`` and ``wanwu duplicates``: "more like this" and the duplicate finder over
the catalogue's embeddings (``wanwu.library.similar``). Results to stdout, notes to stderr."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..errors import EXIT_FAILED, ConfigError
from ..library.catalogue import ENV_VAR, open_catalogue, resolve_db_path
from ..library.similar import DEFAULT_COUNT, DEFAULT_THRESHOLD
from .args import HelpFormatter, positive_int

SIMILAR_EXAMPLES = """\
examples:
  wanwu similar ~/Pictures/2024/rex.jpg          # the photos most like this one
  wanwu similar 1234 -n 30                      # by catalogue id (from search --format json)
  wanwu similar ~/Downloads/found.jpg --format paths   # a photo outside the collection works too
Similarity is the cosine of the photos' embeddings, 0-1 (1: the same picture).
"""

DUPLICATES_EXAMPLES = f"""\
examples:
  wanwu duplicates                              # exact copies, then near-duplicates, with a keeper each
  wanwu duplicates --threshold 0.9              # stricter: only very close copies
  wanwu duplicates --format json > dupes.json   # to script a clean-up
  wanwu duplicates --format paths | grep -v '^#'   # every grouped photo but the keepers
wanwu never deletes a photo. Near-duplicates are embeddings at cosine >= {DEFAULT_THRESHOLD} (docs/library.md
says how that default was measured).
"""


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, got {value}")
    return value


def add_parsers(sub: Any) -> None:
    db_help = f"the catalogue [env {ENV_VAR}; default: $XDG_DATA_HOME/wanwu/library.db]"
    p = sub.add_parser(
        "similar",
        description="List the catalogue's photos most like PHOTO (a file, in the collection or not) or ID.",
        epilog=SIMILAR_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("photo", metavar="PHOTO|ID", help="a photo file, or a catalogue id")
    p.add_argument("--db", metavar="FILE", help=db_help)
    p.add_argument("-n", type=positive_int, default=DEFAULT_COUNT, metavar="N", help="how many photos to list")
    p.add_argument("--format", "-f", choices=("table", "json", "paths"), default="table")
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser(
        "duplicates",
        description="Group the catalogue's exact copies (same content hash) and, apart from them, its "
        "near-duplicates (resized, re-compressed, cropped, edited copies, bursts). Each group names the "
        "photo to keep: most pixels, then sharpest, then oldest. Nothing is deleted.",
        epilog=DUPLICATES_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--db", metavar="FILE", help=db_help)
    p.add_argument(
        "--threshold",
        type=_threshold,
        default=DEFAULT_THRESHOLD,
        metavar="T",
        help=f"near-duplicates: embedding cosine >= T (default {DEFAULT_THRESHOLD})",
    )
    p.add_argument("--format", "-f", choices=("table", "json", "paths"), default="table")
    p.set_defaults(func=cmd_duplicates)


def _query(conn, key: str, photo: str, n: int) -> tuple[str, list[dict]]:
    """(what was asked, the answer): a catalogued file or id uses its stored embedding; any other
    file is embedded now by the catalogue's model."""
    from ..library.similar import embed_file, embedded_photo_id, index_for, similar_to_id, similar_to_vector

    path = os.path.abspath(os.path.expanduser(photo))
    if os.path.isfile(path):
        photo_id = embedded_photo_id(conn, path)
        if photo_id is not None:
            return path, similar_to_id(conn, key, photo_id, n)
        model, _ = index_for(conn, key)
        print(f"wanwu: {photo} is not in the catalogue: embedding it with {model}", file=sys.stderr)
        return path, similar_to_vector(conn, key, embed_file(path, model), n)
    if photo.isdigit():
        return f"photo {photo}", similar_to_id(conn, key, int(photo), n)
    raise ConfigError(f"no such file, and not a catalogue id: {photo}")


def cmd_similar(args: argparse.Namespace) -> int:
    db_path = resolve_db_path(args.db)
    conn = open_catalogue(db_path, readonly=True)
    try:
        asked, items = _query(conn, str(db_path), args.photo, args.n)
    finally:
        conn.close()
    out = sys.stdout
    if args.format == "json":
        json.dump(items, out, ensure_ascii=False, indent=2)
        out.write("\n")
    elif args.format == "paths":
        out.writelines(i["path"] + "\n" for i in items)
    else:
        for i in items:
            out.write(f"{i['similarity']:.3f}  {i['path']}\n")
        print(f"{len(items)} photo(s) like {asked}", file=sys.stderr)
    return 0 if items else EXIT_FAILED


def cmd_duplicates(args: argparse.Namespace) -> int:
    from ..library.similar import duplicates

    db_path = resolve_db_path(args.db)
    conn = open_catalogue(db_path, readonly=True)
    try:
        found = duplicates(conn, str(db_path), args.threshold)
    finally:
        conn.close()
    if not found["embeddings"]:
        print(
            "wanwu: no embeddings yet: showing exact copies only; run `wanwu index` for near-duplicates",
            file=sys.stderr,
        )
    groups = found["exact"] + found["near"]
    out = sys.stdout
    if args.format == "json":
        json.dump(found, out, ensure_ascii=False, indent=2)
        out.write("\n")
    elif args.format == "paths":
        for n, g in enumerate(groups, 1):
            out.write(f"# {g['kind']} group {n}: keep {_keeper_path(g)} ({g['reason']})\n")
            out.writelines(p["path"] + "\n" for p in g["photos"] if p["id"] != g["keeper"])
    else:
        for g in groups:
            label = "exact copies" if g["kind"] == "exact" else "near-duplicates"
            out.write(f"{label} ({len(g['photos'])}): keep {_keeper_path(g)}  [{g['reason']}]\n")
            for p in g["photos"]:
                mark = "keep" if p["id"] == g["keeper"] else "    "
                sim = f"{p['similarity']:.3f}" if "similarity" in p else "same "
                size = f"{p['width']}x{p['height']}" if p["width"] else "?"
                out.write(f"  {mark} {sim} {size:>11}  {p['path']}\n")
        print(
            f"{len(found['exact'])} group(s) of exact copies, {len(found['near'])} of near-duplicates "
            f"(threshold {args.threshold})",
            file=sys.stderr,
        )
    return 0


def _keeper_path(group: dict) -> str:
    return next(p["path"] for p in group["photos"] if p["id"] == group["keeper"])
