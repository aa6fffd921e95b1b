"""``wanwu index``, ``wanwu search``, ``wanwu library`` and ``wanwu tag``: the photo library's
commands (and, through ``people`` and ``similar``, theirs). ``wanwu.cli`` calls ``add_parsers``. Results go to stdout; the progress bar, the
failures and the summary's details to stderr."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import sys
import textwrap
import time
from typing import Any, Iterable

from .. import csv_out, settings
from ..atomic import TEMP_SUFFIX, remove_stale_temps, stale_before
from ..environment import DEFAULT_MAX_FILE_MB
from ..errors import EXIT_DISK_FULL, EXIT_FAILED, EXIT_OK, EXIT_USAGE, ConfigError
from ..install import DISTRIBUTION, pip_install
from ..library import names
from ..library.catalogue import (
    ENV_VAR,
    LibraryBusyError,
    full_disk_reported,
    open_catalogue,
    prune_thumbnails,
    read_snapshot,
    resolve_db_path,
    thumbnails_dir,
    wait_for_writers,
    wanwu_files,
    writer_lock,
)
from ..library.files import MAX_FILE_ENV, json_text
from ..tag_policy import STORED_TOP_K, parse_confidence
from . import people as people_cli
from .args import HelpFormatter, confidence_of, lang_of, non_negative_int, positive_int

EXIT_INTERRUPTED = 130
TAG_BUSY_TIMEOUT_MS = 30_000

SEARCH_FORMATS = ("table", "json", "jsonl", "csv", "paths", "paths0")
LIBRARY_FORMATS = ("table", "json", "paths", "paths0")
TABLE_PAGE = 50  # photos the table shows unless --limit says otherwise; the other formats list all

INDEX_EXAMPLES = f"""\
examples:
  wanwu index ~/Pictures                        # tag every photo once; later runs do only what changed
  wanwu index ~/Pictures --write-xmp            # + photo.jpg.xmp sidecars (digiKam, darktable, Immich)
  wanwu index ~/Pictures --write-xmp --xmp-name stem --lang zh   # photo.xmp (Lightroom), Chinese keywords
  wanwu index ~/Pictures --model resnet18       # re-tags photos tagged by another model
  wanwu index ~/Pictures --force                # re-tag everything
  wanwu index /mnt/archive --ray auto           # classify on the Ray cluster this node belongs to
  wanwu index ~/Pictures --no-faces             # do not look for faces (pip install '{DISTRIBUTION}[faces]' finds them)

The catalogue is $XDG_DATA_HOME/wanwu/library.db unless --db / {ENV_VAR} say otherwise.
Links are never followed out of the folders given, and only regular files are read
(FIFOs, devices and links leading out are skipped and reported; docs/library.md).
Ctrl-C stops within a couple of seconds, keeping what was done; run it again to go on.

exit status: 0 every photo indexed; 1 some files failed (listed on stderr; one that failed
before and is unchanged still counts: `wanwu library --failed` lists them) or the run could
not go on (the error says why; what was committed is kept); 2 usage error; 75 try again later:
another wanwu process is writing the catalogue (nothing was done), or with --ray a worker or
node died (what was classified is kept); {EXIT_DISK_FULL} a disk is full (one line says
which; nothing committed is lost); 130 interrupted (what was done is kept).
"""

SEARCH_EXAMPLES = """\
examples:
  wanwu search dog                              # every dog breed, best match first
  wanwu search 狗 --lang zh                      # the same in Chinese
  wanwu search "golden retriever" --tag-confidence 0.9   # only the surest tags
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
  wanwu library --failed                        # the files that could not be indexed, and why
  wanwu library --export photos.parquet         # every photo with its tags (.jsonl, .csv, .parquet)

exit status: 0 done (with --failed: no file failed); 1 no usable catalogue, the export failed, or
with --failed some file did; 2 usage error.
"""

TAG_EXAMPLES = """\
examples:
  wanwu tag ~/Pictures/2024/rex.jpg --add "golden retriever" --remove "tennis ball"
  wanwu tag a.jpg b.jpg --add holiday           # a free keyword (not an ImageNet class)
User tags survive re-indexing and go into the XMP sidecar (with --write-xmp).

exit status: 0 every photo tagged; 1 there is no catalogue (none is made: `wanwu index FOLDER`
makes one), or some photo is not in it or its sidecar could not be written (the others are
tagged); 2 usage error.
"""


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
        settings.add_arguments(p, ("tag_confidence",))
        _min_score_alias(p)


def _min_score_alias(p: argparse.ArgumentParser) -> None:
    """``--min-score``: before the tag policy a per-class score floor, now an old name of --tag-confidence."""
    p.add_argument(
        "--min-score", dest="tag_confidence", type=settings.arg_type(parse_confidence), help=argparse.SUPPRESS
    )


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "index",
        description="Walk photo folders and record every photo's labels in the catalogue. "
        "Only new and changed photos go through the model; moved ones are recognised by content.",
        epilog=INDEX_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="photo folders (recursive) or files")
    _common(p, lang=False, min_score=False)  # --lang, --tag-confidence come with the model options
    _min_score_alias(p)
    p.add_argument("--force", action="store_true", help="re-tag every photo, changed or not")
    p.add_argument("--write-xmp", action="store_true", help="write/merge an XMP sidecar beside each photo")
    p.add_argument(
        "--xmp-name",
        choices=("ext", "stem"),
        default="ext",
        help="sidecar name: ext = photo.jpg.xmp (digiKam, darktable, Immich), stem = photo.xmp (Lightroom)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=settings.DEFAULT_BATCH_SIZE,
        metavar="N",
        help="images per inference call",
    )
    p.add_argument(
        "--max-file-mb",
        type=positive_int,
        default=None,
        metavar="MB",
        help="larger files are not read (a per-file error), and at most this many MB of files are held "
        f"at once [env {MAX_FILE_ENV}; default: {DEFAULT_MAX_FILE_MB}]",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar on stderr")
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=settings.env_value("ray"),
        help="classify on a Ray cluster: auto (the one `ray start` joined here), HOST:PORT, "
        "ray://HOST:10001, or local (a private one-node Ray on 127.0.0.1); photos must be at the "
        f"same path on every node; needs {pip_install('ray')} [env WANWU_RAY] (docs/scale-out.md)",
    )
    p.add_argument(
        "--ray-actors",
        type=positive_int,
        default=None,
        metavar="N",
        help="with --ray: classifier replicas (default: one per CPU of the cluster)",
    )
    people_cli.add_index_arguments(p)
    settings.add_arguments(p.add_argument_group("model options (flags win over WANWU_* variables)"))
    p.set_defaults(func=cmd_index)

    p = sub.add_parser(
        "search",
        description="Find photos by class or group name (English, Chinese, synonyms, wnids), by your own "
        "tags, and by the keywords other apps wrote (XMP sidecars, the photo's own XMP/IPTC).",
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
        type=non_negative_int,
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
        f"(NUL-separated, for xargs -0: safe with any file name); {csv_out.HELP}",
    )
    p.set_defaults(func=cmd_search)

    p = sub.add_parser(
        "library",
        description="Summarise the photo catalogue, or export every photo with its tags.",
        epilog=LIBRARY_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    _common(p)
    p.add_argument(
        "--format",
        "-f",
        choices=LIBRARY_FORMATS,
        default="table",
        help="table, json, or with --failed also paths (one a line) or paths0 (NUL-separated)",
    )
    p.add_argument(
        "--failed",
        action="store_true",
        help="list the files that could not be indexed, with the reasons (they stay listed until fixed)",
    )
    p.add_argument(
        "--export",
        metavar="FILE",
        help=f"write every photo with its tags to FILE.jsonl, .csv or .parquet ({csv_out.HELP})",
    )
    p.set_defaults(func=cmd_library)

    p = sub.add_parser(
        "tag",
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
    p.set_defaults(func=cmd_tag, tag_confidence=None)

    people_cli.add_parser(sub)  # people

    from . import similar as similar_cli

    similar_cli.add_parsers(sub)  # similar, duplicates (issue 22)


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
    from ..library.backend import tagger_name
    from ..models import get_spec
    from ..models.weights import resolve_weights

    return tagger_name(chosen.model, chosen.precision, resolve_weights(get_spec(chosen.model), chosen.weights).sha256)


def cmd_index(args: argparse.Namespace) -> int:
    from ..library.backend import LocalBackend
    from ..library.indexer import Indexer

    chosen = settings.ModelSettings.from_args(args)
    chosen.export_cache_dir()
    if args.ray:
        from ..library.ray_backend import RayBackend, require_ray

        require_ray()  # the install hint before any work
    missing = [p for p in args.paths if not os.path.exists(os.path.expanduser(p))]
    if missing:
        raise ConfigError(f"no such file or folder: {missing[0]}")
    lang = lang_of(args)
    max_file_bytes = _max_file_mb(args) * 1_000_000
    db_path = resolve_db_path(args.db)
    with full_disk_reported(db_path), writer_lock(db_path):
        conn = open_catalogue(db_path)
        finder = people_cli.make_finder(args)  # None: --no-faces, or no faces extra
        face_failures: list[tuple[str, str]] = []
        from ..library.sidecar_writer import SidecarWriter  # the catalogue's search: NumPy

        sidecars = SidecarWriter(conn, lang, chosen.tag_confidence, args.xmp_name) if args.write_xmp else None
        stored_k = max(chosen.top_k, STORED_TOP_K)  # enough to recompute the tag policy without the model

        def make_backend() -> LocalBackend | RayBackend:
            if args.ray:  # only the classify step moves to the cluster
                return RayBackend(
                    args.ray, stored_k, chosen.classifier_kwargs(), actors=args.ray_actors, faces=finder is not None
                )
            from ..pipeline import Classifier

            kwargs = chosen.classifier_kwargs()
            if kwargs["threads"] is None:  # one intra-op thread, one forward pass per core (LocalBackend)
                kwargs["threads"] = 1
            clf = Classifier(**kwargs)
            return LocalBackend(clf, stored_k, batch_size=args.batch_size, max_file_bytes=max_file_bytes, faces=finder)

        bar_on = (not args.quiet and sys.stderr.isatty()) or settings.env_value("progress")
        bar = _Bar(enabled=bar_on)
        exclude = wanwu_files(db_path) | {str(thumbnails_dir(db_path))}
        indexer = Indexer(
            conn,
            _tagger_for(chosen),
            make_backend,
            force=args.force,
            exclude=exclude,
            on_written=sidecars,
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
            started = time.time()
            summary = indexer.run(args.paths)
            if finder is not None and not indexer.stopping:  # with --ray, every photo's faces are found here
                face_failures, with_faces = people_cli.index_faces(
                    conn,
                    finder,
                    args.paths,
                    progress=bar_on,
                    stopping=lambda: indexer.stopping,
                    since=started,
                    looked=summary.classified > summary.failed,
                )
                if sidecars is not None:  # their sidecars were written before their faces were known
                    for photo_id in with_faces:
                        sidecars(photo_id)
            if sidecars is not None and not indexer.stopping:
                sidecars.refresh()  # a changed --tag-confidence or user tag rewrites, without the model
            stale = remove_stale_temps(sorted(indexer.folders), stale_before(), suffix=".xmp" + TEMP_SUFFIX)
            pruned = 0 if summary.interrupted else prune_thumbnails(conn, db_path)
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
            conn.close()
    for path, error in summary.failures:
        print(f"wanwu: failed: {error}" if path in error else f"wanwu: failed: {path}: {error}", file=sys.stderr)
    if summary.still_failing:
        print(
            f"wanwu: {summary.still_failing} file(s) still failing, unchanged since an earlier run "
            "(retried when changed; `wanwu library --failed` lists them)",
            file=sys.stderr,
        )
    for path, line in summary.sidecar_problems:
        if sidecars is None or path not in sidecars.problems:  # else said once below, by the writer
            print(f"wanwu: sidecar: {line}", file=sys.stderr)
    for line in summary.skipped.lines():
        print(f"wanwu: {line}", file=sys.stderr)
    xmp_problems = list(sidecars.problems.values()) if sidecars is not None else []
    for line in xmp_problems:
        print(f"wanwu: sidecar: {line}", file=sys.stderr)
    if stale:
        print(f"wanwu: removed {len(stale)} temporary sidecar file(s) left by an interrupted run", file=sys.stderr)
    for path, error in face_failures:
        print(f"wanwu: faces: {error}" if path in error else f"wanwu: faces: {path}: {error}", file=sys.stderr)
    if pruned:
        print(f"wanwu: removed {pruned} cached thumbnail(s) of photos no longer in the catalogue", file=sys.stderr)
    if sidecars is not None:
        print(f"wanwu: {sidecars.summary()}", file=sys.stderr)
    if args.json:
        written = {"sidecars": sidecars.counts()} if sidecars is not None else {}
        info = {**summary.to_dict(), **written, "catalogue": str(db_path)}
        print(json_text(json.dumps(info, ensure_ascii=False, indent=2)))
    else:
        state = "interrupted after" if summary.interrupted else "indexed"
        print(f"{state}: {summary.line()}")
        print(f"catalogue: {db_path}")
    if summary.interrupted:
        print("wanwu: interrupted; run the same command again to go on", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILED if summary.failed or xmp_problems else EXIT_OK


def _max_file_mb(args: argparse.Namespace) -> int:
    """--max-file-mb, else WANWU_MAX_FILE_MB, else the default."""
    if args.max_file_mb is not None:
        return args.max_file_mb
    return settings.env_value("max_file_mb")


# --- search / library / tag ----------------------------------------------------------------
def cmd_search(args: argparse.Namespace) -> int:
    from ..library.search import search

    lang = lang_of(args)
    limit = args.limit if args.limit is not None else (TABLE_PAGE if args.format == "table" else None)
    conn = open_catalogue(args.db, readonly=True)
    try:
        # one read transaction: every photo listed comes from the same snapshot, even while
        # `wanwu index` commits (with limit=None search streams the matches 1000 at a time)
        read_snapshot(conn)
        page = search(conn, args.query, lang=lang, confidence=confidence_of(args), limit=limit, offset=args.offset)
        if args.query.strip() and not page.wnids:
            print(
                f"wanwu: {args.query!r} names no class or group; searching your own tags and people's names only",
                file=sys.stderr,
            )
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
                ("\n" if n == 0 else ",\n")
                + json_text(textwrap.indent(json.dumps(item, ensure_ascii=False, indent=2), "  "))
            )
            n += 1
        out.write("\n]\n" if n else "]\n")
    elif fmt == "jsonl":
        for item in items:
            out.write(json_text(json.dumps(item, ensure_ascii=False)) + "\n")
            n += 1
    elif fmt == "csv":
        w = csv_out.writer(out, ["id", "path", "rank", "wnid", "label", "score"])
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
    from ..library.export import export, summary
    from ..library.summary_text import summary_lines

    lang = lang_of(args)
    db_path = resolve_db_path(args.db)
    if args.format in ("paths", "paths0") and not args.failed:
        print(f"wanwu library: --format {args.format} lists files: use it with --failed", file=sys.stderr)
        return EXIT_USAGE
    conn = open_catalogue(db_path, readonly=True)
    try:
        if args.failed:
            return _list_failed(conn, args.format)
        if args.export:
            try:
                n = export(conn, args.export, lang, confidence_of(args))
            except OSError as exc:
                print(f"wanwu: error: cannot write {args.export}: {exc.strerror or exc}", file=sys.stderr)
                return EXIT_FAILED
            print(f"wanwu: wrote {n} photo(s) to {args.export}", file=sys.stderr)
            return EXIT_OK
        info = summary(conn, str(db_path), lang, confidence_of(args))
    finally:
        conn.close()
    if args.format == "json":
        print(json_text(json.dumps(info, ensure_ascii=False, indent=2)))
        return EXIT_OK
    for line in summary_lines(info, _size(info["photo_bytes"]), _size(info["catalogue_bytes"]), lang):
        print(line)
    return EXIT_OK


def _list_failed(conn: sqlite3.Connection, fmt: str) -> int:
    """``wanwu library --failed``: every file that could not be indexed, with the reason."""
    from ..library.export import failed_photos

    rows = failed_photos(conn)
    if fmt == "json":
        print(json_text(json.dumps(rows, ensure_ascii=False, indent=2)))
    elif fmt in ("paths", "paths0"):
        _write_matches(rows, fmt)
    else:
        for r in rows:  # as `wanwu index` said it: the reason, naming the file
            sys.stdout.write((r["error"] if r["path"] in r["error"] else f"{r['path']}: {r['error']}") + "\n")
        print(f"{len(rows)} file(s) failed", file=sys.stderr)
    return EXIT_FAILED if rows else EXIT_OK


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def cmd_tag(args: argparse.Namespace) -> int:
    from ..library.sidecar_writer import SidecarWriter
    from ..library.usertags import apply

    if not args.add and not args.remove:
        print("wanwu tag: give --add LABEL and/or --remove LABEL", file=sys.stderr)
        return EXIT_USAGE
    lang = lang_of(args)
    db_path = resolve_db_path(args.db)
    failed = 0
    with full_disk_reported(db_path):
        conn = open_catalogue(db_path, create=False)  # tagging never makes an empty catalogue
        # the user's edit waits for a running `wanwu index` to finish its current batch (it holds
        # the write lock for milliseconds at a time); 30 s covers a checkpoint on a slow disk
        wait_for_writers(conn, TAG_BUSY_TIMEOUT_MS)
        try:
            sidecars = SidecarWriter(conn, lang, confidence_of(args), args.xmp_name) if args.write_xmp else None
            for path in args.paths:
                try:
                    outcome = apply(conn, os.path.abspath(os.path.expanduser(path)), args.add, args.remove, lang)
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise
                    raise LibraryBusyError(
                        f"{path}: the catalogue {db_path} stayed locked by another writer for "
                        f"{TAG_BUSY_TIMEOUT_MS // 1000} s; nothing was changed for this photo, try again"
                    ) from None
                if not outcome.ok:
                    failed += 1
                    print(f"wanwu: {path}: {outcome.message}", file=sys.stderr)
                    continue
                print(f"{outcome.path}: {outcome.message}", flush=True)
                if sidecars is not None and outcome.photo_id is not None:
                    sidecars(outcome.photo_id)
            for line in sidecars.problems.values() if sidecars is not None else ():
                failed += 1
                print(f"wanwu: sidecar: {line}", file=sys.stderr)
        finally:
            conn.close()
    return EXIT_FAILED if failed else EXIT_OK
