"""Saving the certificate list (一覧保存) as a CSV file that Excel opens correctly.

The file is RFC 4180 CSV as Excel for Japanese Windows expects it: UTF-8 with a byte order
mark (without it Excel reads the bytes as CP932 and the Japanese turns to garbage), CRLF line
ends, fields quoted when they hold a comma, a quote or a line break, Japanese headers, and
dates as ``YYYY/MM/DD`` in Japan time (UTC+9, no daylight saving time).  Every text cell that
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'`` so a
spreadsheet shows it as text instead of running it as a formula (CSV/formula injection, OWASP):
the rows go through :func:`shomei.spreadsheet.excel_writer`, as every CSV of the product does.

Rows are read with the keyset paging of :mod:`ra.queries`, one chunk at a time, and written
as they come, so a list of any length is saved in constant memory.  Run it in a
REPEATABLE READ (PostgreSQL) or a single transaction (SQLite) for a snapshot; under READ
COMMITTED an application added meanwhile is newer than every cursor and is simply not in the file.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable
from typing import BinaryIO

from sqlalchemy.orm import Session

from ra.lifecycle import Applicant, Status
from ra.party import Party, Permission, require
from ra.queries import ApplicantType, Cursor, ListRow, fetch_page, make_filters
from shomei.errors import MalformedInput
from shomei.spreadsheet import excel_writer, safe_cell

JST = dt.timezone(dt.timedelta(hours=9), "JST")
BOM = "\ufeff".encode()

HEADERS: tuple[str, ...] = (
    "申請番号",
    "ユーザID",
    "事業所番号",
    "事業所名",
    "申請者",
    "状況番号",
    "状況",
    "申請年月日",
    "有効開始年月日",
    "有効終了年月日",
    "失効年月日",
)

MAX_CHUNK = 500
__all__ = ["BOM", "HEADERS", "csv_fields", "export_csv", "japan_date", "safe_cell"]


def japan_date(value: dt.datetime | None) -> str:
    """``YYYY/MM/DD`` of an aware datetime in Japan time; empty for None."""
    return "" if value is None else value.astimezone(JST).strftime("%Y/%m/%d")


def csv_fields(row: ListRow) -> list[str]:
    """The cells of one list row, in :data:`HEADERS` order."""
    return [
        str(row.application_id),
        safe_cell(row.user_id),
        safe_cell(row.office_number or ""),
        safe_cell(row.office_name),
        row.applicant_type_label_ja,
        str(row.status_number),
        row.status_label_ja,
        japan_date(row.applied_at),
        japan_date(row.not_before),
        japan_date(row.not_after),
        japan_date(row.revoked_at),
    ]


def _encode(lines: Iterable[list[str]]) -> bytes:
    buffer = io.StringIO()
    excel_writer(buffer).writerows(lines)
    return buffer.getvalue().encode("utf-8")


def export_csv(
    session: Session,
    party: Party,
    *,
    out: BinaryIO,
    applicant_types: Iterable[ApplicantType | Applicant | str] | None = None,
    user_id: str | None = None,
    user_id_match: str = "prefix",
    statuses: Iterable[Status | str] | None = None,
    chunk_size: int = MAX_CHUNK,
) -> int:
    """Write every row the list matches to ``out`` as CSV (newest first); return the count.

    The conditions are those of :func:`ra.queries.list_applications`.  They are checked before
    anything is written: bad conditions, or a ``chunk_size`` outside 1..500, raise
    :class:`MalformedInput` and leave ``out`` untouched.  The header row is written even when
    nothing matches.  A party that may not see every application is
    :class:`~shomei.errors.NotPermitted`, before anything is written.
    """
    require(party, Permission.VIEW_ALL_APPLICATIONS)
    filters = make_filters(
        applicant_types=applicant_types,
        user_id=user_id,
        user_id_match=user_id_match,
        statuses=statuses,
    )
    if (
        not isinstance(chunk_size, int)
        or isinstance(chunk_size, bool)
        or not 1 <= chunk_size <= MAX_CHUNK
    ):
        raise MalformedInput(
            f"chunk size must be an integer from 1 to {MAX_CHUNK}",
            message_ja=f"一度に読む件数は1から{MAX_CHUNK}までの数で指定してください",
            field="chunk_size",
        )
    out.write(BOM + _encode([list(HEADERS)]))
    written = 0
    cursor: Cursor | None = None
    while True:
        page = fetch_page(session, filters, page_size=chunk_size, after=cursor)
        if page.rows:
            out.write(_encode(csv_fields(r) for r in page.rows))
            written += len(page.rows)
        if page.next_cursor is None:
            return written
        cursor = page.next_cursor
