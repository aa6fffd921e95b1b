"""``wanwu index``, ``wanwu search``, ``wanwu library`` and ``wanwu tag``: the photo library's
commands. ``wanwu.cli`` calls ``add_parsers``. Results go to stdout; the progress bar, the
failures and the summary's details to stderr."""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Iterable

from .. import settings
from ..cli_args import HelpFormatter, positive_int
from ..errors import EXIT_FAILED, EXIT_USAGE, ConfigError
from . import names
from .catalogue import ENV_VAR, open_catalogue, resolve_db_path, thumbnails_dir, wanwu_files, writer_lock
from .search import DEFAULT_MIN_SCORE

EXIT_OK = 0
EXIT_INTERRUPTED = 130

SEARCH_FORMATS = ("table", "json", "jsonl", "csv", "paths", "paths0")
TABLE_PAGE = 50  # photos the table shows unless --limit says otherwise; the other formats list all

INDEX_EXAMPLES = f"""\
examples:
  wanwu index ~/Pictures                        # tag every photo once; later runs do only what changed
  wanwu index ~/Pictures --write-xmp            # + photo.jpg.xmp sidecars (digiKam, darktable, Immich)
  wanwu index ~/Pictures --write-xmp --xmp-name stem --lang zh   # photo.xmp (Lightroom), Chinese keywords
  wanwu index ~/Pictures --model resnet18       # re-tags photos tagged by another model
  wanwu index ~/Pictures --force                # re-tag everything
  wanwu index /mnt/archive --ray auto           # classify on the Ray cluster this node belongs to

The catalogue is $XDG_DATA_HOME/wanwu/library.db unless --db / {ENV_VAR} say otherwise.
Ctrl-C stops within a couple of seconds, keeping what was done; run it again to go on.

exit status: 0 every photo indexed; 1 some files failed (listed on stderr) or the run could
not go on (the error says why; what was committed is kept); 2 usage error; 75 try again later:
another wanwu process is writing the catalogue (nothing was done), or with --ray a worker or
node died (what was classified is kept); 130 interrupted (what was done is kept).
"""

SEARCH_EXAMPLES = """\
examples:
  wanwu search dog                              # every dog breed, best match first
  wanwu search 狗 --lang zh                      # the same in Chinese
  wanwu search "golden retriever" --min-score 0.5
  wanwu search cat --format paths0 | xargs -0 cp -t ~/cats/   # every match, any file name
  wanwu search n02123045 --format json
  wanwu search dog --offset 50                  # the table's next page

The table shows the best 50 matches (and says how many more); json, jsonl, csv, paths and
paths0 list every match unless --limit is given.

exit status: 0 some photo matches; 1 none does, or there is no catalogue; 2 usage error.
"""

LIBRARY_EXAMPLES = """\
examples:
  wanwu library                                 # photos, failures, top groups and labels, models
  wanwu library --format json
  wanwu library --export photos.parquet         # every photo with its tags (.jsonl, .csv, .parquet)

exit status: 0 done; 1 no usable catalogue, or the export failed; 2 usage error.
"""

TAG_EXAMPLES = """\
examples:
  wanwu tag ~/Pictures/2024/rex.jpg --add "golden retriever" --remove "tennis ball"
  wanwu tag a.jpg b.jpg --add holiday           # a free keyword (not an ImageNet class)
User tags survive re-indexing and go into the XMP sidecar (with --write-xmp).

exit status: 0 every photo tagged; 1 some photo is not in the catalogue or its sidecar could
not be written (the others are tagged); 2 usage error.
"""


def _score(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _lang_of(args: argparse.Namespace) -> str:
    """--lang, else WANWU_LANG, else the locale's language (as the model settings do)."""
    if getattr(args, "lang", None):
        return args.lang
    env = os.environ.get("WANWU_LANG", "").strip()
    if env:
        try:
            return names.parse_lang(env)
        except ValueError as exc:
            raise ConfigError(f"WANWU_LANG: {exc}") from None
    return names.default_lang()


def _common(p: argparse.ArgumentParser, *, lang: bool = True, min_score: bool = True) -> None:
    p.add_argument(
        "--db", metavar="FILE", help=f"the catalogue [env {ENV_VAR}; default: $XDG_DATA_HOME/wanwu/library.db]"
    )
    if lang:
        p.add_argument(
            "--lang",
            type=settings.arg_type(names.parse_lang),
            default=None,
            help="language of labels: en or zh (default: from the locale)",
        )
    if min_score:
        p.add_argument(
            "--min-score",
            type=_score,
            default=DEFAULT_MIN_SCORE,
            metavar="S",
            help="tags scoring below S (0-1) are kept but not shown, matched or written",
        )


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "index",
        help="tag a photo collection into the catalogue (incremental)",
        description="Walk photo folders and record every photo's labels in the catalogue. "
        "Only new and changed photos go through the model; moved ones are recognised by content.",
        epilog=INDEX_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="photo folders (recursive) or files")
    _common(p, lang=False)  # --lang comes with the model options (the settings table)
    p.add_argument("--force", action="store_true", help="re-tag every photo, changed or not")
    p.add_argument("--write-xmp", action="store_true", help="write/merge an XMP sidecar beside each photo")
    p.add_argument(
        "--xmp-name",
        choices=("ext", "stem"),
        default="ext",
        help="sidecar name: ext = photo.jpg.xmp (digiKam, darktable, Immich), stem = photo.xmp (Lightroom)",
    )
    p.add_argument("--batch-size", type=positive_int, default=8, metavar="N", help="images per inference call")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar on stderr")
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=os.environ.get("WANWU_RAY") or None,
        help="classify on a Ray cluster: auto (the one `ray start` joined here), HOST:PORT, "
        "ray://HOST:10001, or local (a private one-node Ray on 127.0.0.1); photos must be at the "
        "same path on every node; needs pip install 'wanwu[ray]' [env WANWU_RAY] (docs/scale-out.md)",
    )
    p.add_argument(
        "--ray-actors",
        type=positive_int,
        default=None,
        metavar="N",
        help="with --ray: classifier replicas (default: one per CPU of the cluster)",
    )
    settings.add_arguments(p.add_argument_group("model options (flags win over WANWU_* variables)"))
    p.set_defaults(func=cmd_index)

    p = sub.add_parser(
        "search",
        help="find photos in the catalogue by what is in them",
        description="Find photos by class or group name (English, Chinese, synonyms, wnids).",
        epilog=SEARCH_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("query", help="a class or group: dog, 狗, golden retriever, n02099601")
    _common(p)
    p.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"most photos to list (default: {TABLE_PAGE} in the table, every match in the other formats)",
    )
    p.add_argument(
        "--offset",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="skip the first N matches (the table's next page)",
    )
    p.add_argument(
        "--format",
        "-f",
        choices=SEARCH_FORMATS,
        default="table",
        help="table (a page of matches), json, jsonl, csv, paths (one a line) or paths0 "
        "(NUL-separated, for xargs -0: safe with any file name)",
    )
    p.set_defaults(func=cmd_search)

    p = sub.add_parser(
        "library",
        help="what the catalogue holds; export it",
        description="Summarise the photo catalogue, or export every photo with its tags.",
        epilog=LIBRARY_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    _common(p)
    p.add_argument("--format", "-f", choices=("table", "json"), default="table")
    p.add_argument("--export", metavar="FILE", help="write every photo with its tags to FILE.jsonl, .csv or .parquet")
    p.set_defaults(func=cmd_library)

    p = sub.add_parser(
        "tag",
        help="add or remove your own tags on photos",
        description="Record your corrections: tags to add (an ImageNet class or any keyword) "
        "and model tags that are wrong.",
        epilog=TAG_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="photos already in the catalogue")
    _common(p, min_score=False)
    p.add_argument("--add", action="append", default=[], metavar="LABEL", help="tag to add (repeatable)")
    p.add_argument("--remove", action="append", default=[], metavar="LABEL", help="tag to remove (repeatable)")
    p.add_argument("--write-xmp", action="store_true", help="update the photos' XMP sidecars too")
    p.add_argument("--xmp-name", choices=("ext", "stem"), default="ext", help="sidecar name (see `wanwu index`)")
    p.set_defaults(func=cmd_tag, min_score=DEFAULT_MIN_SCORE)


# --- index -------------------------------------------------------------------------------
class _Bar:
    """tqdm on stderr: a counter while walking, then photos classified with rate and ETA."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None

    def scanning(self, seen: int) -> None:
        if self.enabled:
            print(f"\rwanwu: scanning… {seen} files", end="", file=sys.stderr, flush=True)

    def start(self, total: int) -> None:
        if self.enabled:
            from tqdm import tqdm

            print(file=sys.stderr)
            self.bar = tqdm(total=total, unit="photo", file=sys.stderr, desc="classifying", dynamic_ncols=True)

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.enabled:
            print(file=sys.stderr)
        self.enabled = False


def _tagger_for(chosen: settings.ModelSettings) -> str:
    from ..models import get_spec
    from ..models.weights import resolve_weights
    from .backend import tagger_name

    return tagger_name(chosen.model, chosen.precision, resolve_weights(get_spec(chosen.model), chosen.weights).sha256)


def _sidecar_writer(conn, lang: str, min_score: float, naming: str, errors: list[str]) -> Callable[[int], None]:
    from . import xmp
    from .search import photos_by_id

    def write(photo_id: int) -> None:
        for p in photos_by_id(conn, [photo_id], lang, min_score):
            try:
                xmp.write_sidecar(p["path"], xmp.keywords_for(p["tags"], lang), naming)
            except (xmp.SidecarError, OSError) as exc:
                errors.append(str(exc))

    return write


def cmd_index(args: argparse.Namespace) -> int:
    from .backend import LocalBackend
    from .indexer import Indexer

    chosen = settings.ModelSettings.from_args(args)
    chosen.export_cache_dir()
    if args.ray:
        from .ray_backend import RayBackend, require_ray

        require_ray()  # the install hint before any work
    missing = [p for p in args.paths if not os.path.exists(os.path.expanduser(p))]
    if missing:
        raise ConfigError(f"no such file or folder: {missing[0]}")
    lang = _lang_of(args)
    db_path = resolve_db_path(args.db)
    with writer_lock(db_path):
        conn = open_catalogue(db_path)
        xmp_errors: list[str] = []
        on_written = _sidecar_writer(conn, lang, args.min_score, args.xmp_name, xmp_errors) if args.write_xmp else None

        def make_backend() -> LocalBackend | RayBackend:
            if args.ray:  # only the classify step moves to the cluster
                return RayBackend(args.ray, chosen.top_k, chosen.classifier_kwargs(), actors=args.ray_actors)
            from ..pipeline import Classifier

            clf = Classifier(**chosen.classifier_kwargs())
            return LocalBackend(clf, chosen.top_k, batch_size=args.batch_size)

        bar = _Bar(enabled=(not args.quiet and sys.stderr.isatty()) or os.environ.get("WANWU_PROGRESS") == "1")
        exclude = wanwu_files(db_path) | {str(thumbnails_dir(db_path))}
        indexer = Indexer(
            conn,
            _tagger_for(chosen),
            make_backend,
            force=args.force,
            exclude=exclude,
            on_written=on_written,
            progress=bar,
        )
        stop_count = 0

        def on_signal(signum, frame):
            nonlocal stop_count
            stop_count += 1
            if stop_count > 1:
                raise KeyboardInterrupt
            print(
                f"\nwanwu: {signal.Signals(signum).name}: stopping after the current photo, keeping what is "
                "done (again to stop at once)",
                file=sys.stderr,
                flush=True,
            )
            indexer.request_stop()

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            summary = indexer.run(args.paths)
            if on_written is not None and not indexer.stopping:
                _write_missing_sidecars(conn, on_written, args.xmp_name)
            pruned = 0 if summary.interrupted else _prune_thumbnails(conn, db_path)
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
            conn.close()
    for path, error in summary.failures:
        print(f"wanwu: failed: {error}" if path in error else f"wanwu: failed: {path}: {error}", file=sys.stderr)
    for line in summary.skipped.lines():
        print(f"wanwu: {line}", file=sys.stderr)
    for e in xmp_errors:
        print(f"wanwu: sidecar: {e}", file=sys.stderr)
    if pruned:
        print(f"wanwu: removed {pruned} cached thumbnail(s) of photos no longer in the catalogue", file=sys.stderr)
    if args.json:
        print(json.dumps({**summary.to_dict(), "catalogue": str(db_path)}, ensure_ascii=False, indent=2))
    else:
        state = "interrupted after" if summary.interrupted else "indexed"
        print(f"{state}: {summary.line()}")
        print(f"catalogue: {db_path}")
    if summary.interrupted:
        print("wanwu: interrupted; run the same command again to go on", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILED if summary.failed or xmp_errors else EXIT_OK


def _prune_thumbnails(conn, db_path: Path) -> int:
    """Thumbnails of photos gone from the catalogue (deleted, or changed: a new hash) are removed.
    Without a thumbnail cache (the Library view never opened) the catalogue's hashes are not read."""
    from .thumbnails import prune

    cache = thumbnails_dir(db_path)
    if not cache.is_dir():
        return 0
    keep = {row[0] for row in conn.execute("SELECT DISTINCT sha256 FROM photos WHERE sha256 IS NOT NULL")}
    return prune(cache, keep)


def _write_missing_sidecars(conn, write: Callable[[int], None], naming: str) -> None:
    """With --write-xmp on an already indexed tree: photos without a sidecar get one."""
    from .xmp import sidecar_path

    for row in conn.execute("SELECT id, path FROM photos WHERE error_code IS NULL").fetchall():
        if os.path.exists(row["path"]) and not os.path.exists(sidecar_path(row["path"], naming)):
            write(row["id"])


# --- search / library / tag ----------------------------------------------------------------
def cmd_search(args: argparse.Namespace) -> int:
    from .search import search

    lang = _lang_of(args)
    limit = args.limit if args.limit is not None else (TABLE_PAGE if args.format == "table" else None)
    conn = open_catalogue(args.db, readonly=True)
    try:
        # one read transaction: every photo listed comes from the same snapshot, even while
        # `wanwu index` commits (with limit=None search streams the matches 1000 at a time)
        conn.execute("BEGIN")
        page = search(conn, args.query, lang=lang, min_score=args.min_score, limit=limit, offset=args.offset)
        if args.query.strip() and not page.wnids:
            print(f"wanwu: {args.query!r} names no class or group; searching your own tags only", file=sys.stderr)
        shown = _write_matches(page.items, args.format)
    finally:
        conn.close()
    listed = f"{page.total} photo(s) match {args.query!r}"
    more = page.total - args.offset - shown
    if args.format == "table":
        if shown < page.total:
            listed += f"; showing {args.offset + 1}-{args.offset + shown}" if shown else f"; none past {args.offset}"
        if more > 0:
            listed += f"; {more} more: --offset {args.offset + shown} for the next page, --limit {shown + more} for all"
        print(listed, file=sys.stderr)
    elif more > 0:
        print(f"wanwu: {listed}; listed {shown} (--limit {args.limit}), {more} more", file=sys.stderr)
    return EXIT_OK if page.total else EXIT_FAILED


def _write_matches(items: Iterable[dict], fmt: str) -> int:
    """Write ``items`` to stdout as they come in format ``fmt``; returns how many."""
    out = sys.stdout
    n = 0
    if fmt in ("paths", "paths0"):
        # bytes: a name that is not UTF-8 goes out as it is on disk; NUL cannot be in a name
        out.flush()
        end, newline_names = (b"\0" if fmt == "paths0" else b"\n"), 0
        for item in items:
            out.buffer.write(os.fsencode(item["path"]) + end)
            newline_names += "\n" in item["path"]
            n += 1
        out.buffer.flush()
        if newline_names and fmt == "paths":
            print(
                f"wanwu: {newline_names} path(s) above contain a newline and cannot be told apart one per line: "
                "use --format paths0 (and xargs -0)",
                file=sys.stderr,
            )
    elif fmt == "json":  # one JSON list, written as it streams (what json.dump(..., indent=2) writes)
        out.write("[")
        for item in items:
            out.write(
                ("\n" if n == 0 else ",\n") + textwrap.indent(json.dumps(item, ensure_ascii=False, indent=2), "  ")
            )
            n += 1
        out.write("\n]\n" if n else "]\n")
    elif fmt == "jsonl":
        for item in items:
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
            n += 1
    elif fmt == "csv":
        w = csv.writer(out)
        w.writerow(["id", "path", "rank", "wnid", "label", "score"])
        for item in items:
            n += 1
            for rank, t in enumerate(item["tags"], 1):
                w.writerow(
                    [
                        item["id"],
                        item["path"],
                        rank,
                        t["wnid"] or "",
                        t["label"],
                        "" if t["score"] is None else f"{t['score']:.6f}",
                    ]
                )
    else:
        for item in items:
            tags = ", ".join(
                t["label"] + ("" if t["score"] is None else f" {t['score'] * 100:.0f}%") for t in item["tags"][:3]
            )
            out.write(f"{item['path']}\n    {tags}\n")
            n += 1
    return n


def cmd_library(args: argparse.Namespace) -> int:
    from .export import export, summary

    lang = _lang_of(args)
    db_path = resolve_db_path(args.db)
    conn = open_catalogue(db_path, readonly=True)
    try:
        if args.export:
            try:
                n = export(conn, args.export, lang, args.min_score)
            except OSError as exc:
                print(f"wanwu: error: cannot write {args.export}: {exc.strerror or exc}", file=sys.stderr)
                return EXIT_FAILED
            print(f"wanwu: wrote {n} photo(s) to {args.export}", file=sys.stderr)
            return EXIT_OK
        info = summary(conn, str(db_path), lang, args.min_score)
    finally:
        conn.close()
    if args.format == "json":
        print(json.dumps(info, ensure_ascii=False, indent=2))
        return EXIT_OK
    print(f"catalogue   {info['catalogue']} ({_size(info['catalogue_bytes'])})")
    print(
        f"photos      {info['photos']} ({_size(info['photo_bytes'])} on disk), {info['failed']} failed, "
        f"{info['user_tags']} user tag(s)"
    )
    for tagger, n in info["models"].items():
        print(f"model       {tagger}: {n} photo(s)")
    if info["groups"]:
        print("groups      " + ", ".join(f"{g['label']} {g['count']}" for g in info["groups"]))
    if info["labels"]:
        print("labels      " + ", ".join(f"{x['label']} {x['count']}" for x in info["labels"]))
    return EXIT_OK


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def cmd_tag(args: argparse.Namespace) -> int:
    from .usertags import apply

    if not args.add and not args.remove:
        print("wanwu tag: give --add LABEL and/or --remove LABEL", file=sys.stderr)
        return EXIT_USAGE
    lang = _lang_of(args)
    conn = open_catalogue(args.db)
    failed = 0
    try:
        errors: list[str] = []
        write = _sidecar_writer(conn, lang, args.min_score, args.xmp_name, errors) if args.write_xmp else None
        for path in args.paths:
            outcome = apply(conn, os.path.abspath(os.path.expanduser(path)), args.add, args.remove)
            if not outcome.ok:
                failed += 1
                print(f"wanwu: {path}: {outcome.message}", file=sys.stderr)
                continue
            print(f"{outcome.path}: {outcome.message}")
            if write is not None and outcome.photo_id is not None:
                write(outcome.photo_id)
        for e in errors:
            failed += 1
            print(f"wanwu: sidecar: {e}", file=sys.stderr)
    finally:
        conn.close()
    return EXIT_FAILED if failed else EXIT_OK
