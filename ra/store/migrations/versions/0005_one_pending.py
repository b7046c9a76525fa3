"""The office each application is for, and at most one application in progress per office.

An agent applies on behalf of offices (docs/product.md §1), so the certificate's subject is recorded
on the application (``office_number``, ``office_name``) rather than taken from the applying
account; a partial unique index keeps one application per office in statuses 1-4.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PENDING_SQL = (
    "status IN ('awaiting_issue_request', 'awaiting_payment', 'issue_requested', "
    "'awaiting_issuance')"
)


def upgrade() -> None:
    with op.batch_alter_table("applications") as batch:
        batch.add_column(
            sa.Column("office_number", sa.String(length=10), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("office_name", sa.String(length=200), nullable=False, server_default="")
        )
    # Applications made before this revision were for the applying account itself.
    op.execute(
        "UPDATE applications SET office_number = COALESCE((SELECT a.office_number FROM "
        "accounts a WHERE a.id = applications.account_id), ''), office_name = (SELECT a.name "
        "FROM accounts a WHERE a.id = applications.account_id)"
    )
    op.create_index(
        "uq_applications_one_pending",
        "applications",
        ["office_number"],
        unique=True,
        postgresql_where=sa.text(PENDING_SQL),
        sqlite_where=sa.text(PENDING_SQL),
    )


def downgrade() -> None:
    op.drop_index("uq_applications_one_pending", table_name="applications")
    with op.batch_alter_table("applications") as batch:
        batch.drop_column("office_name")
        batch.drop_column("office_number")
