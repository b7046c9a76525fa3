"""CSV files for spreadsheets: the one writer every CSV of the product goes through.

The certificate list, the fee-offset export (B11) and the verification report are opened in
Excel.  Excel runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, after a tab or
a carriage return, what follows) as a formula, so text from users, such as an office name
``=cmd|' /C calc'!A0``, could run commands on the reader's machine (CSV or formula injection,
OWASP).  :func:`safe_cell` prefixes such text with an apostrophe, which the spreadsheet shows
as text; the full-width forms Japanese input methods type are treated the same.  Numbers are
written as numbers (a negative amount stays a number).

:func:`excel_writer` writes RFC 4180 CSV with CRLF line ends and applies :func:`safe_cell` to
every text cell, so no caller can forget it.  The caller opens the file with the encoding
``utf-8-sig`` (UTF-8 with the byte-order mark, without which Excel reads CP932).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


class _Text(Protocol):
    def write(self, s: str, /) -> Any: ...


def safe_cell(value: str) -> str:
    """``value`` made inert for spreadsheets: a leading ``'`` before a formula start."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def safe_row(cells: Iterable[object]) -> list[object]:
    """The cells of one row: text through :func:`safe_cell`, numbers as they are, None empty."""
    out: list[object] = []
    for cell in cells:
        if cell is None:
            out.append("")
        elif isinstance(cell, bool):
            out.append(str(cell).lower())
        elif isinstance(cell, int | float):
            out.append(cell)
        else:
            out.append(safe_cell(str(cell)))
    return out


class ExcelWriter:
    """A ``csv.writer`` whose every row goes through :func:`safe_row`."""

    def __init__(self, out: _Text) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)

    def writerow(self, cells: Iterable[object]) -> None:
        self._writer.writerow(safe_row(cells))

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def excel_writer(out: _Text) -> ExcelWriter:
    """The CSV writer for a file a spreadsheet will open (see the module)."""
    return ExcelWriter(out)
