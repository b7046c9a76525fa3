"""the portal's first sign-in and forgotten password: kana name, wizard steps, mailed codes

``accounts.name_kana`` is an office's or agent's registered name in kana (フリガナ), asked for
at the first sign-in.  ``terms_accepted_at``/``terms_version``, ``identity_confirmed_at``,
``password_chosen_at`` and ``email_confirmed_at`` record the steps of the first sign-in
(ra.people.first_sign_in); accounts already in the database have done none of them, so each
office and agent goes through the first sign-in once.  Table ``mail_codes`` keeps the keyed
hashes of the 6-digit codes mailed to confirm an address or reset a password
(ra.people.mail_codes), never the codes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

STEPS = (
    "terms_accepted_at",
    "identity_confirmed_at",
    "password_chosen_at",
    "email_confirmed_at",
)


def upgrade() -> None:
    op.add_column("accounts", sa.Column("name_kana", sa.String(length=100), nullable=True))
    op.add_column("accounts", sa.Column("terms_version", sa.String(length=32), nullable=True))
    for column in STEPS:
        op.add_column("accounts", sa.Column(column, sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "mail_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("salt", sa.String(length=32), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.CheckConstraint(
            "purpose IN ('confirm_email', 'reset_password')", name=op.f("ck_mail_codes_purpose")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_mail_codes_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_codes")),
    )
    op.create_index(op.f("ix_mail_codes_account_id"), "mail_codes", ["account_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_mail_codes_account_id"), table_name="mail_codes")
    op.drop_table("mail_codes")
    for column in reversed(STEPS):
        op.drop_column("accounts", column)
    op.drop_column("accounts", "terms_version")
    op.drop_column("accounts", "name_kana")
