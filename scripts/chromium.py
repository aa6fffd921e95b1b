"""Debian's chromium for Playwright, as the screenshot scripts and the browser tests launch it:
the binary (never downloaded: ``WANWU_CHROMIUM``, else /usr/bin/chromium, else on PATH) and the
arguments that keep it offline and quiet."""

from __future__ import annotations

import os
import shutil

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The chromium to launch, or None when there is none (a ``WANWU_CHROMIUM`` that is not an
    executable counts as none)."""
    explicit = os.environ.get("WANWU_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")
