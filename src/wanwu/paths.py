"""Where wanwu keeps things on disk (all overridable by environment variables)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """ONNX exports and small bookkeeping files: ``$WANWU_CACHE_DIR`` or ``~/.cache/wanwu``."""
    env = os.environ.get("WANWU_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "wanwu"


def weights_dirs() -> list[Path]:
    """Folders searched for official weight files by name, in order: ``$WANWU_WEIGHTS_DIR``
    (``os.pathsep``-separated), then the torch hub cache (``$TORCH_HOME/hub/checkpoints``)."""
    dirs = [Path(p).expanduser() for p in os.environ.get("WANWU_WEIGHTS_DIR", "").split(os.pathsep) if p]
    dirs.append(torch_hub_checkpoints())
    return dirs


def torch_hub_checkpoints() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(base, "torch")
    return Path(torch_home).expanduser() / "hub" / "checkpoints"
