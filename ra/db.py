"""Database engines and sessions for the RA: SQLite by default, PostgreSQL (psycopg 3).

Sessions are opened at the edge (a web request, a job, a command) and passed in.  SQLite is
set up for an application that writes from several threads and processes: WAL, foreign keys
on, a busy timeout, and ``BEGIN IMMEDIATE`` for every transaction, so two writers queue
instead of failing half-way with "database is locked".  The schema is created and upgraded
only by the Alembic migrations (:func:`upgrade`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``)."""
    if url.startswith("sqlite"):
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

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


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


def upgrade(url: str, revision: str = "head") -> None:
    """Create or upgrade the schema of the database at ``url`` (Alembic)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def head_revision() -> str:
    """The newest migration this software ships."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None  # the migrations folder is part of the package
    return head


def open_database(url: str, **kwargs: Any) -> Engine:
    """An engine for an existing RA database whose schema is the one this software needs.

    Raises :class:`shomei.errors.ConfigError` when the database cannot be opened, has no RA
    schema, or was made by another version (then ``shomei ra init-db`` upgrades it), instead
    of failing later in the middle of some work with a database error.
    """
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from shomei.errors import ConfigError

    engine = make_engine(url, **kwargs)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            has_table = engine.dialect.has_table(connection, "alembic_version")
            current = (
                connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
                if has_table
                else None
            )
    except SQLAlchemyError as exc:
        engine.dispose()
        raise ConfigError(
            f"cannot open the RA database {shown}: {exc.__class__.__name__}",
            message_ja=f"RA のデータベース {shown} を開けません",
            url=shown,
        ) from exc
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
