"""Names of a package imported on first use (PEP 562): ``wanwu`` and ``wanwu.server`` export
classes whose modules pull NumPy, Pillow or FastAPI, and the ``wanwu`` command imports both
packages on every run."""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable


def lazy_names(package: str, homes: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``homes`` maps each name to the module
    (relative to the package) that defines it; a name, once imported, is kept in the package."""

    def getattr_(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = import_module(package)
        value = getattr(import_module(home, package), name)
        setattr(module, name, value)
        return value

    def dir_() -> list[str]:
        return sorted({*vars(import_module(package)), *homes})

    return getattr_, dir_
