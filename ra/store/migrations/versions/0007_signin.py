"""Sign-in (ra.people.auth): TOTP enrolment and replay guard, the session epoch.

``accounts.totp_enrolled_at`` says when a staff member's TOTP secret was confirmed by a first
code; secrets already in the database were handed out by ``shomei ra add-staff`` and are in
use, so they count as enrolled from the account's creation.  ``accounts.totp_last_step`` keeps
the time step of the last code accepted (a code is accepted once).  ``accounts.session_epoch``
is raised when a password changes or an account is disabled, which ends its other sessions.
Table ``signin_unknown`` counts failed sign-ins with user IDs no account has, so that they
lock as an account would and the lockout does not tell which IDs exist.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ACCOUNTS = sa.table(
    "accounts",
    sa.column("totp_secret_sealed", sa.String),
    sa.column("totp_enrolled_at", sa.DateTime(timezone=True)),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    op.add_column(
        "accounts", sa.Column("totp_enrolled_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("accounts", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.add_column(
        "accounts",
        sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "signin_unknown",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_signin_unknown")),
    )
    op.create_index(
        op.f("ix_signin_unknown_last_failure_at"), "signin_unknown", ["last_failure_at"]
    )
    op.execute(
        sa.update(ACCOUNTS)
        .where(ACCOUNTS.c.totp_secret_sealed.is_not(None))
        .values(totp_enrolled_at=ACCOUNTS.c.created_at)
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_signin_unknown_last_failure_at"), table_name="signin_unknown")
    op.drop_table("signin_unknown")
    op.drop_column("accounts", "session_epoch")
    op.drop_column("accounts", "totp_last_step")
    op.drop_column("accounts", "totp_enrolled_at")
