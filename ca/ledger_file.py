"""The CA ledger's SQLite file: opened only if it exists, checked before it is trusted.

:func:`connect` opens an existing ledger file read-write (SQLite's ``mode=rw``: a missing
file is an error, never a new empty ledger) or, for :meth:`ca.ledger.Ledger.create` only,
claims a new one exclusively.  :func:`check_file` then refuses, before any share is typed:

- a file that is not a SQLite database, or whose pages are damaged (``PRAGMA quick_check``
  reads every page of the b-trees, so a garbled page is found here rather than half-way
  through signing);
- a database that is not a CA ledger (``user_version`` 0: an empty file, another program's
  database), or whose tables and columns are not the ones the migrations make.

Damage met later, while reading, is turned into the same one-line :class:`StateError` by the
connection and cursor classes below.  SQLite reports a damaged page as a plain
``sqlite3.DatabaseError`` (SQLITE_CORRUPT, SQLITE_NOTADB); its subclasses (a constraint that
failed, a full disk, a lock) keep their own meaning and pass through unchanged.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ca.ledger_record import GUIDE, GUIDE_JA
from shomei.errors import AlreadyExists, ConfigError, StateError


def missing(path: Path) -> StateError:
    return StateError(
        f"the CA ledger {path} is missing; restore it from the newest ledger backup ({GUIDE}); "
        "a ledger is made only by the ceremony that creates the CA",
        message_ja=f"CA 台帳 {path} がありません。最新の台帳バックアップから復元してください"
        f"({GUIDE_JA})。台帳は CA を作成する儀式でのみ作られます",
        path=str(path),
    )


def damaged(path: Path, why: str) -> StateError:
    return StateError(
        f"the CA ledger {path} is damaged ({why}); restore it from the newest ledger backup "
        f"({GUIDE})",
        message_ja=f"CA 台帳 {path} が壊れています({why})。最新の台帳バックアップから"
        f"復元してください({GUIDE_JA})",
        path=str(path),
    )


def _raise_if_damaged(connection: Any, exc: sqlite3.DatabaseError) -> None:
    if type(exc) is sqlite3.DatabaseError:
        raise damaged(Path(getattr(connection, "ledger_path", "?")), str(exc)) from exc


class _Cursor(sqlite3.Cursor):
    """A cursor that reports a damaged page as :class:`StateError` (see the module doc)."""

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.DatabaseError as exc:
            _raise_if_damaged(self.connection, exc)
            raise

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> _Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.DatabaseError as exc:
            _raise_if_damaged(self.connection, exc)
            raise

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.DatabaseError as exc:
            _raise_if_damaged(self.connection, exc)
            raise

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.DatabaseError as exc:
            _raise_if_damaged(self.connection, exc)
            raise

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.DatabaseError as exc:
            _raise_if_damaged(self.connection, exc)
            raise


class _Connection(sqlite3.Connection):
    """A connection whose statements run on :class:`_Cursor`."""

    ledger_path: Path

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        return self.cursor(_Cursor).execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> _Cursor:
        return self.cursor(_Cursor).executemany(sql, parameters)

    def executescript(self, script: str, /) -> sqlite3.Cursor:
        try:
            return super().executescript(script)
        except sqlite3.DatabaseError as exc:
            _raise_if_damaged(self, exc)
            raise


def connect(path: Path, *, create: bool = False) -> sqlite3.Connection:
    """Open the ledger file ``path``; with ``create``, claim a new one (refused if it exists).

    Raises :class:`StateError` when the file is missing (or cannot be read and written) and
    :class:`Refused` when ``create`` finds one there already.
    """
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError as exc:
            raise AlreadyExists(
                f"the CA ledger {path} already exists; a ledger is never made twice",
                message_ja=f"CA 台帳 {path} は既にあります。台帳は二度作りません",
                path=str(path),
            ) from exc
        except OSError as exc:
            raise ConfigError(
                f"cannot create the CA ledger {path}: {exc.strerror}",
                message_ja=f"CA 台帳 {path} を作成できません: {exc.strerror}",
                path=str(path),
            ) from exc
    elif not path.exists():
        raise missing(path)
    elif not path.is_file():
        raise damaged(path, "not a file")
    elif not os.access(path, os.R_OK | os.W_OK):
        raise StateError(
            f"the CA ledger {path} cannot be read and written by this user; fix its "
            "permissions, or restore it from the newest ledger backup",
            message_ja=f"CA 台帳 {path} をこのユーザーで読み書きできません。権限を直すか、"
            "最新の台帳バックアップから復元してください",
            path=str(path),
        )
    try:
        # mode=rw: SQLite itself never creates the file, even if it vanished since the check.
        # Autocommit mode: every transaction of the ledger is an explicit BEGIN IMMEDIATE.
        db = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=rw",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            factory=_Connection,
        )
    except sqlite3.DatabaseError as exc:
        raise ConfigError(
            f"cannot open the CA ledger {path}: {exc}",
            message_ja=f"CA 台帳 {path} を開けません: {exc}",
            path=str(path),
        ) from exc
    db.ledger_path = path
    return db


def check_file(db: sqlite3.Connection, path: Path) -> int:
    """Refuse a file that is not a sound SQLite database holding a CA ledger; its version."""
    try:
        rows = [str(r[0]) for r in db.execute("PRAGMA quick_check").fetchall()]
    except StateError:
        raise
    except sqlite3.DatabaseError as exc:
        raise damaged(path, str(exc)) from exc
    if rows != ["ok"]:
        # quick_check answers in lines, some of them headings ("*** in database main ***").
        found = [" ".join(line.split()) for row in rows for line in row.splitlines()]
        raise damaged(path, "; ".join([f for f in found if not f.startswith("***")][:2]))
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version == 0:
        raise StateError(
            f"{path} is not a CA ledger (an empty or foreign database); restore the ledger "
            f"from the newest ledger backup ({GUIDE})",
            message_ja=f"{path} は CA 台帳ではありません(空または別のデータベース)。最新の"
            f"台帳バックアップから復元してください({GUIDE_JA})",
            path=str(path),
        )
    return version


def _columns(db: sqlite3.Connection) -> set[tuple[str, str]]:
    tables = [
        str(r[0])
        for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    ]
    return {
        (table, str(c[1]))
        for table in tables
        for c in db.execute(f"PRAGMA table_info('{table}')").fetchall()
    }


def check_schema(db: sqlite3.Connection, path: Path, migrations: Sequence[str]) -> None:
    """Refuse a ledger whose tables and columns differ from what ``migrations`` make."""
    expected_db = sqlite3.connect(":memory:")
    try:
        for step in migrations:
            expected_db.executescript(step)
        expected = _columns(expected_db)
    finally:
        expected_db.close()
    found = _columns(db)
    if found != expected:
        odd = sorted(f"{t}.{c}" for t, c in expected ^ found)
        raise damaged(path, f"not the expected tables: {', '.join(odd[:4])}")


__all__ = ["check_file", "check_schema", "connect", "damaged", "missing"]
