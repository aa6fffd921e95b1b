"""``wanwu bench``: the command line of the benchmarks (plugged into ``wanwu`` by ``wanwu.cli``; the measuring is in ``wanwu.bench``)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from .. import settings
from .args import positive_float as _positive_float
from .args import positive_int as _positive_int

COMMANDS = {
    "latency": ("single-image latency, end to end and per stage", ["latency"]),
    "throughput": ("images/s against batch size and threads", ["throughput"]),
    "accuracy": ("top-1/3/5, confidence and agreement with torch fp32 on labelled photos", ["accuracy"]),
    "decode": ("JPEG draft mode against exact decoding: time per megapixel and agreement", ["decode"]),
    "memory": ("cold start and peak RSS of a fresh serving process", ["memory"]),
    "compare": ("everything above, models side by side, with wanwu's targets", None),
}
TAGS_HELP = "precision / coverage / specificity of the tags wanwu shows (flat threshold and tag policy)"

EXAMPLES = """\
examples:
  wanwu bench latency                                   # default model, every engine, fp32 + int8
  wanwu bench latency --engines onnxruntime --precision int8 --runs 300
  wanwu bench throughput --models resnet18 --batch-sizes 1 8 32 --threads 1 2
  wanwu bench accuracy --data ~/imagenet-100 --models efficientnet_lite0 efficientnet_lite2
  wanwu bench decode --data ~/imagenet-100 --decode-mp 12
  wanwu bench compare --data ~/imagenet-100 --out docs  # the full report: docs/benchmarks.md + docs/bench/
  wanwu bench tags --data ~/imagenet-100 --precision fp32 int8   # are the tags right? (no timing)

Every report includes the baseline measured in the same run: torch eager, fp32, batch 1, one
thread, the common textbook setup, and states each result as a ratio to it. Models whose official
weights are missing are skipped, except those in --random-weights (timed with random weights:
speed only). With --out DIR the command writes DIR/benchmarks.md (compare) or
DIR/bench-COMMAND.md, and DIR/bench/COMMAND.json + PNG plots; without it, it prints the Markdown.
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def _threads(text: str) -> str:
    if text.lower() == "all":
        return "all"
    return str(_positive_int(text))


def _add_options(p: argparse.ArgumentParser, command: str) -> None:
    from ..bench.variants import BASELINE_ENGINE, SECTIONS
    from ..engines import ENGINES, PRECISIONS
    from ..models import MODELS

    default_models = "all" if command == "compare" else "the default model"
    p.add_argument(
        "--models",
        nargs="+",
        choices=list(MODELS),
        metavar="MODEL",
        default=None,
        help=f"models to measure (default: {default_models}); one of: {', '.join(MODELS)}",
    )
    default_engines = [e for e in ENGINES if e != BASELINE_ENGINE]
    p.add_argument(
        "--engines",
        nargs="+",
        choices=list(ENGINES),
        metavar="ENGINE",
        default=default_engines,
        help="engines to measure (default: %(default)s); the torch fp32 1-thread baseline is always "
        "included; add torch to also time torch eager with more threads",
    )
    p.add_argument(
        "--precision",
        nargs="+",
        choices=list(PRECISIONS),
        default=list(PRECISIONS),
        dest="precision",
        help="precisions to measure (default: %(default)s; int8: static QDQ quantization, not for torch)",
    )
    default_threads = ["1", "2", "all"] if command == "throughput" else ["all"]
    p.add_argument(
        "--threads",
        nargs="+",
        type=_threads,
        default=None,
        metavar="N",
        help=f"inference threads, numbers or 'all' (default: {' '.join(default_threads)}"
        + ("; throughput: 1 2 all" if command == "compare" else "")
        + ")",
    )
    p.add_argument(
        "--batch-sizes",
        nargs="+",
        type=_positive_int,
        default=[1, 4, 8, 16, 32],
        metavar="B",
        help="batch sizes for the throughput runs (default: %(default)s)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=settings.env_value("bench_data"),
        metavar="DIR",
        help="photos named <wnid>_*.JPEG or an ImageFolder tree of wnid folders; needed for accuracy "
        "(env WANWU_BENCH_DATA; without it the bundled calibration photos are used for speed)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="write Markdown + JSON + PNG plots here (default: print the Markdown)",
    )
    p.add_argument(
        "--runs",
        type=_positive_int,
        default=100,
        help="timed single-image runs per variant (default: %(default)s; >= 100 for a report, fewer for a quick look)",
    )
    p.add_argument("--warmup", type=int, default=10, help="untimed runs per variant first (default: %(default)s)")
    p.add_argument(
        "--min-time",
        type=_positive_float,
        default=0.6,
        help="seconds of throughput measurement per (variant, batch size) point (default: %(default)s)",
    )
    p.add_argument("--limit", type=_positive_int, default=None, help="use at most this many photos from --data")
    p.add_argument(
        "--images",
        type=_positive_int,
        default=100,
        help="images the memory probe process serves (default: %(default)s)",
    )
    p.add_argument(
        "--decode-mp",
        type=_positive_float,
        default=12.0,
        help="megapixels of the upscaled JPEGs made for the draft-mode measurement (default: %(default)s)",
    )
    p.add_argument(
        "--decode-photos",
        type=_positive_int,
        default=None,
        help="how many photos to upscale for the draft-mode measurement (default: all)",
    )
    p.add_argument(
        "--random-weights",
        nargs="*",
        choices=list(MODELS),
        default=["resnet18"],
        metavar="MODEL",
        help="models to time with random weights when their official weights are missing, speed only (default: %(default)s)",
    )
    if command == "compare":
        p.add_argument(
            "--sections",
            nargs="+",
            choices=list(SECTIONS),
            default=list(SECTIONS),
            help="parts of the comparison to run (default: all)",
        )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def add_parser(subparsers) -> argparse.ArgumentParser:
    bench = subparsers.add_parser(
        "bench",
        description="Benchmark wanwu's models and engines on this machine, against the baseline "
        "(torch eager fp32, batch 1, one thread) measured in the same run.",
        epilog=EXAMPLES,
        formatter_class=_Formatter,
    )
    sub = bench.add_subparsers(dest="bench_command", metavar="BENCH_COMMAND")
    for name, (help_text, _) in COMMANDS.items():
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text[0].upper() + help_text[1:] + ".",
            epilog=EXAMPLES,
            formatter_class=_Formatter,
        )
        _add_options(p, name)
    _add_tags_parser(sub)
    bench.set_defaults(func=run, _bench_parser=bench)
    return bench


def _add_tags_parser(sub) -> None:
    from ..engines import PRECISIONS
    from ..models import DEFAULT_MODEL, MODELS

    p = sub.add_parser("tags", help=TAGS_HELP, description=TAGS_HELP[0].upper() + TAGS_HELP[1:] + ".")
    p.add_argument(
        "--data",
        type=Path,
        default=settings.env_value("bench_data"),
        metavar="DIR",
        help="labelled photos: <wnid>_*.JPEG files or wnid sub-folders [env WANWU_BENCH_DATA]",
    )
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=[DEFAULT_MODEL], metavar="MODEL")
    p.add_argument("--precision", nargs="+", choices=list(PRECISIONS), default=["fp32"], dest="precision")
    p.add_argument("--limit", type=_positive_int, default=None, help="use at most this many photos from --data")
    p.add_argument("--people", type=Path, default=None, metavar="DIR", help="photos of people: their tags, listed")
    p.add_argument(
        "--cache", type=Path, default=None, metavar="DIR", help="keep the logits here: a second run needs no inference"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def _run_tags(args: argparse.Namespace) -> int:
    from ..bench.tags import run as run_tags

    if args.data is None:
        print("wanwu bench tags: needs --data DIR (photos named <wnid>_*.JPEG or wnid folders)", file=sys.stderr)
        return 2
    print(
        run_tags(
            args.data,
            args.models,
            args.precision,
            limit=args.limit,
            cache=args.cache,
            people_dir=args.people,
            progress=not args.quiet,
        )
    )
    return 0


def _command_line(args: argparse.Namespace) -> str:
    """The command as a report prints it: paths relative to the repository, home as ``~``."""
    from ..paths import display_path

    if Path(sys.argv[0]).name == "wanwu" and "bench" in sys.argv:
        words = [display_path(a) if os.path.isabs(a) and os.path.exists(a) else a for a in sys.argv[1:]]
        return "wanwu " + shlex.join(words)
    return f"wanwu bench {args.bench_command} (called from Python)"


def options_from_args(args: argparse.Namespace):
    from ..bench.suite import BenchOptions
    from ..bench.variants import SECTIONS, parse_threads
    from ..models import DEFAULT_MODEL, MODELS

    command = args.bench_command
    sections = getattr(args, "sections", None) or COMMANDS[command][1] or list(SECTIONS)
    models = args.models or (list(MODELS) if command == "compare" else [DEFAULT_MODEL])
    # compare: throughput of the default model and ResNet-18 (the targets) unless --models says
    throughput_models = None if args.models or command != "compare" else [DEFAULT_MODEL, "resnet18"]
    return BenchOptions(
        command=_command_line(args),
        sections=sections,
        models=models,
        engines=args.engines,
        precisions=args.precision,
        threads=parse_threads(args.threads if command != "throughput" else None, ["all"]),
        throughput_threads=parse_threads(args.threads if command == "throughput" else None, ["1", "2", "all"]),
        batch_sizes=sorted(set(args.batch_sizes)),
        data=args.data,
        runs=args.runs,
        warmup=args.warmup,
        min_time=args.min_time,
        limit=args.limit,
        images=args.images,
        decode_mp=args.decode_mp,
        decode_photos=args.decode_photos,
        random_weights=args.random_weights,
        progress=not args.quiet,
        throughput_models=throughput_models,
    )


def run(args: argparse.Namespace) -> int:
    if not getattr(args, "bench_command", None):
        args._bench_parser.print_help()
        return 2
    if args.bench_command == "tags":
        return _run_tags(args)
    from ..bench.report import markdown, write_report
    from ..bench.suite import Bench

    opts = options_from_args(args)
    if "accuracy" in opts.sections and opts.data is None and args.bench_command == "accuracy":
        print("wanwu bench accuracy: needs --data DIR (photos named <wnid>_*.JPEG or wnid folders)", file=sys.stderr)
        return 2
    results = Bench(opts).run()
    if args.out is not None:
        files = write_report(results, args.out, args.bench_command)
        for path in files.values():
            print(f"wrote {path}", file=sys.stderr)
    else:
        print(markdown(results, {}))
    print("\ntargets:", file=sys.stderr)
    for t in results["targets"]:
        value = "–" if t["value"] is None else f"{t['value']:.2f} {t['unit']}".strip()
        print(f"  [{t['status']:>12}] {t['target']}: {value} (goal {t['goal']})", file=sys.stderr)
    return 0
