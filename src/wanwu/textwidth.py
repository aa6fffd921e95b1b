"""Column widths of text in a terminal: CJK (East Asian wide and full-width) characters take two
columns, combining marks none. ``str.ljust`` counts characters, which misaligns 虎斑猫 against
``tabby``; tables that may hold Chinese pad with ``ljust`` from here."""

from __future__ import annotations

import unicodedata


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def ljust(text: str, width: int) -> str:
    """``text`` padded with spaces to ``width`` columns."""
    return text + " " * max(0, width - display_width(text))
