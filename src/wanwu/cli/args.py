"""What every ``wanwu`` subcommand's parser shares: argparse validators (``positive_int``,
``positive_float``), the help formatter, and the language and tag confidence a library command
runs with (``lang_of``, ``confidence_of``). Settings with a ``WANWU_*`` variable get their flags
from ``wanwu.settings.add_arguments``; this module is for the plain options around them."""

from __future__ import annotations

import argparse
from typing import NoReturn


def _whole_number(text: str, minimum: int, why: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{why}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1, "must be at least 1")


def non_negative_int(text: str) -> int:
    return _whole_number(text, 0, "must not be negative")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value}")
    return value


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions and epilogs as written, and appends ``(default: X)`` to an option's
    help only when there is a default worth showing (not None, False or ``[]``) and the help
    does not already say it (settings' flags default to None and carry ``[env ...; default: ...]`` themselves)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "default" in text
            or not action.option_strings
            or action.default in (None, False, argparse.SUPPRESS)
            or action.default == []  # a repeatable option given no times: nothing to show
            or action.nargs == 0
        ):
            return text
        return text + " (default: %(default)s)"


class ArgumentParser(argparse.ArgumentParser):
    """A usage error is one line, ``wanwu serve: error: argument --model/-m: invalid choice:
    'resnet50' (choose from ...)``, pointing at ``--help`` instead of printing the whole usage
    block before it (its subcommands' parsers are of this class too). Exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} --help` lists the options)\n")


def lang_of(args: argparse.Namespace) -> str:
    """--lang, else WANWU_LANG, else the locale's language (``settings.resolve_lang``)."""
    from .. import settings  # not at import: `wanwu --help` builds its parser from this module

    return settings.resolve_lang(getattr(args, "lang", None))


def confidence_of(args: argparse.Namespace) -> float | None:
    """--tag-confidence, else WANWU_TAG_CONFIDENCE, else None (calibrated per model)."""
    from .. import settings

    if getattr(args, "tag_confidence", None) is not None:
        return args.tag_confidence
    return settings.env_value("tag_confidence")
