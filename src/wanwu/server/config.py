"""``ServerConfig``: every knob of ``wanwu serve`` in one value. Each field has a ``WANWU_*``
environment variable; CLI flags override the environment, which overrides the defaults."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from ..engines import DEFAULT_ENGINE, ENGINES, PRECISIONS, default_threads
from ..errors import WanwuError
from ..imaging import DEFAULT_MAX_PIXELS
from ..models import DEFAULT_MODEL, get_spec


class ConfigError(WanwuError):
    """A server setting (flag or environment variable) has a value that cannot work."""

    code = "bad_config"
    http_status = 500


def _opt(default: Any, env: str, parse: Callable[[str], Any] = str, *, secret: bool = False) -> Any:
    return field(default=default, repr=not secret, metadata={"env": env, "parse": parse})


def _optional_int(text: str) -> int | None:
    return None if text.strip().lower() in ("", "auto", "none") else int(text)


def parse_bool(text: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case)."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def parse_origins(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"https://a.example, http://localhost:3000"`` (or a list of such) -> a tuple of origins."""
    items = [text] if isinstance(text, str) else list(text)
    return tuple(o.strip().rstrip("/") for item in items for o in item.split(",") if o.strip())


_ORIGIN = re.compile(r"https?://[^/\s?#@]+")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # visible ASCII: what fits in an HTTP header unchanged


def read_key_file(path: str) -> str:
    """The API key stored in ``path`` (surrounding whitespace, e.g. the final newline, removed)."""
    try:
        return Path(path).expanduser().read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--api-key-file / WANWU_API_KEY_FILE: cannot read {path}: {exc}") from None


def parse_pixels(text: str) -> int:
    """``40000000``, ``40e6`` or ``40M`` -> 40_000_000."""
    text = text.strip().upper()
    scale = 1_000_000 if text.endswith(("M", "MP")) else 1
    return int(float(text.rstrip("MP")) * scale)


@dataclass(frozen=True)
class ServerConfig:
    """Settings of one server process. Build with ``ServerConfig.from_env(**overrides)``."""

    host: str = _opt("127.0.0.1", "WANWU_HOST")
    port: int = _opt(8080, "WANWU_PORT", int)
    model: str = _opt(DEFAULT_MODEL, "WANWU_MODEL")
    weights: str | None = _opt(None, "WANWU_WEIGHTS")  # weights file for ``model`` only
    engine: str = _opt(DEFAULT_ENGINE, "WANWU_ENGINE")
    precision: str = _opt("fp32", "WANWU_PRECISION")
    threads: int | None = _opt(None, "WANWU_THREADS", _optional_int)  # inference threads; None = all cores
    workers: int | None = _opt(None, "WANWU_WORKERS", _optional_int)  # decode threads; None = all cores
    max_upload_mb: float = _opt(20.0, "WANWU_MAX_UPLOAD_MB", float)
    max_pixels: int = _opt(DEFAULT_MAX_PIXELS, "WANWU_MAX_PIXELS", parse_pixels)
    max_files: int = _opt(64, "WANWU_MAX_FILES", int)  # images per request (JSON API and v2)
    top_k: int = _opt(5, "WANWU_TOP_K", int)  # when a request does not say
    batch_size: int = _opt(16, "WANWU_BATCH_SIZE", int)  # most images per forward pass; 1 = no batching
    batch_wait_ms: float = _opt(2.0, "WANWU_BATCH_WAIT_MS", float)  # linger for requests still decoding
    max_queue: int = _opt(256, "WANWU_MAX_QUEUE", int)  # images waiting for inference; 503 above
    cache_entries: int = _opt(4096, "WANWU_CACHE_ENTRIES", int)  # result cache; 0 turns it off
    cache_mb: float = _opt(64.0, "WANWU_CACHE_MB", float)
    shutdown_timeout: float = _opt(10.0, "WANWU_SHUTDOWN_TIMEOUT", float)  # seconds to finish in-flight requests
    request_timeout: float = _opt(30.0, "WANWU_REQUEST_TIMEOUT", float)  # work on one request after its body; 0 = none
    body_timeout: float = _opt(10.0, "WANWU_BODY_TIMEOUT", float)  # longest stall while a request arrives; 0 = none
    max_connections: int = _opt(1000, "WANWU_MAX_CONNECTIONS", int)  # open connections before plain 503s
    api_key: str | None = _opt(None, "WANWU_API_KEY", secret=True)  # Bearer token for the API; None = open
    api_key_file: str | None = _opt(None, "WANWU_API_KEY_FILE")  # or the file holding it
    metrics_public: bool = _opt(False, "WANWU_METRICS_PUBLIC", parse_bool)  # /metrics without the key
    cors_origins: tuple[str, ...] = _opt((), "WANWU_CORS_ORIGINS", parse_origins)  # browser origins allowed
    log_level: str = _opt("info", "WANWU_LOG_LEVEL")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "ServerConfig":
        """Defaults, then ``WANWU_*`` variables, then ``overrides`` (``None`` values are ignored)."""
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
        values.update({k: v for k, v in overrides.items() if v is not None})
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

    @staticmethod
    def env_name(name: str) -> str:
        """The environment variable of field ``name`` (for help texts)."""
        return next(f.metadata["env"] for f in fields(ServerConfig) if f.name == name)

    def with_(self, **changes: Any) -> "ServerConfig":
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

        def bad(name: str, why: str) -> ConfigError:
            flag = {"cors_origins": "--cors-origin"}.get(name, "--" + name.replace("_", "-"))
            return ConfigError(f"{flag} / {self.env_name(name)}: {why}")

        get_spec(self.model)  # UnknownModelError lists the known models
        if self.engine not in ENGINES:
            raise bad("engine", f"{self.engine!r} is not one of {', '.join(ENGINES)}")
        if self.precision not in PRECISIONS:
            raise bad("precision", f"{self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if not 0 <= self.port <= 65535:
            raise bad("port", f"{self.port} is not a TCP port (0-65535)")
        if not 1 <= self.top_k <= 1000:
            raise bad("top_k", f"{self.top_k} is not between 1 and 1000")
        if self.max_upload_mb <= 0:
            raise bad("max_upload_mb", "must be more than 0")
        if self.max_pixels <= 0:
            raise bad("max_pixels", "must be more than 0")
        if self.max_files < 1:
            raise bad("max_files", "must be at least 1")
        if self.threads is not None and self.threads < 1:
            raise bad("threads", "must be at least 1 (or 'auto')")
        if self.workers is not None and self.workers < 1:
            raise bad("workers", "must be at least 1 (or 'auto')")
        if self.batch_size < 1:
            raise bad("batch_size", "must be at least 1 (1 turns batching off)")
        if self.batch_wait_ms < 0:
            raise bad("batch_wait_ms", "must not be negative")
        if self.max_queue < 1:
            raise bad("max_queue", "must be at least 1")
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
            raise bad(where, "the API key must be non-empty visible ASCII without spaces (it travels in an HTTP header)")
        for origin in self.cors_origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise bad("cors_origins", f"{origin!r} is not an origin like https://app.example or http://localhost:3000 (or *)")
