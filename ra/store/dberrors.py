"""What a database failure means, in one line that says what failed and what to do.

SQLAlchemy wraps every driver error in a class such as ``OperationalError``, whose name alone
tells an operator nothing.  :func:`explain` reads the driver's own error (SQLite's result code
name, PostgreSQL's SQLSTATE, or for a failed connection the libpq text, which carries no
SQLSTATE) and returns a :class:`~shomei.errors.DatabaseFailure`: cannot connect (host, port),
login refused, database or file missing, not a database, damaged, a table or column missing,
disk full, read-only, busy.  :func:`ra.store.db.make_engine` raises it in place of the SQLAlchemy
error, so every command, job and the scheduler report the same line.  Constraint violations
(``IntegrityError``) and programming errors are not failures of the database and are left
alone.  The URL is shown with its password hidden, and the password is removed from any text
the driver returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.engine import URL

from shomei.errors import DatabaseFailure


@dataclass(frozen=True)
class _Kind:
    en: str  # what failed, then what to do; {db} is the database, {why} the driver's reason
    ja: str


CONNECT = _Kind(
    "cannot connect to the RA database {db} ({why}): check the host and port in "
    "ra.database_url and that the database server is running and reachable",
    "RA のデータベース {db} に接続できません({why})。ra.database_url のホストとポート、"
    "データベースサーバーが動いているかを確認してください",
)
LOGIN = _Kind(
    "the RA database {db} refused the login ({why}): check the user and password in "
    "ra.database_url and the server's access rules (pg_hba.conf)",
    "RA のデータベース {db} にログインできません({why})。ra.database_url のユーザーと"
    "パスワード、サーバーの接続許可(pg_hba.conf)を確認してください",
)
NO_DATABASE = _Kind(
    "the RA database {db} does not exist ({why}): create it on the server (createdb), then "
    "run `shomei ra init-db --settings FILE`",
    "RA のデータベース {db} がありません({why})。サーバーで作成(createdb)してから "
    "`shomei ra init-db` を実行してください",
)
NO_FILE = _Kind(
    "there is no RA database at {db}: run `shomei ra init-db --settings FILE` to create it, "
    "or correct ra.database_url (a relative path is relative to the settings file)",
    "{db} に RA のデータベースがありません。`shomei ra init-db` で作成するか、"
    "ra.database_url を直してください(相対パスは設定ファイルのフォルダが基準です)",
)
NOT_A_DATABASE = _Kind(
    "{db} is not an SQLite database ({why}): correct ra.database_url, or restore the file "
    "from a backup",
    "{db} は SQLite のデータベースではありません({why})。ra.database_url を直すか、"
    "バックアップから戻してください",
)
DAMAGED = _Kind(
    "the RA database {db} is damaged ({why}): stop the RA and restore it from a backup",
    "RA のデータベース {db} が壊れています({why})。RA を止めてバックアップから戻してください",
)
FULL = _Kind(
    "the disk holding the RA database {db} is full ({why}): free space and run the command "
    "again; the step that failed was not saved",
    "RA のデータベース {db} のディスクがいっぱいです({why})。空きを作ってから再実行してください"
    "(失敗した処理は保存されていません)",
)
READ_ONLY = _Kind(
    "the RA database {db} is read-only ({why}): give the RA's user write access to the file "
    "and its folder (SQLite) or use a writable server (PostgreSQL)",
    "RA のデータベース {db} に書き込めません({why})。ファイルとフォルダへの書き込み権限"
    "(SQLite)、または書き込み可能なサーバー(PostgreSQL)を確認してください",
)
NO_RIGHT = _Kind(
    "the database user of {db} lacks a privilege ({why}): grant it on the server",
    "{db} のデータベースユーザーに権限がありません({why})。サーバーで権限を付与してください",
)
BUSY = _Kind(
    "the RA database {db} is busy ({why}): another process held it too long; run the command again",
    "RA のデータベース {db} が他の処理に使われています({why})。もう一度実行してください",
)
CONFLICT = _Kind(
    "another transaction changed the same rows of {db} ({why}): run the command again",
    "別の処理が {db} の同じデータを変更しました({why})。もう一度実行してください",
)
DISK = _Kind(
    "the RA database {db} could not be read or written ({why}): check the disk and the system log",
    "RA のデータベース {db} を読み書きできません({why})。ディスクとシステムログを確認してください",
)
SCHEMA = _Kind(
    "the RA database {db} lacks a table or column this software uses ({why}): it was changed "
    "by hand or restored from another version; restore it from a backup, then run "
    "`shomei ra init-db --settings FILE`",
    "RA のデータベース {db} に必要な表または列がありません({why})。バックアップから戻し、"
    "`shomei ra init-db` を実行してください",
)
OTHER = _Kind(
    "the RA database {db} failed ({why}): check the database and its log, then run the "
    "command again",
    "RA のデータベース {db} でエラーが起きました({why})。データベースとそのログを確認してください",
)

# SQLite result codes (sqlite3's ``sqlite_errorname``, extended codes included by prefix).
_SQLITE = {
    "SQLITE_CANTOPEN": NO_FILE,
    "SQLITE_NOTADB": NOT_A_DATABASE,
    "SQLITE_CORRUPT": DAMAGED,
    "SQLITE_FULL": FULL,
    "SQLITE_READONLY": READ_ONLY,
    "SQLITE_PERM": READ_ONLY,
    "SQLITE_AUTH": NO_RIGHT,
    "SQLITE_BUSY": BUSY,
    "SQLITE_LOCKED": BUSY,
    "SQLITE_IOERR": DISK,
}
# PostgreSQL SQLSTATEs (Appendix A of its manual), exact codes first, then their classes.
_SQLSTATE = {
    "3D000": NO_DATABASE,
    "53100": FULL,
    "25006": READ_ONLY,
    "42501": NO_RIGHT,
    "40001": CONFLICT,
    "40P01": CONFLICT,
    "55P03": BUSY,
    "57014": BUSY,
    "58030": DISK,
    "42P01": SCHEMA,  # undefined table
    "42703": SCHEMA,  # undefined column
    "28": LOGIN,
    "08": CONNECT,
    "53": FULL,
    "57": CONNECT,  # the server is shutting down or was restarted
    "XX": DAMAGED,
}
# A failed connection has no SQLSTATE; libpq's English text says why.
_CONNECT_TEXT = (
    (
        re.compile(
            r"password authentication failed|no pg_hba\.conf entry|role .* does not exist"
            r"|authentication failed|no password supplied|SSL .*required",
            re.I,
        ),
        LOGIN,
    ),
    (re.compile(r'database ".*" does not exist', re.I), NO_DATABASE),
    (
        re.compile(
            r"connection refused|could not translate host|failed to resolve host|timeout"
            r"|no route to host|network is unreachable|could not connect|connection failed"
            r"|server closed the connection|name or service not known",
            re.I,
        ),
        CONNECT,
    ),
)
_GENERIC = ("OperationalError", "DatabaseError", "InterfaceError")
# SQLite reports a missing table or column only in its text (SQLITE_ERROR).
_SQLITE_SCHEMA = re.compile(r"^no such (table|column)", re.I)


def explain(error: BaseException, url: URL) -> DatabaseFailure | None:
    """A :class:`DatabaseFailure` for the driver error ``error``, or None to leave it alone."""
    kind = _kind(error)
    return None if kind is None else _failure(kind, error, url)


def describe(error: BaseException, url: URL) -> DatabaseFailure:
    """Like :func:`explain`, for any error (an unrecognised one is a generic failure)."""
    return _failure(_kind(error) or OTHER, error, url)


def _failure(kind: _Kind, error: BaseException, url: URL) -> DatabaseFailure:
    why = _reason(error, url)
    db = shown(url)
    return DatabaseFailure(
        kind.en.format(db=db, why=why),
        message_ja=kind.ja.format(db=db, why=why),
        database=db,
        reason=why,
    )


def shown(url: URL) -> str:
    """How a database is named in messages: the file of an SQLite URL, else the URL without
    its password."""
    if url.get_backend_name() == "sqlite":
        return url.database or "(memory)"
    return url.render_as_string(hide_password=True)


def _kind(error: BaseException) -> _Kind | None:
    name = type(error).__name__
    if name == "IntegrityError":
        return None
    errorname = getattr(error, "sqlite_errorname", None)
    if isinstance(errorname, str):
        for prefix, kind in _SQLITE.items():
            if errorname.startswith(prefix):
                return kind
        if _SQLITE_SCHEMA.match(str(error)):
            return SCHEMA
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        found = _SQLSTATE.get(sqlstate) or _SQLSTATE.get(sqlstate[:2])
        if found is not None:
            return found
    if name in _GENERIC:
        text = str(error)
        if sqlstate is None and errorname is None:
            for pattern, kind in _CONNECT_TEXT:
                if pattern.search(text):
                    return kind
        return OTHER
    return None


def _reason(error: BaseException, url: URL) -> str:
    errorname = getattr(error, "sqlite_errorname", None)
    # One line: libpq adds a hint on a second line ("Is the server running on that host...").
    first = (str(error).strip().splitlines() or [""])[0]
    text = " ".join(first.split())
    # libpq repeats the connection target; the reason follows its last "failed:".
    text = re.sub(r"^connection failed: connection to server at .*? failed: ", "", text)
    text = re.sub(r"^(FATAL|ERROR): +", "", text)
    if url.password:
        text = text.replace(str(url.password), "***")
    text = text[:200]
    if isinstance(errorname, str) and errorname not in text:
        return f"{errorname}: {text}" if text else errorname
    return text or type(error).__name__
