"""Alembic environment of the RA (online migrations only; the URL comes from the caller)."""

from __future__ import annotations

from alembic import context

from ra.store.db import make_engine
from ra.store.models import Base

config = context.config
target_metadata = Base.metadata

# Expression and partial indexes that autogenerate cannot compare (it sees the reflected columns,
# not the expression or the WHERE); made by hand in their migrations, left out of the comparison.
EXPRESSION_INDEXES = frozenset({"ix_accounts_user_id_c", "uq_applications_one_pending"})


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    return not (type_ == "index" and name in EXPRESSION_INDEXES)


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                include_object=include_object,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()  # also when a migration refuses (no connection is left open)


run_migrations_online()
