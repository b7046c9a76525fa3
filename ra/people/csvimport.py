"""Bulk creation of office and agent accounts from a CSV file (docs/product.md §3).

The file has a header row and one account per row (RFC 4180 CSV).  It may be UTF-8, with or
without the byte-order mark Excel writes, or CP932 (Shift_JIS as Windows writes it): UTF-8 is
tried first because CP932 text is almost never valid UTF-8, while UTF-8 Japanese text is
often "valid" CP932 mojibake.

Columns, by Japanese or English header (any order; unknown headers are refused)::

    種別 kind            事業所/office or 代理人/agent
    番号 number          事業所番号 or 代理人番号, 10 digits (事業所番号 also accepted)
    名称 name            office or agent name
    郵便番号 postal_code  optional
    住所 address
    電話番号 phone
    代表者番号 representative_number   optional
    メールアドレス email
    フリガナ name_kana   optional: the name in kana, asked for at the first sign-in
                         (名称カナ and カナ are accepted too)

Every row is checked before anything is written, and the report names every bad row (its line
in the file), the column and the reason in English and Japanese: a bad number, a number twice
in the file, a number already registered, a missing name, a bad mail address...  When any row
is bad nothing is imported; otherwise all accounts are created in the caller's transaction
and returned with their one-time passwords, for the letters.

The slow part is the argon2id hashing of two passwords per account (deliberately costly); it
runs on every core before anything is written (:func:`ra.people.passwords.hash_passwords`) and
reports its progress, so a thousand rows are neither silent nor half-imported.  The command line
runs it all at once (:func:`import_accounts`); the console checks the file in the request and
leaves the hashing and the creation to a background run (:mod:`ra.people.import_runs`), through
the same :func:`passwords_for` and :func:`create_accounts`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ra.party import Party, Permission, require
from ra.people.accounts import (
    AccountInput,
    NewAccount,
    PortalPasswords,
    add_portal_account,
    new_portal_passwords,
    number_taken,
)
from ra.people.passwords import Rng, hash_passwords
from ra.store.models import AccountKind
from shomei.errors import MalformedInput

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 50_000

HEADERS: dict[str, str] = {
    "種別": "kind",
    "番号": "number",
    "事業所番号": "number",
    "名称": "name",
    "郵便番号": "postal_code",
    "住所": "address",
    "電話番号": "phone",
    "代表者番号": "representative_number",
    "メールアドレス": "email",
    "フリガナ": "name_kana",
    "名称カナ": "name_kana",
    "カナ": "name_kana",
}
HEADERS.update({v: v for v in set(HEADERS.values())})
REQUIRED = ("kind", "number", "name", "address", "phone", "email")
KINDS = {
    "事業所": AccountKind.OFFICE,
    "office": AccountKind.OFFICE,
    "代理人": AccountKind.AGENT,
    "agent": AccountKind.AGENT,
}


@dataclass(frozen=True)
class RowProblem:
    """One problem of the file: its line (1 is the header), the column and why."""

    row: int
    column: str
    message: str
    message_ja: str

    def line(self, lang: str = "en") -> str:
        """One line of the report, e.g. ``row 3, number: must be 10 digits``."""
        if lang == "ja":
            return f"{self.row} 行目 {self.column}: {self.message_ja}"
        return f"row {self.row}, {self.column}: {self.message}"


class ImportRefused(MalformedInput):
    """The CSV had bad rows; ``problems`` lists each.  Nothing was imported."""

    code = "csv_rejected"

    def __init__(self, problems: list[RowProblem]) -> None:
        super().__init__(
            f"{len(problems)} problem(s) in the CSV file; nothing was imported",
            message_ja=f"CSV ファイルに {len(problems)} 件の誤りがあります。1 件も登録していません",
            problems=problems,
        )
        self.problems = problems


def decode(data: bytes) -> str:
    """The text of an uploaded CSV: UTF-8 (BOM optional) or CP932, else MalformedInput."""
    if len(data) > MAX_BYTES:
        raise MalformedInput(
            f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB",
            message_ja=f"ファイルが大きすぎます({MAX_BYTES // (1024 * 1024)} MiB まで)",
        )
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise MalformedInput(
        "the file is neither UTF-8 nor CP932 (Shift_JIS) text",
        message_ja="ファイルの文字コードが UTF-8 でも Shift_JIS(CP932)でもありません",
    )


def parse(data: bytes) -> tuple[list[tuple[int, AccountInput]], list[RowProblem]]:
    """The rows of the file as account inputs with their line numbers, and the problems."""
    text = decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    problems: list[RowProblem] = []
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise MalformedInput(f"not a CSV file: {exc}", message_ja="CSV として読めません") from exc
    if not header or not any(cell.strip() for cell in header):
        raise MalformedInput("the file is empty", message_ja="ファイルが空です")
    columns: list[str] = []
    for cell in header:
        name = HEADERS.get(cell.strip())
        if name is None:
            problems.append(RowProblem(1, cell, "unknown column", f"列名「{cell}」は使えません"))
        elif name in columns:
            problems.append(
                RowProblem(1, cell, "column given twice", f"列「{cell}」が重複しています")
            )
        columns.append(name or "")
    for required in REQUIRED:
        if required not in columns:
            problems.append(
                RowProblem(1, required, "required column is missing", "必須の列がありません")
            )
    if problems:
        return [], problems

    rows: list[tuple[int, AccountInput]] = []
    line = 1
    try:
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # Excel leaves empty lines at the end
            if len(rows) >= MAX_ROWS:
                raise MalformedInput(
                    f"more than {MAX_ROWS} rows", message_ja=f"{MAX_ROWS} 行を超えています"
                )
            if len(cells) != len(columns):
                problems.append(
                    RowProblem(
                        line,
                        "*",
                        f"{len(cells)} cells where the header has {len(columns)}",
                        f"列の数が {len(cells)} です(見出しは {len(columns)} 列)",
                    )
                )
                continue
            values = {c: v.strip() for c, v in zip(columns, cells, strict=True)}
            kind = KINDS.get(values["kind"])
            if kind is None:
                problems.append(
                    RowProblem(
                        line,
                        "kind",
                        f"kind must be 事業所/office or 代理人/agent, not {values['kind']!r}",
                        f"種別は「事業所」か「代理人」です({values['kind']!r})",
                    )
                )
                continue
            rows.append(
                (
                    line,
                    AccountInput(
                        kind=kind,
                        number=values["number"],
                        name=values["name"],
                        address=values["address"],
                        phone=values["phone"],
                        email=values["email"],
                        representative_number=values.get("representative_number", ""),
                        postal_code=values.get("postal_code", ""),
                        name_kana=values.get("name_kana", ""),
                    ),
                )
            )
    except csv.Error as exc:
        raise MalformedInput(
            f"line {line + 1}: not readable CSV: {exc}",
            message_ja=f"{line + 1} 行目: CSV として読めません",
        ) from exc
    return rows, problems


def check(session: Session, party: Party, data: bytes) -> list[tuple[int, AccountInput]]:
    """The rows of ``data`` with their lines, every row checked; writes nothing.

    Raises :class:`ImportRefused` listing every problem of every row (the console shows them
    before anything is created), or :class:`MalformedInput` for a file that is not a CSV.
    """
    require(party, Permission.MANAGE_PORTAL_ACCOUNTS)
    rows, problems = parse(data)
    seen: dict[str, int] = {}
    for line, row in rows:
        problems.extend(RowProblem(line, p.column, p.message, p.message_ja) for p in row.problems())
        if row.number in seen:
            problems.append(
                RowProblem(
                    line,
                    "number",
                    f"number {row.number} is also on row {seen[row.number]}",
                    f"番号 {row.number} が {seen[row.number]} 行目と重複しています",
                )
            )
        else:
            seen[row.number] = line
            if number_taken(session, row.number):
                problems.append(
                    RowProblem(
                        line,
                        "number",
                        f"number {row.number} is already registered",
                        f"番号 {row.number} は既に登録されています",
                    )
                )
    if not rows and not problems:
        raise MalformedInput("the file has no accounts", message_ja="登録するデータがありません")
    if problems:
        raise ImportRefused(sorted(problems, key=lambda p: p.row))
    return rows


def passwords_for(
    count: int,
    *,
    rng: Rng = secrets.token_bytes,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[PortalPasswords]:
    """``count`` pairs of new passwords with their argon2id hashes, hashed on every core.

    ``progress(done, count)`` is called as the accounts' passwords are hashed (the slow part,
    on ``workers`` threads, default every core); when it raises, hashing stops.
    """
    clear = [new_portal_passwords(rng) for _ in range(count)]

    def hashed(done: int) -> None:
        if progress is not None and done % 2 == 0:
            progress(done // 2, count)

    hashes = hash_passwords([pw for pair in clear for pw in pair], workers=workers, progress=hashed)
    return [
        PortalPasswords(issuance, login, hashes[2 * i], hashes[2 * i + 1])
        for i, (issuance, login) in enumerate(clear)
    ]


def create_accounts(
    session: Session,
    party: Party,
    rows: Sequence[AccountInput],
    passwords: Sequence[PortalPasswords],
    *,
    now: dt.datetime,
    rng: Rng = secrets.token_bytes,
    source_address: str | None = None,
) -> list[NewAccount]:
    """Create the accounts of ``rows`` with their hashed ``passwords`` in ``session``'s
    transaction; a row refused (a number registered meanwhile) raises, and the caller's
    rollback leaves none of them."""
    return [
        add_portal_account(
            session,
            party,
            row,
            now=now,
            rng=rng,
            source_address=source_address,
            passwords=pair,
        )
        for row, pair in zip(rows, passwords, strict=True)
    ]


def import_accounts(
    session: Session,
    party: Party,
    data: bytes,
    *,
    now: dt.datetime,
    rng: Rng = secrets.token_bytes,
    source_address: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> list[NewAccount]:
    """Create every account of the CSV ``data``, or none: raise :class:`ImportRefused`.

    ``progress(done, total)`` is called as the accounts' passwords are hashed (the slow part,
    on ``workers`` threads, default every core), after every row was checked.  The console
    runs the same steps in the background (:mod:`ra.people.import_runs`).
    """
    rows = check(session, party, data)
    passwords = passwords_for(len(rows), rng=rng, workers=workers, progress=progress)
    return create_accounts(
        session,
        party,
        [row for _, row in rows],
        passwords,
        now=now,
        rng=rng,
        source_address=source_address,
    )
