"""indexes of the certificate list (証明書一覧)

Each index starts with the columns one branch of the list query fixes by equality, then
``status``, then the list order ``(applied_at, id)``, so one branch is one ordered index range
and a page reads about ``page_size`` entries whatever the table's size (see ``ra.desk.queries``).
The trailing columns let the other filter of a branch be checked inside the index.
PostgreSQL also gets ``user_id COLLATE "C"``: prefix ranges of user IDs need code-point order,
which a linguistic database collation does not give.

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-22 05:25:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_applications_list_applicant": ["applicant", "status", "applied_at", "id", "entered_by"],
    "ix_applications_list_entered_by": ["entered_by", "status", "applied_at", "id", "applicant"],
    "ix_applications_list_account": [
        "account_id",
        "status",
        "applied_at",
        "id",
        "applicant",
        "entered_by",
    ],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "applications", columns, unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_accounts_user_id_c", "accounts", [sa.text('user_id COLLATE "C"')], unique=False
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_accounts_user_id_c", table_name="accounts")
    for name in reversed(list(INDEXES)):
        op.drop_index(name, table_name="applications")
