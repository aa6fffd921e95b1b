"""``wanwu people`` (list, show, name, merge, forget, --forget-all) and the faces part of
``wanwu index`` (``--no-faces``, the faces pass, clustering). ``wanwu.cli.library`` registers them.
Results go to stdout; progress and the faces summary to stderr."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from .. import settings
from ..errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from ..install import pip_install
from ..library.catalogue import ENV_VAR, open_catalogue, require_catalogue, resolve_db_path, writer_lock
from .args import HelpFormatter, confidence_of, lang_of

FACES_ENV = settings.env_name("faces")  # 0/no/off: like --no-faces

PEOPLE_EXAMPLES = f"""\
examples:
  wanwu people                                  # persons: number or name, faces, photos, a sample photo
  wanwu people show 3                           # person 3's faces (face ids, photos)
  wanwu people name 3 奶奶                       # name person 3; then: wanwu search 奶奶
  wanwu people merge 奶奶 7                      # person 7 is 奶奶 too
  wanwu people forget 7                         # forget person 7 (its faces are never suggested again)
  wanwu people forget face:42                   # forget one face
  wanwu people --forget-all                     # delete every face and person from the catalogue
  wanwu people --format json
  wanwu people name 3 奶奶 --write-xmp           # + the name and face regions in the photos' XMP sidecars

Faces are found by `wanwu index` ({pip_install("faces")}); the catalogue is
$XDG_DATA_HOME/wanwu/library.db unless --db / {ENV_VAR} say otherwise.
"""


# --- wanwu index: the faces part ----------------------------------------------------------
def add_index_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-faces",
        action="store_true",
        help=f"do not look for faces (by default with the faces extra installed) [env {FACES_ENV}=0]",
    )


def make_finder(args: argparse.Namespace) -> Any:
    """The ``FaceFinder`` for ``wanwu index``, or None (--no-faces, or the extra is missing:
    then one line on stderr says how to get it)."""
    from ..faces import INSTALL_HINT, faces_available

    if getattr(args, "no_faces", False) or not settings.env_value("faces"):
        return None
    if not faces_available():
        print(f"wanwu: faces are not looked for: {INSTALL_HINT} (--no-faces hides this line)", file=sys.stderr)
        return None
    from ..faces.detect import FaceFinder

    return FaceFinder()


def index_faces(
    conn,
    finder,
    roots,
    *,
    progress: bool,
    stopping: Callable[[], bool],
    since: float = float("inf"),
    looked: bool = False,
) -> tuple[list[tuple[str, str]], list[int]]:
    """After classifying: photos never looked at for faces get theirs, new faces are grouped
    into persons, and the names other apps gave faces in the sidecars of the photos whose faces
    were found now (or that were indexed at ``since`` or later) name them; one line says so when
    this run looked at a photo for faces (``looked``: classifying did) or made a person. Returns
    the photos that could not be read, and the ids of the photos whose faces changed (their
    sidecars are written again)."""
    from ..library import people

    todo = people.photos_without_faces(conn, roots)
    failures: list[tuple[str, str]] = []
    if todo and not stopping():
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), unit="photo", file=sys.stderr, desc="faces", dynamic_ncols=True)
        try:
            failures = people.find_missing_faces(
                conn, finder, todo, advance=(bar.update if bar is not None else lambda: None), stopping=stopping
            )
        finally:
            if bar is not None:
                bar.close()
    touched = [pid for pid, _ in todo] + people.photos_with_unclustered_faces(conn)
    made = people.cluster_new_faces(conn)
    touched = sorted({*touched, *people.photos_with_faces_indexed_since(conn, since)})
    disagreed = people.names_from_other_apps(conn, touched)
    if disagreed:
        more = f" (and {len(disagreed) - 1} more)" if len(disagreed) > 1 else ""
        print(
            f"wanwu: faces: another app's sidecar names {disagreed[0]}{more}; the names given here are kept",
            file=sys.stderr,
        )
    if looked or todo or made:  # a run that looked at no photo for faces has nothing to say about them
        faces, photos = people.face_counts(conn)
        print(
            f"wanwu: faces: {faces} in {photos} photo(s); {made} new person(s); `wanwu people` lists them",
            file=sys.stderr,
        )
    return failures, touched


# --- wanwu people -------------------------------------------------------------------------
def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "people",
        description="Faces found by `wanwu index` are grouped by person. List the persons, name "
        "one (then `wanwu search NAME` finds their photos), merge two that are one, forget a face "
        "or a person, or delete every face.",
        epilog=PEOPLE_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    _options(p, None, "table")
    _sidecar_options(p, False, "ext")
    p.add_argument(
        "--forget-all", action="store_true", help="delete every face descriptor, box, person and name wanwu stored"
    )
    p.set_defaults(func=cmd_people, action=None)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    a = actions.add_parser("show", help="a person's faces: face id, photo, box")
    a.add_argument("person", help="number or name")
    _options(a)
    a = actions.add_parser("name", help="name (or rename) a person")
    a.add_argument("person", help="number or name")
    a.add_argument("name", help="the name, e.g. 奶奶")
    _options(a)
    _sidecar_options(a)
    a = actions.add_parser("merge", help="two persons are one: the second joins the first")
    a.add_argument("person", help="number or name (kept)")
    a.add_argument("other", help="number or name (merged into the first)")
    _options(a)
    _sidecar_options(a)
    a = actions.add_parser("forget", help="forget a person or a face (face:ID); never suggested again")
    a.add_argument("person", help="number or name of a person, or face:ID")
    _options(a)
    _sidecar_options(a)


def _sidecar_options(
    p: argparse.ArgumentParser, write: Any = argparse.SUPPRESS, naming: Any = argparse.SUPPRESS
) -> None:
    p.add_argument(
        "--write-xmp",
        action="store_true",
        default=write,
        help="update the XMP sidecars of the photos concerned (names, face regions)",
    )
    p.add_argument("--xmp-name", choices=("ext", "stem"), default=naming, help="sidecar name (see `wanwu index`)")


def _options(p: argparse.ArgumentParser, db: Any = argparse.SUPPRESS, fmt: Any = argparse.SUPPRESS) -> None:
    """--db and --format, before or after the ACTION (after it, they win over the ones before)."""
    p.add_argument(
        "--db",
        default=db,
        metavar="FILE",
        help=f"the catalogue [env {ENV_VAR}; default: $XDG_DATA_HOME/wanwu/library.db]",
    )
    p.add_argument("--format", "-f", choices=("table", "json"), default=fmt)


def _table(rows: list[dict]) -> None:
    if not rows:
        from ..faces import INSTALL_HINT, faces_available

        why = "`wanwu index PHOTOS` finds them" if faces_available() else INSTALL_HINT
        print(f"wanwu: no faces in the catalogue yet: {why}", file=sys.stderr)
        return
    print(f"{'person':<12} {'faces':>5} {'photos':>6}  sample")
    for r in rows:
        who = r["name"] or (f"#{r['id']}" if r["id"] is not None else "(unnamed)")
        print(f"{who:<12} {r['faces']:>5} {r['photos']:>6}  {r['sample']}")


def _photos_concerned(conn, args: argparse.Namespace) -> list[int]:
    """The photos whose sidecars change with this action (before it is done)."""
    from ..library import people

    if args.forget_all:
        return people.photos_with_faces(conn)
    return people.photos_of(conn, [args.person] + ([args.other] if args.action == "merge" else []))


def _rewrite_sidecars(conn, args: argparse.Namespace, photo_ids: list[int]) -> int:
    """Write the sidecars of ``photo_ids`` again (names as keywords, face regions)."""
    from ..library.sidecar_writer import SidecarWriter

    sidecars = SidecarWriter(conn, lang_of(args), confidence_of(args), args.xmp_name)
    for pid in photo_ids:
        sidecars(pid)
    errors = list(sidecars.problems.values())
    for e in errors:
        print(f"wanwu: sidecar: {e}", file=sys.stderr)
    print(f"wanwu: updated the sidecars of {len(photo_ids) - len(errors)} photo(s)", file=sys.stderr)
    return EXIT_FAILED if errors else EXIT_OK


def cmd_people(args: argparse.Namespace) -> int:
    from ..library import people

    action = args.action
    db_path = resolve_db_path(args.db)
    if args.forget_all or action in ("name", "merge", "forget"):
        if args.forget_all and action:
            print("wanwu people: --forget-all takes no ACTION", file=sys.stderr)
            return EXIT_USAGE
        require_catalogue(db_path)  # before the lock file: naming people never makes a catalogue
        with writer_lock(db_path):
            conn = open_catalogue(db_path, create=False)
            try:
                affected = _photos_concerned(conn, args) if args.write_xmp else []
                if args.forget_all:
                    n = people.forget_all(conn)
                    print(f"forgot every face: {n} face(s) and their descriptors deleted from {db_path}")
                elif action == "name":
                    pid = people.name(conn, args.person, args.name)
                    print(f"person {pid} is {' '.join(args.name.split())}")
                elif action == "merge":
                    pid = people.merge(conn, args.person, args.other)
                    print(f"merged into person {pid}")
                else:
                    print(people.forget(conn, args.person))
                if affected:
                    return _rewrite_sidecars(conn, args, affected)
            finally:
                conn.close()
        return EXIT_OK
    conn = open_catalogue(db_path, readonly=True)
    try:
        if action == "show":
            rows = people.faces_of(conn, people.person_id(conn, args.person))
            if args.format == "json":
                print(json.dumps(rows, ensure_ascii=False, indent=2))
            else:
                for r in rows:
                    box = " ".join(f"{v:.3f}" for v in r["box"])
                    print(f"face:{r['face']:<6} {r['path']}  [{box}]")
            return EXIT_OK
        rows = people.persons(conn)
    finally:
        conn.close()
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        _table(rows)
    return EXIT_OK if rows else EXIT_FAILED
