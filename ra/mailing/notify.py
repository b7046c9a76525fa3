"""Notices (お知らせ) and outbox mails, written in the caller's transaction (docs/product.md §13).

A status change and the notice and mail it causes commit together or not at all; a job sends
the outbox over SMTP later (:mod:`ra.mailing.mail`).  The Message-ID is fixed here, when the mail is
written, so a mail sent again after a crash carries the same one and the receiver can drop
the duplicate.

A mail that carries a secret (a one-time code, :func:`mail_secret`) goes to one address only,
with no portal notice, and its body is sealed in the outbox under the RA's secrets key: the
code exists in clear only in the mail that was sent.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.orm import Session

from ra.store.models import Account, Notice, OutboxMail
from ra.store.vault import Vault


def outbox_body_context(message_id: str) -> str:
    """What a sealed outbox body belongs to (its associated data, ra.store.vault)."""
    return f"mail_outbox.body/{message_id}"


def notify(
    session: Session,
    account: Account,
    *,
    kind: str,
    title: str,
    body: str,
    now: dt.datetime,
    message_id_domain: str,
    application_id: int | None = None,
    mail: bool = True,
    sealed: bytes | None = None,
) -> Notice:
    """Add a portal notice for ``account`` and, if it has an address, an outbox mail."""
    notice = Notice(
        account_id=account.id,
        application_id=application_id,
        kind=kind,
        title=title,
        body=body,
        sealed=sealed,
        created_at=now,
    )
    session.add(notice)
    if mail and account.email:
        session.add(
            OutboxMail(
                message_id=f"<{uuid.uuid4().hex}@{message_id_domain}>",
                account_id=account.id,
                to_address=account.email,
                subject=title,
                body=body
                if sealed is None
                else "ポータルのお知らせに暗号化された通知があります。復号ツールで開いてください。",
                kind=kind,
                created_at=now,
                attempts=0,
            )
        )
    session.flush()
    return notice


def mail_secret(
    session: Session,
    account: Account,
    *,
    to_address: str,
    kind: str,
    subject: str,
    body: str,
    now: dt.datetime,
    message_id_domain: str,
    vault: Vault,
) -> OutboxMail:
    """An outbox mail to ``to_address`` whose body holds a secret: sealed until it is sent.

    No portal notice: the mail is for the address itself (a confirmation code goes to an
    address that is not the account's yet).
    """
    message_id = f"<{uuid.uuid4().hex}@{message_id_domain}>"
    row = OutboxMail(
        message_id=message_id,
        account_id=account.id,
        to_address=to_address,
        subject=subject,
        body=vault.seal(body, context=outbox_body_context(message_id)),
        kind=kind,
        created_at=now,
        attempts=0,
    )
    session.add(row)
    session.flush()
    return row
