"""The settings every entry point shares, in one table: model, weights, engine, precision,
threads, max pixels, top-k, label language and cache dir, each with its default, ``WANWU_*`` environment
variable, parser and help text. ``ModelSettings`` holds them; ``ServerConfig`` extends it with
the server's own. Precedence everywhere: defaults < environment < command-line flags.

An entry point (``wanwu classify``, ``serve``, ``index``, ``explain``, ``labels`` ...) does:

    from wanwu import settings
    settings.add_arguments(parser)                         # --model, --engine, ... (defaults None)
    ...
    s = settings.ModelSettings.from_args(args)             # + environment, validated
    clf = Classifier(**s.classifier_kwargs())

and passes ``names=`` to take only some of them (``settings.add_arguments(p, ["model", "top_k"])``).

How to add a setting: add one field to ``ModelSettings`` (or to ``ServerConfig`` when only the
server has it) with ``setting(default, "WANWU_NAME", parse, help=...)``; give ``parse`` a
function that turns the environment's / the flag's text into the value and raises ValueError
with a short explanation otherwise, and add a range check to ``validate`` if there is one.
The flag (``--name``), its help with ``[env WANWU_NAME; default: ...]`` and the environment
variable follow from the field; entry points that take all settings get it without change.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable, Mapping, TypeVar

from .engines import DEFAULT_ENGINE, ENGINE_TABLE, ENGINES, PRECISIONS, check_engine
from .errors import ConfigError
from .labels import default_lang, parse_lang
from .models import DEFAULT_MODEL, MODELS, get_spec
from .pipeline.defaults import DEFAULT_MAX_PIXELS, DEFAULT_PRECISION, DEFAULT_TOP_K
from .tag_policy import calibration, parse_confidence

MAX_TOP_K = 1000  # the number of ImageNet-1k classes
__all__ = [
    "DEFAULT_ENGINE",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MODEL",
    "DEFAULT_PRECISION",
    "DEFAULT_TOP_K",
    "MAX_TOP_K",
    "MODEL_SETTINGS",
    "ModelSettings",
    "add_arguments",
    "parse_bool",
    "parse_optional_int",
    "parse_pixels",
    "setting",
]


# --- parsers: text (environment or flag) -> value; ValueError with a short reason otherwise ---
def parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def parse_float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def parse_optional_int(text: str) -> int | None:
    """A whole number, or ``auto`` (also empty / ``none``) for None."""
    if text.strip().lower() in ("", "auto", "none"):
        return None
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number or 'auto'") from None


def parse_pixels(text: str) -> int:
    """``40000000``, ``40e6`` or ``40M`` -> 40_000_000."""
    clean = text.strip().upper()
    scale = 1_000_000 if clean.endswith(("M", "MP")) else 1
    try:
        return int(float(clean.rstrip("MP")) * scale)
    except ValueError:
        raise ValueError(f"{text!r} is not a pixel count like 40000000, 40e6 or 40M") from None


def parse_bool(text: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case)."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not one of on/off, true/false, yes/no, 1/0")


def setting(
    default: Any,
    env: str,
    parse: Callable[[str], Any] = str,
    *,
    help: str = "",
    short: str | None = None,
    metavar: str | None = None,
    choices: Iterable[str] | None = None,
    shown: str | None = None,
    flag: str | None = None,
    flag_options: Mapping[str, Any] | None = None,
    secret: bool = False,
) -> Any:
    """A dataclass field that is also a setting: ``default``, the ``env`` variable, the
    ``parse`` function for its text, and what the generated flag looks like (``shown`` is
    the default as the help prints it, when ``str(default)`` would not say it well;
    ``flag_options``: argparse keywords the flag needs beyond these, e.g. ``nargs``)."""
    meta = {
        "env": env,
        "parse": parse,
        "help": help,
        "short": short,
        "metavar": metavar,
        "choices": tuple(choices) if choices is not None else None,
        "shown": shown,
        "flag": flag,
        "flag_options": dict(flag_options or {}),
    }
    return field(default=default, repr=not secret, metadata=meta)


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
    cache_dir: str | None = setting(
        None,
        "WANWU_CACHE_DIR",
        metavar="DIR",
        shown="$XDG_CACHE_HOME/wanwu or ~/.cache/wanwu",
        help="where converted models (ONNX, int8) are kept",
    )

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def values_from_env(cls, environ: Mapping[str, str] | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Parsed ``WANWU_*`` variables, then ``overrides`` (``None`` values are ignored)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            env = f.metadata["env"]
            raw = environ.get(env)
            if raw is not None and raw.strip() != "":
                try:
                    values[f.name] = f.metadata["parse"](raw)
                except ValueError:
                    raise ConfigError(f"{env}={raw!r} is not a valid value for {f.name}; unset it or fix it") from None
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
        """``lang`` if set (flag or WANWU_LANG), else the locale's language (``wanwu.labels.default_lang``)."""
        return self.lang or default_lang(environ)

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
