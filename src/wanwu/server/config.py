"""``ServerConfig``: every knob of ``wanwu serve`` in one value: the settings every entry point
shares (``wanwu.settings.ModelSettings``: model, engine, precision, threads, max pixels, top-k,
cache dir) and the server's own. Each field has a ``WANWU_*`` environment variable; CLI flags
override the environment, which overrides the defaults. A server setting is added here the
way ``wanwu.settings`` describes: one field with its variable, parser and help, and ``wanwu
serve`` has its flag (``wanwu.cli.serve`` generates every flag from this table)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from ..engines import DEFAULT_BATCH_SIZE, default_threads
from ..environment import parse_bool, parse_float, parse_int, parse_optional_int, parse_pixels, setting
from ..errors import ConfigError
from ..settings import ModelSettings

__all__ = [
    "ConfigError",
    "ServerConfig",
    "key_file_mode_if_public",
    "parse_bool",
    "parse_origins",
    "parse_pixels",
    "read_key_file",
]

_opt = setting


def parse_origins(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"https://a.example, http://localhost:3000"`` (or a list of such) -> a tuple of origins."""
    items = [text] if isinstance(text, str) else list(text)
    return tuple(o.strip().rstrip("/") for item in items for o in item.split(",") if o.strip())


_ORIGIN = re.compile(r"https?://[^/\s?#@]+")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # visible ASCII: what fits in an HTTP header unchanged


def read_key_file(path: str) -> str:
    """The API key stored in ``path`` (surrounding whitespace, e.g. the final newline, removed).
    A file that cannot be read, or holds no key, is a one-line ``ConfigError``."""
    where = "--api-key-file / WANWU_API_KEY_FILE"
    try:
        key = Path(path).expanduser().read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: {path} is not text: write the key into it as one line") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    if not key:
        raise ConfigError(f"{where}: {path} is empty: write the key into it as one line") from None
    return key


def key_file_mode_if_public(path: str) -> int | None:
    """The permission bits of the key file when every user of the machine may read it (the
    server still starts: secrets mounted into a container are often 0644), else None."""
    try:
        mode = Path(path).expanduser().stat().st_mode & 0o777
    except OSError:
        return None
    return mode if mode & 0o004 else None


@dataclass(frozen=True)
class ServerConfig(ModelSettings):
    """Settings of one server process: the shared ``ModelSettings`` (model, engine, precision,
    threads, max pixels, top-k, cache dir; ``weights`` applies to ``model`` only) and the
    server's own. Build with ``ServerConfig.from_env(**overrides)``."""

    host: str = _opt("127.0.0.1", "WANWU_HOST", help="address to bind; 0.0.0.0 exposes the server to the network")
    port: int = _opt(8080, "WANWU_PORT", parse_int, metavar="PORT", help="TCP port")
    workers: int | None = _opt(
        None,
        "WANWU_WORKERS",
        parse_optional_int,
        shown="auto",
        metavar="N",
        help="threads decoding and preprocessing images; auto = all cores",
    )  # decode threads; None = all cores
    max_upload_mb: float = _opt(
        20.0, "WANWU_MAX_UPLOAD_MB", parse_float, metavar="MB", help="largest request body, in MB (413 above)"
    )
    max_files: int = _opt(
        64, "WANWU_MAX_FILES", parse_int, metavar="N", help="most images in one request (413 above)"
    )  # images per request (JSON API and v2)
    # most images per forward pass; 1 = no batching (why 8: wanwu.engines.DEFAULT_BATCH_SIZE)
    batch_size: int = _opt(
        DEFAULT_BATCH_SIZE,
        "WANWU_BATCH_SIZE",
        parse_int,
        metavar="N",
        help="most images per forward pass when requests arrive together; 1 turns batching off",
    )
    batch_wait_ms: float = _opt(
        2.0,
        "WANWU_BATCH_WAIT_MS",
        parse_float,
        metavar="MS",
        help="how long a forming batch may wait for requests still decoding (never when idle)",
    )  # linger for requests still decoding
    max_queue: int = _opt(
        256, "WANWU_MAX_QUEUE", parse_int, metavar="N", help="images waiting for inference before 503 + Retry-After"
    )
    cache_entries: int = _opt(
        4096,
        "WANWU_CACHE_ENTRIES",
        parse_int,
        metavar="N",
        help="result cache size (same photo again = no inference); 0 turns it off",
    )
    cache_mb: float = _opt(64.0, "WANWU_CACHE_MB", parse_float, metavar="MB", help="result cache memory bound")
    # "cached": true in answers tells a client someone sent that photo before; off by default
    show_cache_hits: bool = _opt(
        False,
        "WANWU_SHOW_CACHE_HITS",
        parse_bool,
        help='say "cached": true in answers served from the cache (reveals that someone sent '
        "the same photo before: for single-user servers; /metrics counts hits either way)",
    )
    max_models: int = _opt(
        0,
        "WANWU_MAX_MODELS",
        parse_int,
        metavar="N",
        help="most models kept loaded (each EfficientNet-Lite adds ~70 MB RSS); to load another, the "
        "least recently used one is unloaded, never the default; 0 = keep every model asked for",
    )
    shutdown_timeout: float = _opt(
        10.0,
        "WANWU_SHUTDOWN_TIMEOUT",
        parse_float,
        metavar="S",
        help="seconds to finish in-flight requests on shutdown",
    )
    request_timeout: float = _opt(
        30.0,
        "WANWU_REQUEST_TIMEOUT",
        parse_float,
        metavar="S",
        help="longest the server works on one request once its body is in (503 after); 0 = no limit",
    )
    body_timeout: float = _opt(
        10.0,
        "WANWU_BODY_TIMEOUT",
        parse_float,
        metavar="S",
        help="longest a client may stall while sending headers or body (408 and the connection is "
        "closed; a body must also average 8 KB/s); 0 = no limit",
    )
    max_connections: int = _opt(
        1000,
        "WANWU_MAX_CONNECTIONS",
        parse_int,
        metavar="N",
        help="open connections and requests at once; more get a plain 503",
    )
    api_key: str | None = _opt(
        None,
        "WANWU_API_KEY",
        secret=True,
        metavar="KEY",
        help="require 'Authorization: Bearer KEY' on the API (see the access notes at the end); never "
        "logged, but `ps` shows it to every user of the machine: prefer --api-key-file",
    )  # None = open
    api_key_file: str | None = _opt(
        None,
        "WANWU_API_KEY_FILE",
        metavar="FILE",
        help="read the API key from FILE (one line; the key stays out of `ps` and the shell's history); "
        "a missing, unreadable or empty FILE stops the server",
    )
    metrics_public: bool = _opt(
        False,
        "WANWU_METRICS_PUBLIC",
        parse_bool,
        help="serve /metrics without the API key (for a Prometheus scraper)",
    )
    cors_origins: tuple[str, ...] = _opt(
        (),
        "WANWU_CORS_ORIGINS",
        parse_origins,
        flag="--cors-origin",
        metavar="URL",
        # each --cors-origin is kept as typed; __post_init__ splits and joins the list
        flag_options={"action": "append", "type": None},
        help="let web pages from this origin (e.g. https://app.example) call the API from a "
        "browser; repeat it or give a comma list; * allows any",
    )
    log_level: str = _opt(
        "info", "WANWU_LOG_LEVEL", choices=("critical", "error", "warning", "info", "debug"), help="log verbosity"
    )
    # the Library view and /api/v1/library/*: a catalogue path, "" for the default one; None = off.
    # The CLI's catalogue variable turns it on; WANWU_SERVE_LIBRARY is its former name (one release)
    library: str | None = _opt(
        None,
        "WANWU_LIBRARY",
        deprecated=("WANWU_SERVE_LIBRARY",),
        metavar="DB",
        flag_options={"nargs": "?", "const": ""},  # --library alone: the default catalogue
        help="also serve the photo library (Library view, /api/v1/library/*) of catalogue DB; "
        "without DB: $XDG_DATA_HOME/wanwu/library.db",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerConfig:
        """Defaults, then ``WANWU_*`` variables, then ``overrides`` (``None`` values are ignored)."""
        values = cls.values_from_env(environ, overrides)
        if values.get("api_key") is not None and values.get("api_key_file") is not None:
            raise ConfigError("--api-key / WANWU_API_KEY and --api-key-file / WANWU_API_KEY_FILE are both set; use one")
        config = cls(**values)
        config.validate()
        return config

    def __post_init__(self) -> None:
        # normalise here so that from_env, with_ and direct construction agree
        if not isinstance(self.cors_origins, tuple):
            object.__setattr__(self, "cors_origins", parse_origins(self.cors_origins))
        if self.api_key is None and self.api_key_file is not None:
            object.__setattr__(self, "api_key", read_key_file(self.api_key_file))

    @property
    def auth_enabled(self) -> bool:
        return self.api_key is not None

    def with_(self, **changes: Any) -> ServerConfig:
        config = replace(self, **changes)
        config.validate()
        return config

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def decode_workers(self) -> int:
        return self.workers or default_threads()

    def validate(self) -> None:
        """Raise ``ConfigError`` naming the flag and variable of the first bad setting."""
        bad = self.error
        super().validate()
        if not 0 <= self.port <= 65535:
            raise bad("port", f"{self.port} is not a TCP port (0-65535)")
        if self.max_upload_mb <= 0:
            raise bad("max_upload_mb", "must be more than 0")
        if self.max_files < 1:
            raise bad("max_files", "must be at least 1")
        if self.workers is not None and self.workers < 1:
            raise bad("workers", "must be at least 1 (or 'auto')")
        if self.batch_size < 1:
            raise bad("batch_size", "must be at least 1 (1 turns batching off)")
        if self.batch_wait_ms < 0:
            raise bad("batch_wait_ms", "must not be negative")
        if self.max_queue < 1:
            raise bad("max_queue", "must be at least 1")
        if self.max_models < 0:
            raise bad("max_models", "must not be negative (0 keeps every model that was asked for)")
        if self.cache_entries < 0 or self.cache_mb < 0:
            raise bad("cache_entries", "must not be negative (0 turns the cache off)")
        if self.shutdown_timeout < 0:
            raise bad("shutdown_timeout", "must not be negative")
        if self.request_timeout < 0:
            raise bad("request_timeout", "must not be negative (0 turns it off)")
        if self.body_timeout < 0:
            raise bad("body_timeout", "must not be negative (0 turns it off)")
        if self.max_connections < 1:
            raise bad("max_connections", "must be at least 1")
        if self.api_key is not None and not _TOKEN.fullmatch(self.api_key):
            # never echo the key itself: error messages end up in logs
            where = "api_key_file" if self.api_key_file else "api_key"
            raise bad(
                where, "the API key must be non-empty visible ASCII without spaces (it travels in an HTTP header)"
            )
        for origin in self.cors_origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise bad(
                    "cors_origins",
                    f"{origin!r} is not an origin like https://app.example or http://localhost:3000 (or *)",
                )
