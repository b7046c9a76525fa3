"""Database engines and sessions for the RA: SQLite by default, PostgreSQL (psycopg 3).

Sessions are opened at the edge (a web request, a job, a command) and passed in.  SQLite is
set up for an application that writes from several threads and processes: WAL, foreign keys
on, a busy timeout, and ``BEGIN IMMEDIATE`` for every transaction, so two writers queue
instead of failing half-way with "database is locked".  The schema is created and upgraded
only by the Alembic migrations (:func:`upgrade`).

A database is created only by :func:`upgrade` (``shomei ra init-db``): every other engine
opens an SQLite file read-write without creating it (``mode=rw``), so a wrong path is "no RA
database at …" rather than a new empty database.  The file is created with mode 0600 (SQLite
gives its ``-wal``, ``-shm`` and ``-journal`` files the same mode), as it holds the accounts'
password hashes.  Driver errors other than constraint violations are raised as one-line
:class:`~shomei.errors.DatabaseFailure` (:mod:`ra.store.dberrors`).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from ra.store import dberrors
from shomei.errors import ConfigError, DatabaseFailure

if TYPE_CHECKING:
    from ra.store.vault import Vault

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
FILE_MODE = 0o600
# The files SQLite keeps beside the database (WAL mode, rollback journal).
COMPANIONS = ("-wal", "-shm", "-journal")


def sqlite_path(url: str | URL) -> Path | None:
    """The file of an SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _open_existing(path: Path) -> Any:
    # mode=rw: SQLite opens the file or fails with SQLITE_CANTOPEN; it never creates one.
    uri = f"file:{urllib.parse.quote(str(path))}?mode=rw"
    return sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``).

    An SQLite file must exist (:func:`upgrade` creates it); its driver errors and those of
    PostgreSQL come out as :class:`~shomei.errors.DatabaseFailure`.
    """
    parsed = make_url(url)
    path = sqlite_path(parsed)
    if parsed.get_backend_name() == "sqlite":
        if path is not None:
            kwargs.setdefault("creator", lambda: _open_existing(path))
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when transactions begin.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    else:
        engine = create_engine(url, pool_pre_ping=True, **kwargs)

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        if context.is_pre_ping:
            return  # the pool replaces a dead connection itself
        failure = dberrors.explain(context.original_exception, parsed)
        if failure is not None:
            raise failure from context.sqlalchemy_exception

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits at the end of the block, or rolls back on error."""
    with factory() as session, session.begin():
        yield session


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def create_sqlite_file(url: str) -> bool:
    """Create the empty SQLite file of ``url`` with mode 0600; False if it is there already."""
    path = sqlite_path(url)
    if path is None:
        return False
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    except OSError as exc:
        raise DatabaseFailure(
            f"cannot create the RA database {path}: {exc.strerror}; check that its folder "
            "exists and is writable",
            message_ja=f"RA のデータベース {path} を作成できません({exc.strerror})。"
            "フォルダがあり書き込めるか確認してください",
            database=str(path),
        ) from exc
    os.fchmod(fd, FILE_MODE)  # exactly 0600, whatever the umask
    os.close(fd)
    return True


def restrict_sqlite_files(url: str) -> list[Path]:
    """Make the SQLite file of ``url`` and its companions 0600; return those that were wider."""
    path = sqlite_path(url)
    if path is None:
        return []
    changed: list[Path] = []
    for candidate in [path, *(path.with_name(path.name + s) for s in COMPANIONS)]:
        try:
            mode = stat.S_IMODE(candidate.stat().st_mode)
            if mode & 0o077:
                candidate.chmod(FILE_MODE)
                changed.append(candidate)
        except FileNotFoundError:
            continue
    return changed


def upgrade(url: str, revision: str = "head", *, vault: Vault | None = None) -> None:
    """Create or upgrade the schema of the database at ``url`` (Alembic).

    The one place a database is created: an SQLite file that does not exist is created empty
    with mode 0600 first.  ``vault`` seals the secrets a migration finds in clear
    (:mod:`ra.store.vault`); a database that has such secrets cannot be upgraded without it.
    """
    from alembic import command

    create_sqlite_file(url)
    cfg = alembic_config(url)
    cfg.attributes["vault"] = vault
    command.upgrade(cfg, revision)


def head_revision() -> str:
    """The newest migration this software ships."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None  # the migrations folder is part of the package
    return head


def schema_revision(connection: Connection) -> str | None:
    """The migration the database is at (None: no RA schema)."""
    from sqlalchemy import text

    if not connection.dialect.has_table(connection, "alembic_version"):
        return None
    found = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if found is None else str(found)


def open_database(url: str, **kwargs: Any) -> Engine:
    """An engine for an existing RA database whose schema is the one this software needs.

    Raises :class:`shomei.errors.ConfigError` when the database cannot be opened, has no RA
    schema, or was made by another version (then ``shomei ra init-db`` upgrades it), instead
    of failing later in the middle of some work with a database error.
    """
    from sqlalchemy.exc import SQLAlchemyError

    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise ConfigError(
            dberrors.NO_FILE.en.format(db=path, why=""),
            message_ja=dberrors.NO_FILE.ja.format(db=path, why=""),
            database=str(path),
        )
    engine = make_engine(url, **kwargs)
    shown = dberrors.shown(engine.url)
    try:
        with engine.connect() as connection:
            current = schema_revision(connection)
    except DatabaseFailure:
        engine.dispose()
        raise
    except SQLAlchemyError as exc:
        engine.dispose()
        raise dberrors.describe(getattr(exc, "orig", None) or exc, engine.url) from exc
    head = head_revision()
    if current != head:
        engine.dispose()
        state = "has no RA schema" if current is None else f"has schema revision {current}"
        raise ConfigError(
            f"the RA database {shown} {state}; this software needs {head}: run "
            "`shomei ra init-db --settings FILE` to create or upgrade it",
            message_ja=(
                f"RA のデータベース {shown} のスキーマが {current or 'ありません'} です"
                f"(必要なのは {head})。`shomei ra init-db` で作成・更新してください"
            ),
            current=current,
            head=head,
        )
    return engine
