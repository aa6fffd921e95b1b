"""Where wanwu keeps things on disk (all overridable by environment variables: wanwu's own are
read through ``wanwu.environment``)."""

from __future__ import annotations

import os
from pathlib import Path

from . import environment


def cache_dir() -> Path:
    """ONNX exports and small bookkeeping files: ``$WANWU_CACHE_DIR`` or ``~/.cache/wanwu``."""
    env = environment.env_value("cache_dir")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "wanwu"


def weights_dirs() -> list[Path]:
    """Folders searched for official weight files by name, in order: ``$WANWU_WEIGHTS_DIR``
    (``os.pathsep``-separated), then the torch hub cache (``$TORCH_HOME/hub/checkpoints``)."""
    dirs = [Path(p).expanduser() for p in environment.env_value("weights_dir").split(os.pathsep) if p]
    dirs.append(torch_hub_checkpoints())
    return dirs


def torch_hub_checkpoints() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(base, "torch")
    return Path(torch_home).expanduser() / "hub" / "checkpoints"


def display_path(path: str | os.PathLike, base: str | os.PathLike | None = None) -> str:
    """``path`` as a generated report should print it, without this machine's layout: relative
    to ``base`` (default: the working directory, the repository when a report is regenerated)
    when inside it, else ``~/...`` under the home folder, else relative when it is a near
    neighbour (at most two ``..``), else as given."""
    given = os.fspath(path)
    p = Path(given).expanduser().absolute()
    root = Path(base if base is not None else os.getcwd()).absolute()
    if p == root or root in p.parents:
        return os.path.relpath(p, root)
    home = Path(os.path.expanduser("~")).absolute()
    if home != Path("/") and (p == home or home in p.parents):
        return "~" + os.sep + os.path.relpath(p, home) if p != home else "~"
    rel = os.path.relpath(p, root)
    return rel if rel.split(os.sep).count("..") <= 2 else given


def user_path(path: str | os.PathLike) -> str:
    """``path`` as a message to the user prints it, so that it can be pasted into a shell
    anywhere: ``~/...`` under the home folder, else absolute (never relative to the working
    directory, which a ``cache/onnx`` without ``./`` reads as if it were somewhere else)."""
    p = Path(os.fspath(path)).expanduser().absolute()
    home = Path(os.path.expanduser("~")).absolute()
    if home != Path("/") and home in p.parents:
        return "~" + os.sep + os.path.relpath(p, home)
    return str(p)


def display_text(text: str) -> str:
    """``text`` with the home folder written as ``~`` (for messages that embed a path)."""
    home = os.path.expanduser("~").rstrip(os.sep)
    return text.replace(home + os.sep, "~" + os.sep) if home else text
