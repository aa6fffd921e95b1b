"""``wanwu labels``: the 1000 classes (index, wnid, English, Chinese, groups) or the label groups
with their classes, as a table, JSON or TSV: what a user needs to write rules or map labels
(TorchServe ships ``index_to_name.json`` for this). Names given on the command line narrow the
list to what they name (``wanwu labels 狗`` = the 118 dog breeds)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from .. import settings
from ..labels import (
    ImageNetClass,
    LabelGroup,
    classes_of,
    find_classes,
    group_names,
    groups_of,
    imagenet_classes,
    label_groups,
    label_in,
    resolve_class,
    resolve_group,
    synonyms_of,
)
from ..textwidth import display_width, ljust
from .args import HelpFormatter

EXAMPLES = """\
examples:
  wanwu labels                         # all 1000 classes: index, wnid, names, groups
  wanwu labels 狗 --lang zh            # the classes a name stands for (a class or a group)
  wanwu labels --groups                # the label groups and how many classes each holds
  wanwu labels --groups dog vehicle    # these groups with all their classes
  wanwu labels --format json > labels.json
"""


def _other(lang: str) -> str:
    return "en" if lang == "zh" else "zh"


def class_row(c: ImageNetClass, lang: str) -> dict[str, Any]:
    return {
        "index": c.index,
        "wnid": c.wnid,
        "label": label_in(c, lang),
        "label_en": c.label,
        "label_zh": c.label_zh,
        "synonyms": list(synonyms_of(c.wnid)),
        "groups": [g.key for g in groups_of(c.wnid)],
    }


def group_row(g: LabelGroup, lang: str) -> dict[str, Any]:
    return {
        "key": g.key,
        "label": label_in(g, lang),
        "label_en": g.label,
        "label_zh": g.label_zh,
        "names": list(group_names(g)[3:]),
        "wnids": list(g.wnids),
        "classes": [label_in(c, lang) for c in classes_of(g)],
    }


def _table(rows: list[list[str]], out) -> None:
    widths = [max(display_width(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join([ljust(text, w) for text, w in zip(r, widths)] + [r[-1]]).rstrip(), file=out)


def _print_classes(classes: list[ImageNetClass], fmt: str, lang: str, out) -> None:
    if fmt == "json":
        json.dump([class_row(c, lang) for c in classes], out, ensure_ascii=False, indent=1)
        out.write("\n")
    elif fmt == "tsv":
        w = csv.writer(out, delimiter="\t", lineterminator="\n")
        w.writerow(["index", "wnid", "label_en", "label_zh", "groups"])
        w.writerows([c.index, c.wnid, c.label, c.label_zh, ",".join(g.key for g in groups_of(c.wnid))] for c in classes)
    else:
        head = [
            "index",
            "wnid",
            "名称" if lang == "zh" else "name",
            "English" if lang == "zh" else "中文",
            "类别组" if lang == "zh" else "groups",
        ]
        _table(
            [head]
            + [
                [
                    str(c.index),
                    c.wnid,
                    label_in(c, lang),
                    label_in(c, _other(lang)),
                    ", ".join(label_in(g, lang) for g in groups_of(c.wnid)[:3]),
                ]
                for c in classes
            ],
            out,
        )


def _print_groups(groups: list[LabelGroup], fmt: str, lang: str, out, members: bool) -> None:
    if fmt == "json":
        json.dump([group_row(g, lang) for g in groups], out, ensure_ascii=False, indent=1)
        out.write("\n")
    elif fmt == "tsv":
        w = csv.writer(out, delimiter="\t", lineterminator="\n")
        w.writerow(["key", "label_en", "label_zh", "classes", "wnids"])
        w.writerows([g.key, g.label, g.label_zh, len(g.wnids), ",".join(g.wnids)] for g in groups)
    elif members:
        for g in groups:
            print(f"{g.key}  {label_in(g, lang)} / {label_in(g, _other(lang))}  ({len(g.wnids)})", file=out)
            for c in classes_of(g):
                print(
                    f"  {c.index:>3}  {c.wnid}  {ljust(label_in(c, lang), 24)}  {label_in(c, _other(lang))}", file=out
                )
    else:
        head = [
            "key",
            "名称" if lang == "zh" else "name",
            "English" if lang == "zh" else "中文",
            "类别数" if lang == "zh" else "classes",
        ]
        _table([head] + [[g.key, label_in(g, lang), label_in(g, _other(lang)), str(len(g.wnids))] for g in groups], out)


def cmd_labels(args: argparse.Namespace) -> int:
    lang = settings.resolve_lang(args.lang)
    out = sys.stdout
    if args.groups:
        groups = [resolve_group(name) for name in args.names] if args.names else list(label_groups())
        _print_groups(groups, args.format, lang, out, members=bool(args.names))
        return 0
    if not args.names:
        _print_classes(list(imagenet_classes()), args.format, lang, out)
        return 0
    found: dict[int, ImageNetClass] = {}
    for name in args.names:
        classes = find_classes(name) or (resolve_class(name),)  # nothing found: resolve_class says why
        found.update((c.index, c) for c in classes)
    _print_classes([found[i] for i in sorted(found)], args.format, lang, out)
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``labels`` on the ``wanwu`` command's subparsers."""
    p = subparsers.add_parser(
        "labels",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="only what these name: a class (English, Chinese, synonym, wnid, index) or a group",
    )
    p.add_argument("--groups", "-g", action="store_true", help="list label groups instead of classes")
    p.add_argument("--format", "-f", choices=["table", "json", "tsv"], default="table", help="output format")
    settings.add_arguments(p, ("lang",))
    p.set_defaults(func=cmd_labels)
    return p
