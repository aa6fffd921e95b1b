"""``wanwu models --prepare``: build models' cached ONNX files (fp32 graph, int8 model) now, so
that the first ``wanwu classify`` / ``wanwu serve`` with them reads the cache instead of building
(``wanwu.engines.prepare``). stdout: one line per file (or ``--format json``); progress and
problems on stderr. ``prepared`` says, for the listing, what is in the cache already."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from .. import settings
from ..engines import PRECISIONS, EngineSpec, get_engine
from ..errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, WanwuError
from ..paths import display_text, user_path

if TYPE_CHECKING:
    from ..models.spec import ModelSpec

ALL = "all"
# with --prepare only: the settings it reads, besides the model names and --precision
PREPARE_SETTINGS = ("engine", "weights", "cache_dir")
# ... of which the listing reads these too (its `prepared` column)
LISTING_SETTINGS = ("engine", "cache_dir")
# the `prepared` column when it is not a list of precisions
NOT_NEEDED = "n/a"  # the engine runs the weights as they are
UNAVAILABLE = "—"  # no usable weights here: nothing to prepare
UNKNOWN = "?"  # files of the model are cached, but the weights' checksum (their key) is not in the memo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--prepare [MODEL ...]``, ``--precision fp32|int8|all`` and the settings it reads."""
    group = parser.add_argument_group(
        "preparing models ahead (--prepare; --engine and --cache-dir also choose what `prepared` shows)"
    )
    group.add_argument(
        "--prepare",
        nargs="*",
        metavar="MODEL",
        help="build the models' converted files (ONNX graph; int8 model) into the cache now, so their "
        "first classify/serve does not wait; no MODEL: the default model [env WANWU_MODEL]",
    )
    group.add_argument(
        "--precision",
        choices=(*PRECISIONS, ALL),
        help="with --prepare: which files; all = every precision the engine runs "
        f"[env WANWU_PRECISION; default: {settings.DEFAULT_PRECISION}]",
    )
    settings.add_arguments(group, PREPARE_SETTINGS)


def _settings(args: argparse.Namespace) -> settings.ModelSettings:
    everything = args.precision == ALL
    chosen = settings.ModelSettings.from_env(
        engine=args.engine,
        weights=args.weights,
        cache_dir=args.cache_dir,
        precision=settings.DEFAULT_PRECISION if everything else args.precision,
    )
    chosen.export_cache_dir()
    return chosen


def listing_engine(args: argparse.Namespace) -> EngineSpec:
    """The engine whose files the listing's ``prepared`` column looks for, in the cache dir that
    ``--prepare`` would use (``--engine``/``WANWU_ENGINE``, ``--cache-dir``/``WANWU_CACHE_DIR``)."""
    chosen = settings.ModelSettings.from_env(
        engine=args.engine, cache_dir=args.cache_dir, precision=settings.DEFAULT_PRECISION
    )
    chosen.export_cache_dir()
    return get_engine(chosen.engine)


def prepared(spec: ModelSpec, available: bool, engine: EngineSpec) -> list[str] | str:
    """The precisions whose files ``--prepare`` would find already built for ``spec`` and ``engine``
    (the same test: ``is_prepared``), or ``NOT_NEEDED``, ``UNAVAILABLE``, ``UNKNOWN``. Reads no
    weights file: their checksum comes from the memo, or the answer is ``UNKNOWN``."""
    from ..engines.onnx_cache import any_cached
    from ..engines.prepare import prepared_precisions
    from ..models.weights import official_weights_if_hashed

    if not engine.runs_onnx:
        return NOT_NEEDED
    if not available:
        return UNAVAILABLE
    if not any_cached(spec):
        return []
    try:
        weights = official_weights_if_hashed(spec)
    except WanwuError:  # a damaged file: --prepare would refuse it
        return UNAVAILABLE
    if weights is None:
        return UNKNOWN
    return prepared_precisions(spec, weights, engine.precisions)


def cmd_prepare(args: argparse.Namespace) -> int:
    from ..engines.prepare import prepare
    from ..models import get_spec
    from ..models.weights import resolve_weights

    chosen = _settings(args)
    specs = [get_spec(name) for name in dict.fromkeys(args.prepare or [chosen.model])]  # a typo: exit 2 first
    if chosen.weights and len(specs) > 1:
        print("wanwu: error: --weights FILE goes with one model only", file=sys.stderr)
        return EXIT_USAGE
    engine = get_engine(chosen.engine)
    if not engine.runs_onnx:
        print(f"wanwu: the {engine.name} engine runs the weights as they are: nothing to prepare", file=sys.stderr)
        return _report([], args)
    precisions = list(engine.precisions) if args.precision == ALL else [chosen.precision]
    rows: list[dict[str, Any]] = []
    for spec in specs:
        try:
            weights = resolve_weights(spec, chosen.weights)
        except WanwuError as exc:
            print(display_text(f"wanwu: error: {exc.text(settings.resolve_lang(strict=False))}"), file=sys.stderr)
            rows += [_row(spec.name, p, error=exc) for p in precisions]
            continue
        for precision in precisions:
            try:
                done = prepare(spec, weights, precision, announce=_progress)
            except WanwuError as exc:
                print(
                    display_text(
                        f"wanwu: error: {spec.name} {precision}: {exc.text(settings.resolve_lang(strict=False))}"
                    ),
                    file=sys.stderr,
                )
                rows.append(_row(spec.name, precision, error=exc))
                continue
            rows.append(
                _row(
                    spec.name,
                    precision,
                    path=user_path(done.path),
                    seconds=round(done.seconds, 2),
                    already_cached=done.already_cached,
                )
            )
    return _report(rows, args)


def _progress(message: str) -> None:
    print(display_text(f"wanwu: {message} ..."), file=sys.stderr, flush=True)


def _row(model: str, precision: str, *, error: WanwuError | None = None, **done: Any) -> dict[str, Any]:
    return {
        "model": model,
        "precision": precision,
        "path": done.get("path"),
        "seconds": done.get("seconds"),
        "already_cached": done.get("already_cached"),
        "error": None if error is None else {"code": error.code, "message": display_text(error.message)},
    }


def _report(rows: list[dict[str, Any]], args: argparse.Namespace) -> int:
    """The summary on stdout; exit 1 when something was asked for and nothing could be prepared."""
    if args.format == "json":
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        for r in rows:
            if r["error"] is None:
                what = "already prepared" if r["already_cached"] else f"prepared in {r['seconds']:.1f} s"
                print(f"{r['model']} {r['precision']}: {what}: {r['path']}")
    ok = [r for r in rows if r["error"] is None]
    return EXIT_FAILED if rows and not ok else EXIT_OK
