"""The Alembic migrations build exactly the schema the models declare, on both databases."""

from __future__ import annotations

import warnings

from alembic import command
from alembic.script import ScriptDirectory

from ra.store.db import alembic_config
from tests.ra.conftest import Database


def test_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, f"several migration heads: {script.get_heads()}"


def test_models_match_migrations(database: Database) -> None:
    with warnings.catch_warnings():
        # SQLite cannot reflect the PostgreSQL-only expression index; alembic says so.
        warnings.filterwarnings("ignore", message="autogenerate skipping", category=UserWarning)
        command.check(alembic_config(database.url))  # raises when the two differ


def test_downgrade_and_upgrade_again(database: Database) -> None:
    cfg = alembic_config(database.url)
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")
