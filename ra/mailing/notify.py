"""Notices (お知らせ) and outbox mails, written in the caller's transaction (docs/product.md §13).

A status change and the notice and mail it causes commit together or not at all; a job sends
the outbox over SMTP later (:mod:`ra.mailing.mail`).  The Message-ID is fixed here, when the mail is
written, so a mail sent again after a crash carries the same one and the receiver can drop
the duplicate.  The words of each notice and mail are in :mod:`ra.mailing.texts`.

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


# The mail of a sealed notice when the caller gives none: the content stays in the notice.
SEALED_MAIL_BODY = (
    "ポータルの「お知らせ」に暗号化されたお知らせが届いています。"
    "お知らせのページの手順で開いてください。このメールに内容は記載していません。\n"
)


def queue_mail(
    session: Session,
    *,
    to_address: str,
    subject: str,
    body: str,
    kind: str,
    now: dt.datetime,
    message_id_domain: str,
    account_id: int | None = None,
) -> OutboxMail:
    """Add one mail to the outbox (a mail without a portal notice, e.g. a sign-in code)."""
    row = OutboxMail(
        message_id=f"<{uuid.uuid4().hex}@{message_id_domain}>",
        account_id=account_id,
        to_address=to_address,
        subject=subject,
        body=body,
        kind=kind,
        created_at=now,
        attempts=0,
    )
    session.add(row)
    return row


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
    mail_body: str | None = None,
    footer: str = "",
) -> Notice:
    """Add a portal notice for ``account`` and, if it has an address, an outbox mail.

    The mail's subject is the notice's title; its body is ``mail_body`` if given, else the
    notice's body (a sealed notice's mail only says that one is waiting), then ``footer``
    (:func:`ra.mailing.texts.signature`).
    """
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
        text = mail_body if mail_body is not None else body if sealed is None else SEALED_MAIL_BODY
        queue_mail(
            session,
            to_address=account.email,
            subject=title,
            body=text.rstrip("\n") + "\n" + (f"\n{footer.rstrip()}\n" if footer else ""),
            kind=kind,
            now=now,
            message_id_domain=message_id_domain,
            account_id=account.id,
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
