"""The settings every entry point shares, in one table: model, weights, engine, precision,
threads, max pixels, top-k, label language and cache dir, each with its default, ``WANWU_*`` environment
variable, parser and help text. ``ModelSettings`` holds them; ``ServerConfig`` extends it with
the server's own; ``CommandSettings`` (in ``wanwu.environment``, below every other module, with
the parsers and the ``setting`` field helper) holds the rest (where weights, the cache and the
photo catalogue are, the library commands' and the benchmarks' variables), read one at a time
with ``env_value``.
Precedence everywhere: defaults < environment < command-line flags. No other module reads a
``WANWU_*`` variable: docs/configuration.md lists them all (a test checks it against these tables).

An entry point that runs a model (``wanwu classify``, ``explain``, ``index``; ``serve`` through
``ServerConfig``, a subclass) does:

    from wanwu import settings
    settings.add_arguments(parser)                         # --model, --engine, ... (defaults None)
    ...
    s = settings.ModelSettings.from_args(args)             # + environment, validated
    clf = Classifier(**s.classifier_kwargs())

and passes ``names=`` to take only some of them (``settings.add_arguments(p, ["model", "top_k"])``;
``wanwu models --prepare`` builds its settings with ``from_env(**chosen)``, ``wanwu labels`` needs
only ``resolve_lang``).

How to add a setting: add one field to ``ModelSettings`` (or to ``ServerConfig`` when only the
server has it, or to ``CommandSettings`` when one command or helper reads it) with ``setting(default, "WANWU_NAME", parse, help=...)``; give ``parse`` a
function that turns the environment's / the flag's text into the value and raises ValueError
with a short explanation otherwise, and add a range check to ``validate`` if there is one.
The flag (``--name``), its help with ``[env WANWU_NAME; default: ...]`` and the environment
variable follow from the field; entry points that take all settings get it without change.
Then add a row to docs/configuration.md. A variable that is renamed keeps its old name for one
release as ``deprecated=("WANWU_OLD",)``: still read, with a warning on stderr.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, fields
from typing import Any, Callable, Iterable, Mapping, TypeVar

from .engines import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_ENGINE,
    ENGINE_TABLE,
    ENGINES,
    PRECISIONS,
    check_engine,
)
from .environment import (
    CACHE_DIR,
    CommandSettings,
    env_parsed,
    env_text,
    parse_bool,
    parse_int,
    parse_optional_int,
    parse_pixels,
    setting,
)
from .errors import ConfigError
from .labels import default_lang, parse_lang
from .models import DEFAULT_MODEL, MODELS, get_spec
from .pipeline.defaults import DEFAULT_MAX_PIXELS, DEFAULT_PRECISION, DEFAULT_TOP_K
from .tag_policy import calibration, parse_confidence

MAX_TOP_K = 1000  # the number of ImageNet-1k classes
__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_ENGINE",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MODEL",
    "DEFAULT_PRECISION",
    "DEFAULT_TOP_K",
    "MAX_TOP_K",
    "MODEL_SETTINGS",
    "CommandSettings",
    "ModelSettings",
    "add_arguments",
    "env_name",
    "env_value",
    "parse_bool",
    "parse_optional_int",
    "parse_pixels",
    "resolve_lang",
    "setting",
]


_S = TypeVar("_S", bound="ModelSettings")


@dataclass(frozen=True)
class ModelSettings:
    """Which model runs how. Build with ``from_env(**overrides)`` or ``from_args(args)``."""

    model: str = setting(
        DEFAULT_MODEL,
        "WANWU_MODEL",
        short="-m",
        choices=MODELS,
        metavar="NAME",
        help=f"model to use: {', '.join(MODELS)} (see `wanwu models`)",
    )
    weights: str | None = setting(
        None, "WANWU_WEIGHTS", metavar="FILE", help="state_dict file to load instead of the official weights"
    )
    engine: str = setting(
        DEFAULT_ENGINE,
        "WANWU_ENGINE",
        short="-e",
        choices=ENGINES,
        help="inference engine; torch is the eager reference",
    )
    precision: str = setting(
        DEFAULT_PRECISION,
        "WANWU_PRECISION",
        choices=PRECISIONS,
        help=(
            "numeric precision; int8 is static quantization ("
            + ", ".join(e.name for e in ENGINE_TABLE if e.supports("int8"))
            + "): usually the same top-1, but confidences move a lot (docs/samples/coffee.jpg: espresso "
            "95.4% -> 50.7%, consomme 0.9% -> 23.5%), so do not compare scores across precisions; "
            "tags and verdicts use a confidence calibrated for each precision"
        ),
    )
    threads: int | None = setting(
        None,
        "WANWU_THREADS",
        parse_optional_int,
        metavar="N",
        shown="auto",
        help="inference threads; auto = all cores this process may use",
    )
    max_pixels: int = setting(
        DEFAULT_MAX_PIXELS,
        "WANWU_MAX_PIXELS",
        parse_pixels,
        metavar="N",
        shown=f"{DEFAULT_MAX_PIXELS // 1_000_000}M",
        help="most pixels decoded per image (e.g. 40M), checked from the header; a baseline JPEG "
        "counts at its reduced decoding scale (its header may say up to 8x more: 200 MP phone photos pass)",
    )
    top_k: int = setting(
        DEFAULT_TOP_K, "WANWU_TOP_K", parse_int, short="-k", metavar="K", help=f"labels per image (1-{MAX_TOP_K})"
    )
    tag_confidence: float | None = setting(
        None,
        "WANWU_TAG_CONFIDENCE",
        parse_confidence,
        metavar="P",
        shown="auto, calibrated per model and precision "
        f"({calibration(DEFAULT_MODEL, DEFAULT_PRECISION).confidence} for the default model)",
        help="how sure a tag must be: the calibrated probability (0-1) that a class, or a label group "
        "summed, must reach to be a photo's tag, verdict or keyword; higher: fewer, surer tags (docs/library.md)",
    )
    lang: str | None = setting(
        None,
        "WANWU_LANG",
        parse_lang,
        metavar="LANG",
        shown="from the locale, e.g. LANG=zh_CN.UTF-8 -> zh",
        help="language of class names: en (English) or zh (中文)",
    )
    cache_dir: str | None = CACHE_DIR  # defined beside the variables below the settings (wanwu.paths reads it)

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def values_from_env(cls, environ: Mapping[str, str] | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Parsed ``WANWU_*`` variables, then ``overrides`` (``None`` values are ignored)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if env_text(f, environ) is not None:
                values[f.name] = env_parsed(f, environ)
        names = {f.name for f in fields(cls)}
        values.update({k: v for k, v in overrides.items() if v is not None and k in names})
        return values

    @classmethod
    def from_env(cls: type[_S], environ: Mapping[str, str] | None = None, **overrides: Any) -> _S:
        """Defaults, then ``WANWU_*`` variables, then ``overrides``; validated."""
        settings = cls(**cls.values_from_env(environ, overrides))
        settings.validate()
        return settings

    @classmethod
    def from_args(cls: type[_S], args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> _S:
        """The settings of a parsed command line (flags added by ``add_arguments``) + environment."""
        return cls.from_env(environ, **vars(args))

    @classmethod
    def env_name(cls, name: str) -> str:
        """The environment variable of setting ``name`` (for help texts and messages)."""
        return next(f.metadata["env"] for f in fields(cls) if f.name == name)

    @classmethod
    def flag_name(cls, name: str) -> str:
        meta = next(f.metadata for f in fields(cls) if f.name == name)
        return meta.get("flag") or "--" + name.replace("_", "-")

    def error(self, name: str, why: str) -> ConfigError:
        """A ``ConfigError`` naming the flag and the variable of setting ``name``."""
        return ConfigError(f"{self.flag_name(name)} / {self.env_name(name)}: {why}")

    # -- checking and using -----------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``ConfigError`` (or ``UnknownModelError``) for the first setting that cannot work."""
        get_spec(self.model)  # UnknownModelError lists the known models
        if self.engine not in ENGINES:
            raise self.error("engine", f"{self.engine!r} is not one of {', '.join(ENGINES)}")
        if self.precision not in PRECISIONS:
            raise self.error("precision", f"{self.precision!r} is not one of {', '.join(PRECISIONS)}")
        try:
            check_engine(self.engine, self.precision)
        except ConfigError as exc:
            raise self.error("precision", exc.message) from None
        if self.threads is not None and self.threads < 1:
            raise self.error("threads", "must be at least 1 (or 'auto')")
        if self.max_pixels <= 0:
            raise self.error("max_pixels", "must be more than 0")
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise self.error("top_k", f"{self.top_k} is not between 1 and {MAX_TOP_K}")

    def label_lang(self, environ: Mapping[str, str] | None = None) -> str:
        """``lang`` if set (flag or WANWU_LANG), else the locale's language (``resolve_lang``)."""
        return resolve_lang(self.lang, environ)

    def classifier_kwargs(self) -> dict[str, Any]:
        """Arguments for ``Classifier(**...)``."""
        return {
            "model": self.model,
            "engine": self.engine,
            "weights": self.weights,
            "precision": self.precision,
            "threads": self.threads,
            "max_pixels": self.max_pixels,
        }

    def export_cache_dir(self) -> None:
        """Make ``cache_dir`` (when set) this process's cache dir, for ``wanwu.paths.cache_dir``.
        Entry points call it once; the library itself never changes the environment."""
        if self.cache_dir:
            os.environ["WANWU_CACHE_DIR"] = str(self.cache_dir)


MODEL_SETTINGS: tuple[str, ...] = tuple(f.name for f in fields(ModelSettings))


SETTING_TABLES: tuple[type, ...] = (ModelSettings, CommandSettings)  # ServerConfig adds the server's


def _field(name: str) -> Any:
    return next(f for table in SETTING_TABLES for f in fields(table) if f.name == name)


def env_name(name: str) -> str:
    """The ``WANWU_*`` variable of setting ``name`` (``ModelSettings`` or ``CommandSettings``), for messages."""
    return _field(name).metadata["env"]


def env_value(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """The value of setting ``name`` (a field of ``ModelSettings`` or ``CommandSettings``) from its
    ``WANWU_*`` variable, else its default; ``ConfigError`` when the variable's text is not valid."""
    return env_parsed(_field(name), os.environ if environ is None else environ)


def resolve_lang(flag: str | None = None, environ: Mapping[str, str] | None = None, *, strict: bool = True) -> str:
    """The language of class names and messages: ``--lang`` (``flag``), else ``WANWU_LANG``, else
    the locale's (``wanwu.labels.default_lang``). A ``WANWU_LANG`` no language has is a
    ``ConfigError`` (so is such a ``flag``); with ``strict=False`` (the language of an error message
    about to be printed, which may be that very error) it is passed over instead."""
    if flag and flag.strip():
        try:
            return parse_lang(flag)
        except ValueError as exc:
            if strict:
                raise ConfigError(f"--lang: {exc}") from None
    try:
        lang = env_value("lang", environ)
    except ConfigError:
        if strict:
            raise
        lang = None
    return lang or default_lang(environ)


# --- argparse: flags generated from the table ----------------------------------------------
def help_text(settings: type[ModelSettings], name: str, text: str | None = None) -> str:
    """``text [env WANWU_X; default: Y]`` (``%`` escaped for argparse)."""
    f = next(f for f in fields(settings) if f.name == name)
    default, shown = f.default, f.metadata.get("shown")
    if shown is None:
        if isinstance(default, bool):
            shown = "on" if default else "off"
        elif default == ():
            shown = "none"
        elif default is not None:
            shown = str(default)
    suffix = f"env {f.metadata['env']}" + (f"; default: {shown}" if shown is not None else "")
    return f"{text if text is not None else f.metadata['help']} [{suffix}]".replace("%", "%%")


def arg_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` for argparse: its ValueError's message becomes the usage error."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def add_arguments(
    parser: Any,
    names: Iterable[str] = MODEL_SETTINGS,
    *,
    settings: type[ModelSettings] = ModelSettings,
    help: Mapping[str, str] | None = None,
) -> None:
    """Add the flags of settings ``names`` to ``parser`` (a parser or an argument group).
    Every flag defaults to None, so ``from_args`` can tell "not given" and use the environment
    (an on/off setting gets ``--x`` and ``--no-x``); ``help`` replaces the generic help text of
    some settings with the entry point's own."""
    by_name = {f.name: f for f in fields(settings)}
    for name in names:
        meta = by_name[name].metadata
        flags = [settings.flag_name(name)] + ([meta["short"]] if meta.get("short") else [])
        kwargs: dict[str, Any] = {
            "dest": name,
            "default": None,
            "help": help_text(settings, name, (help or {}).get(name)),
        }
        if meta["parse"] is parse_bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif meta.get("choices"):
            kwargs["choices"] = meta["choices"]
        elif meta["parse"] is not str:
            kwargs["type"] = arg_type(meta["parse"])
        if meta.get("metavar"):
            kwargs["metavar"] = meta["metavar"]
        kwargs.update(meta.get("flag_options") or {})
        parser.add_argument(*flags, **kwargs)
