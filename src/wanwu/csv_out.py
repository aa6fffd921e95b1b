"""CSV as spreadsheets read it: every CSV wanwu writes (``wanwu classify --format csv``,
``wanwu search --format csv``, ``wanwu library --export x.csv``) starts with a UTF-8 byte-order
mark. Excel (on Chinese Windows among others) reads a CSV without one in the system's code page
and garbles Chinese labels and file names; with it, Excel, LibreOffice, pandas and Python's
``utf-8-sig`` read UTF-8. A tool that does not expect it sees ``\\ufeff`` before the first
header name (``tail -n +2`` skips the header line with it)."""

from __future__ import annotations

import csv
from typing import Any, TextIO

BOM = "\ufeff"
HELP = "csv starts with a UTF-8 byte-order mark, so Excel reads Chinese text"


def writer(out: TextIO, header: list[str]) -> Any:
    """A ``csv.writer`` on ``out`` that has written the BOM and the header row."""
    out.write(BOM)
    w = csv.writer(out)
    w.writerow(header)
    return w
