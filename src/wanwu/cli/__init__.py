"""The ``wanwu`` command: classify photos, list models, fetch weights, serve, benchmark, and the
photo library (index, search, library, tag, people, similar, duplicates).

``COMMANDS`` is the one list of commands: each one's line in ``wanwu --help`` and the function
that adds its options. Only the command being run has its options built (and its module
imported): ``wanwu --help`` imports none of them, ``wanwu classify`` not the web server nor the
catalogue. The others stand in the parser by name and help line, so a mistyped command still
lists them all.

Every command's front end lives in this package, one module per family: ``classify``
(classify, explain, models, download; ``prepare`` for ``models --prepare``), ``labels``,
``serve``, ``bench``, ``library`` (index, search, library, tag), ``people`` and ``similar``
(similar, duplicates), with the shared argparse helpers in ``args``. They parse, call the
library, server or pipeline, and print; nothing below them imports them back.
``python -m wanwu.cli`` runs ``main`` (``__main__.py``)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Sequence

from .. import __version__
from ..errors import EXIT_OK, EXIT_USAGE, WanwuError
from .args import ArgumentParser, HelpFormatter


@dataclass(frozen=True)
class Command:
    help: str
    builder: str  # "module:function": the function adds this command (and maybe its neighbours) to the subparsers


_CLASSIFY = "wanwu.cli.classify:add_parsers"
_LIBRARY = "wanwu.cli.library:add_parsers"
COMMANDS: dict[str, Command] = {
    "classify": Command("label images, files or folders", _CLASSIFY),
    "explain": Command("show where in a photo the model saw a class", _CLASSIFY),
    "models": Command("list models and whether their weights are here; --prepare builds them ahead", _CLASSIFY),
    "download": Command("fetch official weights (online machines only)", _CLASSIFY),
    "labels": Command("list the class names (English, 中文) and label groups", "wanwu.cli.labels:add_parser"),
    "serve": Command("run the web UI and HTTP API", "wanwu.cli.serve:add_parser"),
    "bench": Command(
        "measure latency, throughput, accuracy and memory against a torch eager 1-thread baseline",
        "wanwu.cli.bench:add_parser",
    ),
    "index": Command("tag a photo collection into the catalogue (incremental)", _LIBRARY),
    "search": Command("find photos in the catalogue by what is in them", _LIBRARY),
    "library": Command("what the catalogue holds; export it", _LIBRARY),
    "tag": Command("add or remove your own tags on photos", _LIBRARY),
    "people": Command("the persons whose faces are in your photos: list, name, merge, forget", _LIBRARY),
    "similar": Command("photos that look like a given photo", _LIBRARY),
    "duplicates": Command("exact copies and near-duplicates, with a suggested keeper", _LIBRARY),
}


class _Only:
    """What a builder gets in place of argparse's subparsers: it adds the commands wanted, each
    with its help line from ``COMMANDS``; any other command it adds goes to a parser thrown away."""

    def __init__(self, sub: Any, wanted: set[str]):
        self._sub, self._wanted = sub, wanted

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if name not in self._wanted:
            return ArgumentParser(add_help=False)
        return self._sub.add_parser(name, help=COMMANDS[name].help, **kwargs)


def build_parser(commands: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``wanwu`` parser with the options of ``commands`` built (default: every command; an
    empty list: none, each command only named, as ``wanwu --help`` shows them)."""
    parser = ArgumentParser(
        prog="wanwu",
        description="wanwu (万物): recognise what is in your photos, offline. ImageNet-1k labels "
        "with confidence, from a model that ships with the package; nothing leaves the machine.",
        epilog="run `wanwu COMMAND --help` for the options and examples of each command.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wanwu {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (exports, cache)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = set(COMMANDS if commands is None else commands)
    built: set[str] = set()
    for name, command in COMMANDS.items():
        if name in wanted and command.builder not in built:
            module, function = command.builder.split(":")
            getattr(import_module(module), function)(_Only(sub, wanted))
            built.add(command.builder)
        elif name not in wanted:
            sub.add_parser(name, help=command.help)
    ordered = {name: sub.choices[name] for name in COMMANDS}  # help lists them in COMMANDS' order
    sub.choices.clear()
    sub.choices.update(ordered)
    sub._choices_actions.sort(key=lambda action: list(COMMANDS).index(action.dest))
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The command named on the command line (the first word that is not a global option)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_in(argv)
    parser = build_parser([command] if command else [])
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    import logging

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 is printed as its bytes
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    try:
        return args.func(args)
    except WanwuError as exc:
        from ..settings import resolve_lang

        print(f"wanwu: error: {exc.text(resolve_lang(getattr(args, 'lang', None), strict=False))}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("wanwu: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
