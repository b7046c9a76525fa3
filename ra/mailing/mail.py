"""Sending the mail outbox over SMTP (docs/product.md §13; RFC 5321 transport, RFC 5322 messages).

Mails are written to :class:`ra.store.models.OutboxMail` in the same transaction as the event that
causes them (:mod:`ra.mailing.notify`), each with its Message-ID (RFC 5322 §3.6.4) fixed there.
:func:`send_outbox` sends the unsent ones in id order and marks each ``sent_at`` only after
the server accepted it (``send_message`` returned), in a transaction of its own.  A crash
between the server's acceptance and the mark sends that mail again on the next run with the
SAME Message-ID, so the receiving side can drop the duplicate; no mail is ever lost.  A
refusal by the server counts an attempt and keeps the error; the mail stays in the outbox.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import logging
import smtplib
import ssl
from collections.abc import Callable, Collection
from dataclasses import dataclass
from email.message import EmailMessage

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ra.mailing.notify import outbox_body_context
from ra.settings import MailSettings, RASettings
from ra.store.models import OutboxMail
from ra.store.vault import Vault, is_sealed, load_vault, warn_if_shared
from shomei.errors import ConfigError
from shomei.files import MAX_SECRET, read_text

log = logging.getLogger("shomei.ra.mail")

SmtpFactory = Callable[[MailSettings], smtplib.SMTP]


@dataclass(frozen=True)
class MailSummary:
    sent: int
    failed: int
    remaining: int  # still unsent after this run (more than one batch, or failures)


def build_message(row: OutboxMail, *, sender: str, vault: Vault | None = None) -> EmailMessage:
    """The RFC 5322 message of an outbox row, 7-bit clean for any SMTP server: the Japanese
    subject (and a Japanese sender name) as RFC 2047 encoded words, the UTF-8 body in base64
    (RFC 2045), never raw 8-bit bytes a server without 8BITMIME could mangle.

    A sealed body (a mail that carries a code, :func:`ra.mailing.notify.mail_secret`) is
    opened with ``vault``.
    """
    body = row.body
    if is_sealed(body):
        if vault is None:
            raise ConfigError(
                f"mail {row.message_id} is sealed and no secrets key was given",
                message_ja=f"メール {row.message_id} は暗号化されていますが、鍵がありません",
            )
        body = vault.open(body, context=outbox_body_context(row.message_id))
    message = EmailMessage(policy=email.policy.default)
    message["Message-ID"] = row.message_id
    message["From"] = sender
    message["To"] = row.to_address
    message["Subject"] = row.subject
    message["Date"] = email.utils.format_datetime(row.created_at.astimezone(dt.UTC))
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834 §5
    message.set_content(body, charset="utf-8", cte="base64")
    return message


def connect(settings: MailSettings) -> smtplib.SMTP:
    """An SMTP connection as configured (STARTTLS and login when asked for)."""
    # The password file is read first: a problem with it leaves no connection open.
    password = _smtp_password(settings) if settings.username else None
    try:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30)
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the SMTP server {settings.smtp_host}:{settings.smtp_port} "
            f"({getattr(exc, 'strerror', None) or exc}): check ra.mail.smtp_host and "
            "smtp_port, and that the server is running; the mails stay in the outbox",
            message_ja=f"メールサーバ {settings.smtp_host}:{settings.smtp_port} に接続できません"
            f"({getattr(exc, 'strerror', None) or exc})。ra.mail.smtp_host と smtp_port、"
            "サーバの稼働を確認してください(メールは送信待ちのまま残ります)",
        ) from exc
    try:
        if settings.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.username and password is not None:
            smtp.login(settings.username, password)
    except (smtplib.SMTPException, OSError) as exc:
        smtp.close()
        step = "refused the login of" if settings.username else "failed STARTTLS for"
        what = settings.username or "the RA"
        reason = " ".join(str(exc).split())[:200]
        raise ConfigError(
            f"the SMTP server {settings.smtp_host}:{settings.smtp_port} {step} {what} "
            f"({reason}): check ra.mail (starttls, username, password_file)",
            message_ja=f"メールサーバ {settings.smtp_host}:{settings.smtp_port} で認証または "
            f"STARTTLS に失敗しました({reason})。ra.mail の設定を確認してください",
        ) from exc
    return smtp


def _smtp_password(settings: MailSettings) -> str:
    if settings.password_file is None:
        raise ConfigError(
            "ra.mail.username is set but ra.mail.password_file is not",
            message_ja="ra.mail.password_file が設定されていません",
        )
    password = read_text(
        settings.password_file,
        what="SMTP password file",
        what_ja="SMTP パスワードファイル",
        limit=MAX_SECRET,
    ).strip()
    warn_if_shared(settings.password_file, "the SMTP password file")
    return password


def _unsent(session: Session, limit: int, ids: Collection[int] | None = None) -> list[OutboxMail]:
    query = select(OutboxMail).where(OutboxMail.sent_at.is_(None))
    if ids is not None:
        query = query.where(OutboxMail.id.in_(list(ids)))
    return list(session.execute(query.order_by(OutboxMail.id).limit(limit)).scalars())


def send_outbox(
    factory: sessionmaker[Session],
    settings: RASettings,
    *,
    now: dt.datetime,
    smtp_factory: SmtpFactory = connect,
    ids: Collection[int] | None = None,
) -> MailSummary:
    """Send up to ``mail.batch_size`` unsent mails (only those of ``ids``, if given: a code
    the web sends at once, :func:`send_soon`); see the module docstring."""
    with factory() as session:
        rows = _unsent(session, settings.mail.batch_size, ids)
    sent = failed = 0
    vault = load_vault(settings.secrets_key_file) if any(is_sealed(r.body) for r in rows) else None
    if rows:
        smtp = smtp_factory(settings.mail)
        try:
            for row in rows:
                message = build_message(row, sender=settings.mail.sender, vault=vault)
                try:
                    smtp.send_message(message)
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError) as exc:
                    failed += 1
                    log.warning("mail %s refused: %s", row.message_id, exc)
                    with factory() as session, session.begin():
                        session.execute(
                            update(OutboxMail)
                            .where(OutboxMail.id == row.id)
                            .values(attempts=OutboxMail.attempts + 1, last_error=str(exc)[:2000])
                        )
                    continue
                except (smtplib.SMTPException, OSError) as exc:
                    # The server went away: this mail and the rest stay in the outbox.
                    raise ConfigError(
                        f"the SMTP server {settings.mail.smtp_host}:{settings.mail.smtp_port} "
                        f"stopped answering after {sent} mail(s) "
                        f"({' '.join(str(exc).split())[:200]}); the rest stay in the outbox",
                        message_ja=f"メールサーバが {sent} 通の送信後に応答しなくなりました。"
                        "残りは送信待ちのままです",
                    ) from exc
                # The server has it; only now is it marked (a crash here resends it with
                # the same Message-ID).
                with factory() as session, session.begin():
                    session.execute(
                        update(OutboxMail)
                        .where(OutboxMail.id == row.id, OutboxMail.sent_at.is_(None))
                        .values(sent_at=now, attempts=OutboxMail.attempts + 1, last_error=None)
                    )
                sent += 1
        finally:
            try:
                smtp.quit()
            except smtplib.SMTPException:
                smtp.close()
    with factory() as session:
        remaining = session.execute(
            select(func.count()).select_from(OutboxMail).where(OutboxMail.sent_at.is_(None))
        ).scalar_one()
    return MailSummary(sent=sent, failed=failed, remaining=remaining)


def send_soon(
    factory: sessionmaker[Session],
    settings: RASettings,
    ids: Collection[int],
    *,
    now: dt.datetime,
    smtp_factory: SmtpFactory = connect,
) -> bool:
    """Send the committed outbox mails ``ids`` now (a code someone is waiting for).

    True when they went out.  Any failure (the SMTP server is down, refuses) is logged and
    leaves them in the outbox, where the scheduled mail job sends them on its next run; the
    caller is never stopped by it.
    """
    try:
        summary = send_outbox(factory, settings, now=now, smtp_factory=smtp_factory, ids=ids)
    except Exception:
        log.warning(
            "mails %s not sent at once; the mail job will send them", list(ids), exc_info=True
        )
        return False
    return summary.sent == len(ids)
