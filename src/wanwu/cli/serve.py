"""``wanwu serve``: argument parsing and running uvicorn. ``wanwu.cli`` calls ``add_parser``, which
makes ``run`` the command's function; ``python -m wanwu.cli.serve`` runs it on its own. The
flags are generated from ``ServerConfig``'s table (``wanwu.server.config``: the model settings
it shares with ``classify`` and the server's own), each with its help, variable and default."""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import socket
import sys
import time
from dataclasses import fields
from typing import Any

from .. import settings
from ..errors import EXIT_FAILED, WanwuError
from ..server.config import ServerConfig, key_file_mode_if_public
from .args import ArgumentParser

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
  wanwu serve --api-key-file ~/.wanwu-key --host 0.0.0.0
                                               # reachable from other machines, key required
  wanwu serve --api-key-file /run/secrets/wanwu --cors-origin https://photos.example
  wanwu serve --library                        # + the Library view of `wanwu index`'s catalogue

then:
  open http://127.0.0.1:8080 in a browser (it asks for the key once, if there is one), or
  curl -F file=@cat.jpg 'http://127.0.0.1:8080/api/v1/classify?top_k=3'
  curl -T cat.jpg http://127.0.0.1:8080/predictions/efficientnet_lite0
  curl -H "Authorization: Bearer $KEY" -F file=@cat.jpg http://127.0.0.1:8080/api/v1/classify
  API reference: http://127.0.0.1:8080/docs

access (with an API key): every route needs 'Authorization: Bearer <key>' except the web
UI (/, /static/*), the probes (/ping, /v2/health/live, /v2/health/ready), the API
description (/docs, /openapi.json) and, with --metrics-public, /metrics. Give the key with
--api-key-file FILE (or WANWU_API_KEY), not --api-key KEY: every user of the machine can
read a process's command line (`ps`), and the shell keeps it in its history.

shutdown (SIGTERM or Ctrl+C): the server reports not ready, answers new requests 503,
finishes the requests in flight (at most --shutdown-timeout seconds) and exits with 0.
A second signal stops it sooner.

exit status: 0 after a shutdown, 1 the server could not start (the port is in use or not
ours to take -- checked before the model loads -- or the model cannot load), 2 usage error
(an unknown option or --model, a bad WANWU_* value).

Every option can also be set by the environment variable shown with it; a flag wins
over the environment."""


# the model settings as the server words them (the others keep the help of wanwu.settings)
MODEL_HELP = {
    "model": "default model (see `wanwu models`); others load on first use",
    "weights": "weights file for --model instead of the official one",
    "threads": "threads per forward pass; auto = all cores this process may use",
    "max_pixels": "most pixels decoded per image (e.g. 40M; baseline JPEGs count at their reduced "
    "decoding scale), checked from the header (413 above)",
    "top_k": "predictions per image when a request does not say",
}
# settings without a flag: each request says its language (?lang=, Accept-Language); WANWU_LANG
# only sets the server's fallback
NOT_FLAGS = ("lang",)
ACCESS = ("api_key", "api_key_file", "metrics_public", "cors_origins")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` options, one per ``ServerConfig`` field (but ``NOT_FLAGS``), generated from
    its table: the server's own, the model options, then access control. Each defaults to None
    so that the environment can fill it in."""
    own = [f.name for f in fields(ServerConfig) if f.name not in settings.MODEL_SETTINGS]
    settings.add_arguments(parser, [n for n in own if n not in ACCESS], settings=ServerConfig)
    settings.add_arguments(
        parser.add_argument_group("model options"),
        [n for n in settings.MODEL_SETTINGS if n not in NOT_FLAGS],
        settings=ServerConfig,
        help=MODEL_HELP,
    )
    settings.add_arguments(parser.add_argument_group("access control"), ACCESS, settings=ServerConfig)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``serve`` (and ``run`` as what it does) on the ``wanwu`` command's subparsers."""
    parser = subparsers.add_parser(
        "serve",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig.from_args(args)


def _make_server(config: Any, service: Any, in_flight: Any, drain_timeout: float) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn with a drain phase: on the first SIGTERM/SIGINT the server reports not
        ready and answers new requests 503 (``DrainMiddleware``) but keeps listening, so probes
        see it; once no request is in flight (or after ``drain_timeout``) uvicorn's own
        shutdown closes the socket. A second signal skips the rest of the drain. Exits with
        status 0 after a graceful shutdown, and logs the URL once the port is bound."""

        drain_started: float | None = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            service.begin_drain()
            if self.drain_started is None and not self.should_exit:
                self.drain_started = time.monotonic()
                log.info(
                    "%s: draining (%d request(s) in flight, at most %g s)",
                    signal.Signals(sig).name,
                    in_flight.count,
                    drain_timeout,
                )
            else:
                super().handle_exit(sig, frame)
            getattr(self, "_captured_signals", []).clear()  # do not re-raise the signal afterwards

        async def on_tick(self, counter: int) -> bool:
            if self.drain_started is not None and not self.should_exit:
                waited = time.monotonic() - self.drain_started
                if in_flight.count == 0 or waited >= drain_timeout:
                    if in_flight.count:
                        log.warning("shutdown timeout: %d request(s) still in flight are cut off", in_flight.count)
                    self.should_exit = True
            return await super().on_tick(counter)

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started and self.servers:
                host, port = self.servers[0].sockets[0].getsockname()[:2]
                shown = f"[{host}]" if ":" in host else host
                log.info("wanwu is ready at http://%s:%s (API reference: /docs)", shown, port)

    return Server(config)


def _log_access(config: ServerConfig) -> None:
    """Say who may call the API (never the key itself)."""
    if config.api_key_file is not None and (mode := key_file_mode_if_public(config.api_key_file)) is not None:
        log.warning(
            "the API key file %s can be read by every user of this machine (mode %04o): chmod 600 it "
            "if others use this machine",
            config.api_key_file,
            mode,
        )
    if config.api_key is not None:
        open_metrics = " and /metrics" if config.metrics_public else ""
        log.info(
            "API key required (Authorization: Bearer); open without it: the web UI, /docs, "
            "/openapi.json, /ping, /v2/health/*%s",
            open_metrics,
        )
    elif config.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "listening on %s without an API key: anyone who can reach this port may use the API "
            "(set WANWU_API_KEY or --api-key-file)",
            config.host,
        )
    if config.cors_origins:
        log.info("CORS: browser pages from %s may call the API", ", ".join(config.cors_origins))


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on ``host:port`` (in use, not allowed, no such address),
    or None. A bind test, as uvicorn binds (SO_REUSEADDR), before seconds go into loading the model."""
    if port == 0:
        return None  # any free port
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError, OverflowError) as exc:
        return f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc} (check --host / WANWU_HOST)"
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                why = "the port is in use (stop what listens there, or choose another with --port / WANWU_PORT)"
            elif exc.errno == errno.EACCES:
                why = "permission denied (ports below 1024 need privileges: choose another with --port)"
            else:
                why = f"{exc.strerror or exc} (check --host / WANWU_HOST)"
            return f"cannot listen on {host}:{port}: {why}"
    return None


def run(args: argparse.Namespace) -> int:
    """Start the server and block until it stops. 0 after a normal shutdown, 1 if it cannot start."""
    try:
        config = config_from_args(args)
    except WanwuError as exc:
        print(
            f"wanwu serve: error: {exc.text(settings.resolve_lang(getattr(args, 'lang', None), strict=False))}",
            file=sys.stderr,
        )
        return exc.exit_status
    problem = port_problem(config.host, config.port)
    if problem:
        print(f"wanwu serve: error: {problem}", file=sys.stderr)
        return EXIT_FAILED
    from ..server.logs import setup_logging, uvicorn_log_config

    setup_logging(config.log_level)
    config.export_cache_dir()

    import uvicorn

    from ..server import InferenceService, create_app
    from ..server.http_protocol import header_deadline_protocol
    from ..server.memory import tune_malloc

    tune_malloc()
    log.info("loading %s (%s, %s)…", config.model, config.engine, config.precision)
    service = InferenceService(config)
    try:
        service.start()
    except WanwuError as exc:
        log.error("cannot load %s: %s", config.model, exc.message)
        service.close()
        return exc.exit_status
    try:
        app = create_app(config, service=service)
    except WanwuError as exc:  # e.g. --library without a catalogue
        log.error("%s", exc.message)
        service.close()
        return exc.exit_status
    if app.state.library is not None:
        log.info("photo library: %s (the Library view: /#library)", app.state.library.db_path)
    _log_access(config)
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        log_config=uvicorn_log_config(),  # access lines on stderr, each after its answer
        lifespan="on",
        http=header_deadline_protocol(config.body_timeout),
        limit_concurrency=config.max_connections,
        # the drain phase (above) already waited for in-flight requests; this bounds what is left
        timeout_graceful_shutdown=1,
        server_header=False,
    )
    server = _make_server(uv_config, service, app.state.in_flight, config.shutdown_timeout)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits on bind errors, after logging them
        code = exc.code if isinstance(exc.code, int) else 1
        if code:
            log.error("the server could not start on %s:%s (is the port in use? try --port)", config.host, config.port)
        return code
    return 0 if server.started else 1


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="wanwu serve",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
