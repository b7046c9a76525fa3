"""indexes for the numbered pages and the fee balance of the certificate list

``ix_applications_list_order`` holds every application's list key ``(applied_at, id)`` with
the columns the list filters on, so planning a search's pages (``ra.desk.queries.plan_pages``:
one ordered pass that keeps each page's first key) reads this narrow index alone, in order,
without sorting and without visiting the table rows.  ``ix_fee_entries_application_id`` lets
the list read the fee balance (手数料残高) of the rows of one page by application.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ORDER_COLUMNS = ["applied_at", "id", "status", "applicant", "entered_by", "account_id"]


def upgrade() -> None:
    op.create_index("ix_applications_list_order", "applications", ORDER_COLUMNS, unique=False)
    op.create_index(
        "ix_fee_entries_application_id", "fee_entries", ["application_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_fee_entries_application_id", table_name="fee_entries")
    op.drop_index("ix_applications_list_order", table_name="applications")
