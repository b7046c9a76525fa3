"""At most one application per account in statuses 1-4 (a partial unique index).

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
    op.create_index(
        "uq_applications_one_pending",
        "applications",
        ["account_id"],
        unique=True,
        postgresql_where=sa.text(PENDING_SQL),
        sqlite_where=sa.text(PENDING_SQL),
    )


def downgrade() -> None:
    op.drop_index("uq_applications_one_pending", table_name="applications")
