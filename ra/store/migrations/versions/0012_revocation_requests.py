"""revocation requests of certificate holders (失効依頼, docs/product.md §9)

An office or agent asks the federation to revoke its certificate from the portal; the request
is kept here until staff register the revocation (B4), which closes it.  A partial unique index
keeps at most one open request per application.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None

OPEN = "closed_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "revocation_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=16), nullable=False),
        sa.Column("reason_code", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_address", sa.String(length=64), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_revocation_requests_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_revocation_requests_application_id_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revocation_requests")),
    )
    op.create_index(
        op.f("ix_revocation_requests_application_id"),
        "revocation_requests",
        ["application_id"],
        unique=False,
    )
    op.create_index(
        "uq_revocation_requests_one_open",
        "revocation_requests",
        ["application_id"],
        unique=True,
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("uq_revocation_requests_one_open", table_name="revocation_requests")
    op.drop_index(op.f("ix_revocation_requests_application_id"), table_name="revocation_requests")
    op.drop_table("revocation_requests")
