"""Notices (お知らせ) and outbox mails, written in the caller's transaction (docs/product.md §13).

A status change and the notice and mail it causes commit together or not at all; a job sends
the outbox over SMTP later (:mod:`ra.mailing.mail`).  The Message-ID is fixed here, when the mail is
written, so a mail sent again after a crash carries the same one and the receiver can drop
the duplicate.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.orm import Session

from ra.store.models import Account, Notice, OutboxMail


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
