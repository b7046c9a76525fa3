"""Seal the console's TOTP secrets under the RA's secrets key (ra.store.vault).

``accounts.totp_secret`` (clear base32) becomes ``accounts.totp_secret_sealed`` (AES-256-GCM,
bound to the account's user ID).  Secrets already in the database are sealed here, in the
same transaction as the change of column, with the key ``shomei ra init-db`` hands to the
migration (``config.attributes["vault"]``); without a key a database that has TOTP secrets is
not touched.  The downgrade opens them again, with the same key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from ra.store.vault import Vault, totp_context
from shomei.errors import ConfigError

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ACCOUNTS = sa.table(
    "accounts",
    sa.column("id", sa.Integer),
    sa.column("user_id", sa.String),
    sa.column("totp_secret", sa.String),
    sa.column("totp_secret_sealed", sa.String),
)


def _vault(count: int) -> Vault:
    vault = context.config.attributes.get("vault")
    if not isinstance(vault, Vault):
        raise ConfigError(
            f"the RA database has {count} TOTP secret(s) to seal or open, and no secrets key "
            "was given: run `shomei ra init-db --settings FILE`",
            message_ja=f"RA のデータベースに暗号化が必要な TOTP シークレットが {count} 件あります。"
            "`shomei ra init-db` で更新してください",
        )
    return vault


def upgrade() -> None:
    op.add_column("accounts", sa.Column("totp_secret_sealed", sa.String(length=200)))
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(ACCOUNTS.c.id, ACCOUNTS.c.user_id, ACCOUNTS.c.totp_secret).where(
            ACCOUNTS.c.totp_secret.is_not(None)
        )
    ).all()
    vault = _vault(len(rows)) if rows else None
    for row in rows:
        assert vault is not None
        sealed = vault.seal(row.totp_secret, context=totp_context(row.user_id))
        bind.execute(
            sa.update(ACCOUNTS).where(ACCOUNTS.c.id == row.id).values(totp_secret_sealed=sealed)
        )
    # SQLite 3.35+ drops a column in place (no table copy, so the accounts' foreign keys stay).
    op.drop_column("accounts", "totp_secret")


def downgrade() -> None:
    op.add_column("accounts", sa.Column("totp_secret", sa.String(length=64)))
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(ACCOUNTS.c.id, ACCOUNTS.c.user_id, ACCOUNTS.c.totp_secret_sealed).where(
            ACCOUNTS.c.totp_secret_sealed.is_not(None)
        )
    ).all()
    vault = _vault(len(rows)) if rows else None
    for row in rows:
        assert vault is not None
        clear = vault.open(row.totp_secret_sealed, context=totp_context(row.user_id))
        bind.execute(sa.update(ACCOUNTS).where(ACCOUNTS.c.id == row.id).values(totp_secret=clear))
    op.drop_column("accounts", "totp_secret_sealed")
