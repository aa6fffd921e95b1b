"""``wanwu serve``: argument parsing and running uvicorn. ``cli.py`` calls ``add_parser`` and
``run``; ``python -m wanwu.cli_serve`` runs it on its own."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from typing import Any, Callable

from .engines import ENGINES, PRECISIONS
from .errors import WanwuError
from .server.config import ServerConfig, parse_pixels

log = logging.getLogger("wanwu.server")

DESCRIPTION = """\
Serve the web UI and the HTTP API (JSON API, Open Inference Protocol v2, TorchServe-style
routes, Prometheus metrics) on this machine. Offline: nothing is fetched from the internet.
The model is loaded and warmed up before the server starts answering."""

EPILOG = """\
examples:
  wanwu serve                                  # http://127.0.0.1:8080, EfficientNet-Lite0
  wanwu serve --port 9000 --model resnet18
  WANWU_MAX_UPLOAD_MB=50 wanwu serve --top-k 3
  wanwu serve --host 0.0.0.0                   # reachable from other machines (no auth yet!)

then:
  open http://127.0.0.1:8080 in a browser, or
  curl -F file=@cat.jpg 'http://127.0.0.1:8080/api/v1/classify?top_k=3'
  curl -T cat.jpg http://127.0.0.1:8080/predictions/efficientnet_lite0
  API reference: http://127.0.0.1:8080/docs

Every option can also be set by the environment variable shown with it; a flag wins
over the environment."""


def _h(name: str, text: str) -> str:
    default = ServerConfig.__dataclass_fields__[name].default
    shown = "auto" if default is None and name in ("threads", "workers") else default
    suffix = f"env {ServerConfig.env_name(name)}" + (f"; default: {shown}" if shown is not None else "")
    return f"{text} [{suffix}]".replace("%", "%%")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` options (all default to None so the environment can fill them in)."""
    a = parser.add_argument
    a("--host", help=_h("host", "address to bind; 0.0.0.0 exposes the server to the network"))
    a("--port", type=int, help=_h("port", "TCP port"))
    a("--model", help=_h("model", "default model (see `wanwu models`); others load on first use"))
    a("--weights", metavar="FILE", help=_h("weights", "weights file for --model instead of the official one"))
    a("--engine", choices=ENGINES, help=_h("engine", "inference engine"))
    a("--precision", choices=PRECISIONS, help=_h("precision", "numeric precision of the model"))
    a("--threads", type=int, help=_h("threads", "threads per forward pass"))
    a("--workers", type=int, help=_h("workers", "threads decoding and preprocessing images"))
    a("--max-upload-mb", type=float, metavar="MB", help=_h("max_upload_mb", "largest request body, in MB (413 above)"))
    a("--max-pixels", type=parse_pixels, metavar="N",
      help=_h("max_pixels", "largest image in pixels (e.g. 40M), checked from the header (413 above)"))
    a("--max-files", type=int, metavar="N", help=_h("max_files", "most images in one request (413 above)"))
    a("--top-k", type=int, metavar="K", help=_h("top_k", "predictions per image when a request does not say"))
    a("--batch-size", type=int, metavar="N",
      help=_h("batch_size", "most images per forward pass when requests arrive together; 1 turns batching off"))
    a("--batch-wait-ms", type=float, metavar="MS",
      help=_h("batch_wait_ms", "how long a forming batch may wait for requests still decoding (never when idle)"))
    a("--max-queue", type=int, metavar="N", help=_h("max_queue", "images waiting for inference before 503 + Retry-After"))
    a("--cache-entries", type=int, metavar="N",
      help=_h("cache_entries", "result cache size (same photo again = no inference); 0 turns it off"))
    a("--cache-mb", type=float, metavar="MB", help=_h("cache_mb", "result cache memory bound"))
    a("--shutdown-timeout", type=float, metavar="S",
      help=_h("shutdown_timeout", "seconds to finish in-flight requests on shutdown"))
    a("--log-level", choices=("critical", "error", "warning", "info", "debug"), help=_h("log_level", "log verbosity"))


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``serve`` on the ``wanwu`` command's subparsers."""
    parser = subparsers.add_parser(
        "serve", help="run the web UI and HTTP API", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    names = ServerConfig.__dataclass_fields__
    return ServerConfig.from_env(**{k: v for k, v in vars(args).items() if k in names})


def _setup_logging(level: str) -> None:
    """wanwu's log lines at ``level``; a handler only when nobody (e.g. ``wanwu``'s main) set one."""
    logger = logging.getLogger("wanwu")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)-8s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level.upper())


def _make_server(config: Any, on_exit: Callable[[], None]) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn, plus: report not-ready the moment a shutdown signal arrives, log the URL once
        the port is bound, and exit normally (status 0) after a graceful shutdown."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            on_exit()
            super().handle_exit(sig, frame)
            getattr(self, "_captured_signals", []).clear()  # do not re-raise the signal afterwards

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started and self.servers:
                host, port = self.servers[0].sockets[0].getsockname()[:2]
                shown = f"[{host}]" if ":" in host else host
                log.info("wanwu is ready at http://%s:%s (API reference: /docs)", shown, port)

    return Server(config)


def run(args: argparse.Namespace) -> int:
    """Start the server and block until it stops. 0 after a normal shutdown."""
    try:
        config = config_from_args(args)
    except WanwuError as exc:
        print(f"wanwu serve: error: {exc.message}", file=sys.stderr)
        return 2
    _setup_logging(config.log_level)

    import uvicorn

    from .server import InferenceService, create_app

    log.info("loading %s (%s, %s)…", config.model, config.engine, config.precision)
    service = InferenceService(config)
    try:
        service.start()
    except WanwuError as exc:
        log.error("cannot load %s: %s", config.model, exc.message)
        service.close()
        return 1
    app = create_app(config, service=service)
    uv_config = uvicorn.Config(
        app, host=config.host, port=config.port, log_level=config.log_level, lifespan="on",
        timeout_graceful_shutdown=max(1, math.ceil(config.shutdown_timeout)), server_header=False,
    )
    server = _make_server(uv_config, service.begin_drain)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits on bind errors, after logging them
        code = exc.code if isinstance(exc.code, int) else 1
        if code:
            log.error("the server could not start on %s:%s (is the port in use? try --port)", config.host, config.port)
        return code
    return 0 if server.started else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="wanwu serve", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
