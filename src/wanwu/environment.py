"""The ``WANWU_*`` variables below the settings: how a setting field is declared (``setting``),
how its text is parsed, how it is read from the environment (``env_text``, ``env_parsed``), and
the variables that are not model settings (``CommandSettings``: where weights, the cache and the
photo catalogue are, some commands' own defaults). ``wanwu.settings`` builds the model and server
settings, their flags and the language on top of this; ``wanwu.paths`` reads its folders here.
This module imports nothing of wanwu but its errors, so that every layer may read a variable.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable, Mapping

from .errors import ConfigError


# --- parsers: text (environment or flag) -> value; ValueError with a short reason otherwise ---
def parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def parse_positive_int(text: str) -> int:
    value = parse_int(text)
    if value < 1:
        raise ValueError(f"{text!r} is not a whole number above 0")
    return value


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


def parse_face_detector(text: str) -> str:
    value = text.strip().lower()
    if value not in FACE_DETECTORS:
        raise ValueError(f"{text!r} is not one of {', '.join(FACE_DETECTORS)}")
    return value


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
    deprecated: Iterable[str] = (),
) -> Any:
    """A dataclass field that is also a setting: ``default``, the ``env`` variable, the
    ``parse`` function for its text, and what the generated flag looks like (``shown`` is
    the default as the help prints it, when ``str(default)`` would not say it well;
    ``flag_options``: argparse keywords the flag needs beyond these, e.g. ``nargs``).
    ``deprecated``: former names of the variable, still read (with a warning) when ``env`` is not set."""
    meta = {
        "env": env,
        "deprecated": tuple(deprecated),
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


_warned: set[str] = set()


def env_text(f: Any, environ: Mapping[str, str]) -> str | None:
    """The text of setting field ``f``'s variable in ``environ`` (None when unset or empty); a
    deprecated name is read when the current one is not set, with a warning on stderr (once)."""
    env = f.metadata["env"]
    raw = environ.get(env)
    for old in f.metadata.get("deprecated", ()):
        old_raw = environ.get(old)
        if old_raw is None or not old_raw.strip():
            continue
        used = raw is None or not raw.strip()
        if old not in _warned:
            _warned.add(old)
            what = "used for now" if used else f"ignored: {env} is set"
            print(
                f"wanwu: {old} is deprecated and will be removed in the next release; set {env} instead ({what})",
                file=sys.stderr,
            )
        if used:
            raw, env = old_raw, old
    if raw is None or raw.strip() == "":
        return None
    return raw


def env_parsed(f: Any, environ: Mapping[str, str]) -> Any:
    """Setting field ``f``'s value from ``environ``, or ``f.default`` when its variable is not set;
    ``ConfigError`` naming the variable when its text is not a valid value."""
    raw = env_text(f, environ)
    if raw is None:
        return f.default
    try:
        return f.metadata["parse"](raw)
    except ValueError as exc:
        env = f.metadata["env"]
        raise ConfigError(f"{env}={raw!r} is not a valid value for {f.name} ({exc}); unset it or fix it") from None


# wanwu index: larger files are not read, and at most this many MB of files are held at once.
# A 100 MP 16-bit TIFF is ~600 MB; camera JPEGs and RAW-sized PNGs are far under.
DEFAULT_MAX_FILE_MB = 200

# wanwu.faces.detect.FaceFinder's face detectors, the default first (measurements in its docstring)
FACE_DETECTORS = ("blazeface", "hog")

CACHE_DIR: Any = setting(
    None,
    "WANWU_CACHE_DIR",
    metavar="DIR",
    shown="$XDG_CACHE_HOME/wanwu or ~/.cache/wanwu",
    help="where converted models (ONNX, int8) are kept",
)  # ModelSettings.cache_dir (a flag of classify and serve); here so that wanwu.paths can read it


@dataclass(frozen=True)
class CommandSettings:
    """The variables that are not model settings: where official weights and the photo catalogue
    are, and the defaults of some commands' own flags (a flag, when there is one, wins). Read one
    at a time with ``env_value(name)``; nothing builds this class whole."""

    weights_dir: str = setting(
        "",
        "WANWU_WEIGHTS_DIR",
        metavar="DIRS",
        shown="none; then the torch hub cache, $TORCH_HOME/hub/checkpoints",
        help=f"folders searched for official weight files by name (several: separated by {os.pathsep!r})",
    )
    library: str | None = setting(
        None,
        "WANWU_LIBRARY",
        metavar="FILE",
        shown="$XDG_DATA_HOME/wanwu/library.db or ~/.local/share/wanwu/library.db",
        help="the photo catalogue of wanwu index, search, tag, library, people, similar and duplicates "
        "(their --db) and of wanwu serve, which then serves the Library view (its --library)",
    )
    max_file_mb: int = setting(
        DEFAULT_MAX_FILE_MB,
        "WANWU_MAX_FILE_MB",
        parse_positive_int,
        metavar="MB",
        help="wanwu index: larger files are not read (a per-file error), and at most "
        "this many MB of files are held at once (--max-file-mb)",
    )
    faces: bool = setting(True, "WANWU_FACES", parse_bool, help="off: wanwu index looks for no faces, like --no-faces")
    face_detector: str = setting(
        FACE_DETECTORS[0],
        "WANWU_FACE_DETECTOR",
        parse_face_detector,
        choices=FACE_DETECTORS,
        help="how wanwu index and wanwu people find faces: blazeface (MediaPipe's small CNN: less CPU, "
        "smaller faces) or hog (dlib's HOG detector, the one before)",
    )
    ray: str | None = setting(
        None,
        "WANWU_RAY",
        metavar="ADDRESS",
        help="wanwu index classifies on this Ray cluster (--ray: auto, HOST:PORT, ray://HOST:10001, local)",
    )
    progress: bool = setting(
        False,
        "WANWU_PROGRESS",
        parse_bool,
        help="on: wanwu index draws its progress bar on stderr even when that is not a terminal (a log file)",
    )
    bench_data: str | None = setting(
        None,
        "WANWU_BENCH_DATA",
        metavar="DIR",
        help="labelled photos for wanwu bench (its --data): <wnid>_*.JPEG files or wnid folders",
    )


def variable(name: str) -> Any:
    """The setting field ``name`` of ``CommandSettings``, or ``cache_dir``."""
    if name == "cache_dir":
        return CACHE_DIR
    return next(f for f in fields(CommandSettings) if f.name == name)


def env_value(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """The value of ``variable(name)`` from its ``WANWU_*`` variable, else its default;
    ``ConfigError`` when the variable's text is not valid."""
    return env_parsed(variable(name), os.environ if environ is None else environ)
