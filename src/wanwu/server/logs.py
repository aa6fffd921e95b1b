"""Where ``wanwu serve``'s log lines go: all of them to stderr (stdout is for what a user asked
for, and ``serve`` prints nothing there), uvicorn's access log included, which uvicorn sends
to stdout by default.

uvicorn logs a request's access line before it writes the response: formatting and writing it
held the answer back by ~0.15 ms of a lone request (benchmarks/server_latency.py; the server adds
~1.5 ms in all). The access handler defers that work to the event loop's next turn, so the
answer leaves first (~0.07 ms remain before it: uvicorn building the record) and the lines
follow in the same order as ever. (A logging thread did no better: it takes the GIL from the
loop just as the loop writes the answer.)
"""

from __future__ import annotations

import asyncio
import copy
import logging
import sys
from typing import Any


def setup_logging(level: str) -> None:
    """wanwu's log lines at ``level``, on stderr; a handler only when nobody (e.g. ``wanwu``'s
    main) set one."""
    logger = logging.getLogger("wanwu")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)-8s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level.upper())


class AfterThisTurnHandler(logging.StreamHandler):
    """A stderr handler that, called on a running event loop, formats and writes the record
    once the loop's current callback (the request's task step that sends the answer) is done."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the event loop: write now
            super().emit(record)
            return
        loop.call_soon(super().emit, record)


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration, with the access log on stderr through an
    ``AfterThisTurnHandler``."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"] = {**config["formatters"]["access"], "use_colors": sys.stderr.isatty()}
    config["handlers"]["access"] = {"()": AfterThisTurnHandler, "formatter": "access"}
    return config
