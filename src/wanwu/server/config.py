"""``ServerConfig``: every knob of ``wanwu serve`` in one value. Each field has a ``WANWU_*``
environment variable; CLI flags override the environment, which overrides the defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Mapping

from ..engines import DEFAULT_ENGINE, ENGINES, PRECISIONS, default_threads
from ..errors import WanwuError
from ..imaging import DEFAULT_MAX_PIXELS
from ..models import DEFAULT_MODEL, get_spec


class ConfigError(WanwuError):
    """A server setting (flag or environment variable) has a value that cannot work."""

    code = "bad_config"
    http_status = 500


def _opt(default: Any, env: str, parse: Callable[[str], Any] = str) -> Any:
    return field(default=default, metadata={"env": env, "parse": parse})


def _optional_int(text: str) -> int | None:
    return None if text.strip().lower() in ("", "auto", "none") else int(text)


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
        config = cls(**values)
        config.validate()
        return config

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
            flag = "--" + name.replace("_", "-")
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
