"""How a person installs wanwu and its extras: the distribution's name on the package index, in
one place. ``wanwu`` on PyPI is an unrelated project, so the distribution is ``wanwu-tagger``;
the package you import and the command you run stay ``wanwu``."""

from __future__ import annotations

DISTRIBUTION = "wanwu-tagger"


def pip_install(extra: str | None = None) -> str:
    """The pip command that installs wanwu, or one of its extras (``heif``, ``faces``, ``ray`` ...)."""
    return f"pip install '{DISTRIBUTION}[{extra}]'" if extra else f"pip install {DISTRIBUTION}"
