"""Saving the certificate list (一覧保存, docs/product.md §8) as CSV that Japanese Excel opens.

Encoding
    By default the file is CP932 (Windows-31J), what Excel for Japanese Windows reads a CSV
    as when it has no byte-order mark.  CP932 lacks some characters that can be stored (a
    rare kanji such as 𠮷, emoji): each is written as 〓 (the geta mark, the printers'
    sign for a missing character), so the loss is visible in the cell, and counted
    (:attr:`CsvStream.replaced`) so the screen can say how many were replaced.  The JIS
    characters whose Unicode form differs between the JIS and the Microsoft mappings
    (〜 U+301C, − U+2212, ‖ U+2016, — U+2014, ¢ £ ¬) are first written as the CP932
    character that looks the same (～ －  ∥ ― ￠ ￡ ￢), not as 〓.  ``encoding="utf-8-sig"``
    gives UTF-8 with a byte-order mark instead, which loses nothing (Excel needs the mark to
    read UTF-8).

Format
    RFC 4180 CSV as Excel expects it: CRLF line ends, fields quoted when they hold a comma, a
    quote or a line break, Japanese headers, the columns of the list screen first (申請番号,
    ユーザID, 事業所名, 事業所番号, 状況, 申請年月日, 手数料残高) and then the applicant type,
    the status number and the certificate's dates, dates as ``YYYY/MM/DD`` in Japan time
    (UTC+9), the fee balance as a plain number of yen.  Every text cell that starts with
    ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'`` so a
    spreadsheet shows it as text instead of running it as a formula (CSV/formula injection,
    OWASP): rows go through :func:`shomei.spreadsheet.excel_writer`, as every CSV of the
    product does.

Streaming
    :func:`csv_stream` is an iterator of byte chunks for a streamed web response: rows are
    read by one ordered statement (:func:`ra.desk.queries.iter_rows`: one consistent read of the
    search, fetched ``chunk_size`` rows at a time, through a server-side cursor on
    PostgreSQL), encoded ``chunk_size`` rows to a chunk and handed out, so a list of any
    length takes constant memory.  The session, and its transaction, must stay open until
    the iteration ends.  :func:`export_csv` writes the same chunks to a binary file.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO, Literal

from sqlalchemy.orm import Session

from ra.desk.queries import ApplicantType, ListFilters, ListRow, iter_rows, make_filters
from ra.lifecycle import Applicant, Status
from ra.party import Party, Permission, require
from shomei.errors import MalformedInput
from shomei.spreadsheet import excel_writer, safe_cell

JST = dt.timezone(dt.timedelta(hours=9), "JST")
BOM = "\ufeff".encode()
GETA = "〓"  # written for a character CP932 cannot encode
Encoding = Literal["cp932", "utf-8-sig"]
ENCODINGS: tuple[str, ...] = ("cp932", "utf-8-sig")

HEADERS: tuple[str, ...] = (
    "申請番号",
    "ユーザID",
    "事業所名",
    "事業所番号",
    "状況",
    "申請年月日",
    "手数料残高",
    "申請者",
    "状況番号",
    "有効開始年月日",
    "有効終了年月日",
    "失効年月日",
)

MAX_CHUNK = 500
__all__ = [
    "BOM",
    "GETA",
    "HEADERS",
    "CsvStream",
    "csv_fields",
    "csv_stream",
    "export_csv",
    "japan_date",
    "safe_cell",
]

# JIS X 0208 characters that the JIS and the Microsoft mappings of Shift_JIS give different
# Unicode forms (text typed on a Mac or converted from EUC-JP holds the JIS ones); CP932 has
# the look-alike on the right.
_TO_CP932: dict[str, str] = {
    "\u301c": "\uff5e",  # 〜 wave dash -> ～
    "\u2212": "\uff0d",  # − minus sign -> －
    "\u2016": "\u2225",  # ‖ double vertical line -> ∥
    "\u2014": "\u2015",  # — em dash -> ―
    "\u00a2": "\uffe0",  # ¢ -> ￠
    "\u00a3": "\uffe1",  # £ -> ￡
    "\u00ac": "\uffe2",  # ¬ -> ￢
}
# A search (in C) first: str.translate looks every character up in Python.
_JIS_ONLY = re.compile("[" + "".join(_TO_CP932) + "]")
_GETA_CP932 = GETA.encode("cp932")


def japan_date(value: dt.datetime | None) -> str:
    """``YYYY/MM/DD`` of an aware datetime in Japan time; empty for None."""
    if value is None:
        return ""
    day = value.astimezone(JST)
    return f"{day.year:04d}/{day.month:02d}/{day.day:02d}"


def csv_fields(row: ListRow) -> list[str]:
    """The cells of one list row, in :data:`HEADERS` order."""
    return [
        str(row.application_id),
        safe_cell(row.user_id),
        safe_cell(row.office_name),
        safe_cell(row.office_number or ""),
        row.status_label_ja,
        japan_date(row.applied_at),
        str(row.fee_balance_yen),
        row.applicant_type_label_ja,
        str(row.status_number),
        japan_date(row.not_before),
        japan_date(row.not_after),
        japan_date(row.revoked_at),
    ]


def encode_cp932(text: str) -> tuple[bytes, int]:
    """``text`` in CP932 with 〓 for each character it lacks; and how many were replaced."""
    if _JIS_ONLY.search(text):
        text = _JIS_ONLY.sub(lambda m: _TO_CP932[m.group()], text)
    out = bytearray()
    replaced = 0
    pos = 0
    while True:
        try:
            out += text[pos:].encode("cp932")
            return bytes(out), replaced
        except UnicodeEncodeError as exc:  # start and end are relative to text[pos:]
            out += text[pos : pos + exc.start].encode("cp932")
            out += _GETA_CP932 * (exc.end - exc.start)
            replaced += exc.end - exc.start
            pos += exc.end


def _check_encoding(encoding: object) -> Encoding:
    if encoding == "cp932":
        return "cp932"
    if encoding == "utf-8-sig":
        return "utf-8-sig"
    raise MalformedInput(
        f"the CSV encoding must be one of {', '.join(ENCODINGS)}",
        message_ja="文字コードは CP932（Shift_JIS）か UTF-8（BOM付き）を選んでください",
        field="encoding",
    )


def _check_chunk(chunk_size: object) -> int:
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
    return chunk_size


class CsvStream:
    """The CSV file as an iterator of byte chunks: the header, then one chunk per read.

    :attr:`rows` and :attr:`replaced` (characters written as 〓) count what has been handed
    out so far; both are final once the iteration ends.  Iterate it once.
    """

    def __init__(
        self, session: Session, filters: ListFilters, *, encoding: Encoding, chunk_size: int
    ) -> None:
        self.encoding: Encoding = encoding
        self.rows = 0
        self.replaced = 0
        self._session = session
        self._filters = filters
        self._chunk_size = chunk_size
        self._chunks = self._generate()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def _encode(self, lines: Iterable[list[str]]) -> bytes:
        buffer = io.StringIO()
        excel_writer(buffer).writerows(lines)
        if self.encoding == "utf-8-sig":
            return buffer.getvalue().encode("utf-8")
        data, replaced = encode_cp932(buffer.getvalue())
        self.replaced += replaced
        return data

    def _generate(self) -> Iterator[bytes]:
        header = self._encode([list(HEADERS)])
        yield BOM + header if self.encoding == "utf-8-sig" else header
        chunk: list[ListRow] = []
        for row in iter_rows(self._session, self._filters, batch=self._chunk_size):
            chunk.append(row)
            if len(chunk) == self._chunk_size:
                yield self._flush(chunk)
        if chunk:
            yield self._flush(chunk)

    def _flush(self, chunk: list[ListRow]) -> bytes:
        data = self._encode(csv_fields(r) for r in chunk)
        self.rows += len(chunk)
        chunk.clear()
        return data


def csv_stream(
    session: Session,
    party: Party,
    filters: ListFilters,
    *,
    encoding: str = "cp932",
    chunk_size: int = MAX_CHUNK,
) -> CsvStream:
    """Every row of the search ``filters`` as CSV byte chunks (newest first); see the module.

    The arguments are checked here, before the first chunk: an unknown encoding or a
    ``chunk_size`` outside 1..500 raises :class:`MalformedInput`; a party that may not see
    every application is :class:`~shomei.errors.NotPermitted`.
    """
    require(party, Permission.VIEW_ALL_APPLICATIONS)
    return CsvStream(
        session, filters, encoding=_check_encoding(encoding), chunk_size=_check_chunk(chunk_size)
    )


def export_csv(
    session: Session,
    party: Party,
    *,
    out: BinaryIO,
    applicant_types: Iterable[ApplicantType | Applicant | str] | None = None,
    user_id: str | None = None,
    user_id_match: str = "prefix",
    statuses: Iterable[Status | str] | None = None,
    encoding: str = "cp932",
    chunk_size: int = MAX_CHUNK,
) -> int:
    """Write every row the list matches to ``out`` as CSV (newest first); return the count.

    The conditions are those of :func:`ra.desk.queries.list_applications`.  They are checked before
    anything is written: bad conditions, an unknown encoding or a ``chunk_size`` outside
    1..500 raise :class:`MalformedInput` and leave ``out`` untouched.  The header row is
    written even when nothing matches.  A party that may not see every application is
    :class:`~shomei.errors.NotPermitted`, before anything is written.
    """
    require(party, Permission.VIEW_ALL_APPLICATIONS)
    filters = make_filters(
        applicant_types=applicant_types,
        user_id=user_id,
        user_id_match=user_id_match,
        statuses=statuses,
    )
    stream = csv_stream(session, party, filters, encoding=encoding, chunk_size=chunk_size)
    for chunk in stream:
        out.write(chunk)
    return stream.rows
