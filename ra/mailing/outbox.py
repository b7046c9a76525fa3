"""The console's メール desk (admins): the mail outbox, and resending a mail that failed.

The outbox (:class:`ra.store.models.OutboxMail`) is sent by the ``send-mail`` job
(:mod:`ra.mailing.mail`).
A mail is *queued* until the server accepts it (``sent_at``), *failed* when the server refused
it at least once (``last_error`` kept; the job tries it again on every run).  :func:`resend`
sends one failed mail at once with the same Message-ID, marks it sent only after the server
accepted it, and writes an audit record either way (docs/product.md §8, §13).
"""

from __future__ import annotations

import datetime as dt
import enum
import smtplib
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ra.mailing import mail
from ra.party import Party, Permission, require
from ra.settings import RASettings
from ra.store import audit
from ra.store.models import OutboxMail
from shomei.errors import ConfigError, Conflict, MalformedInput, NotFound

PAGE_SIZE = 50


class MailState(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


def state_of(row: OutboxMail) -> MailState:
    if row.sent_at is not None:
        return MailState.SENT
    return MailState.FAILED if row.last_error else MailState.QUEUED


def _where(state: MailState | None) -> list[ColumnElement[bool]]:
    if state is MailState.SENT:
        return [OutboxMail.sent_at.is_not(None)]
    if state is MailState.FAILED:
        return [OutboxMail.sent_at.is_(None), OutboxMail.last_error.is_not(None)]
    if state is MailState.QUEUED:
        return [OutboxMail.sent_at.is_(None), OutboxMail.last_error.is_(None)]
    return []


@dataclass(frozen=True)
class OutboxPage:
    rows: tuple[OutboxMail, ...]
    page: int
    page_count: int
    total: int
    counts: tuple[tuple[MailState, int], ...]


def outbox_page(
    session: Session,
    party: Party,
    state: MailState | None = None,
    *,
    page: int = 1,
    page_size: int = PAGE_SIZE,
) -> OutboxPage:
    """Page ``page`` of the outbox (one state or all), newest first, with the count of each."""
    require(party, Permission.RUN_JOBS)
    if page < 1:
        raise MalformedInput(
            f"page {page} does not exist", message_ja="ページ番号が正しくありません"
        )

    def count(where: list[ColumnElement[bool]]) -> int:
        return int(session.scalar(select(func.count()).select_from(OutboxMail).where(*where)) or 0)

    total = count(_where(state))
    page_count = max(1, -(-total // page_size))
    page = min(page, page_count)
    rows = session.execute(
        select(OutboxMail)
        .where(*_where(state))
        .order_by(OutboxMail.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).scalars()
    counts = tuple((s, count(_where(s))) for s in MailState)
    return OutboxPage(tuple(rows), page, page_count, total, counts)


@dataclass(frozen=True)
class Resent:
    mail_id: int
    to_address: str
    error: str | None  # None: the server took it
    error_ja: str | None = None


def resend(
    factory: sessionmaker[Session],
    settings: RASettings,
    party: Party,
    mail_id: int,
    *,
    now: dt.datetime,
    smtp_factory: mail.SmtpFactory | None = None,
) -> Resent:
    """Send the failed mail ``mail_id`` now (same Message-ID); audited whether or not it went.

    Raises :class:`NotFound`, and :class:`Conflict` for a mail that is not failed (sent, or
    queued and not refused yet: the job sends it).  When the server refuses it again or cannot
    be reached, the error is kept on the mail and returned in :attr:`Resent.error`.
    """
    require(party, Permission.RUN_JOBS)
    with factory() as session:
        row = session.get(OutboxMail, mail_id)
        if row is None:
            raise NotFound(f"no mail {mail_id} in the outbox", message_ja="そのメールはありません")
        if state_of(row) is not MailState.FAILED:
            raise Conflict(
                f"mail {mail_id} has not failed; nothing to resend",
                message_ja="このメールは送信失敗ではないため再送できません",
                mail_id=mail_id,
            )
        message = mail.build_message(row, sender=settings.mail.sender)
        to_address = row.to_address
    error: str | None = None
    error_ja: str | None = None
    try:
        smtp = (smtp_factory or mail.connect)(settings.mail)
        try:
            smtp.send_message(message)
        finally:
            try:
                smtp.quit()
            except smtplib.SMTPException:
                smtp.close()
    except ConfigError as exc:  # mail.connect: no server there, or a bad password file
        error, error_ja = exc.message[:2000], exc.message_ja
    except (smtplib.SMTPException, OSError) as exc:
        error = " ".join(str(exc).split())[:2000] or type(exc).__name__
        error_ja = f"メールサーバが受け付けませんでした({error[:200]})"
    with factory() as session, session.begin():
        values: dict[str, object] = {"attempts": OutboxMail.attempts + 1}
        values.update({"last_error": error} if error else {"sent_at": now, "last_error": None})
        session.execute(
            update(OutboxMail)
            .where(OutboxMail.id == mail_id, OutboxMail.sent_at.is_(None))
            .values(**values)
        )
        audit.record(
            session,
            actor=party.actor.value,
            actor_id=party.audit_id,
            action="resend_mail",
            object_type="mail",
            object_id=str(mail_id),
            now=now,
            details={"ok": error is None, "error": error, "to": to_address},
        )
    return Resent(mail_id, to_address, error, error_ja)
