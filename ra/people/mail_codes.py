"""6-digit codes mailed to an address: to confirm it, or to reset a forgotten password.

:func:`issue` makes a code, keeps only its keyed hash (:meth:`ra.store.vault.Vault.mac` over a
salt of its own and the code, in table ``mail_codes``) and writes the mail that carries it to
the outbox, sealed until sent (:func:`ra.mailing.notify.mail_secret`), subject and body in
Japanese.  A code is valid for :data:`CODE_TTL` (10 minutes); a newer code of the same purpose
replaces it; :data:`CODE_TRIES` (5) wrong codes void it, after which a new code can be sent.
At most :data:`SENDS_PER_HOUR` codes of one purpose go to one account in an hour, so the page
cannot be used to flood a mailbox.

:func:`check` compares a typed code (full-width digits and spaces forgiven) in constant time
and closes the code when it was right.  Every code sent, every wrong code and every voided
code is in the audit log (never the code).
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import unicodedata
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ra.mailing.notify import mail_secret
from ra.people.passwords import Rng
from ra.store import audit
from ra.store.models import Account, MailCode
from ra.store.vault import Vault
from shomei.clock import require_aware
from shomei.errors import AuthenticationFailed, Refused
from shomei.jatext import format_datetime

CONFIRM_EMAIL = "confirm_email"
RESET_PASSWORD = "reset_password"  # noqa: S105 - a purpose, not a password
PURPOSES = (CONFIRM_EMAIL, RESET_PASSWORD)
CODE_TTL = dt.timedelta(minutes=10)
CODE_TRIES = 5
SENDS_PER_HOUR = 5
CODE_DIGITS = 6


class CodeWrong(AuthenticationFailed):
    """The typed code is not the one sent (its tries are counted)."""

    code = "code_wrong"


class CodeVoided(AuthenticationFailed):
    """The code was wrong too many times and no longer counts; a new one can be sent."""

    code = "code_voided"


class CodeExpired(Refused):
    """The code's 10 minutes are over; a new one can be sent."""

    code = "code_expired"


class NoCode(Refused):
    """No code is open: none was sent, or the last one was used, voided or replaced."""

    code = "no_code"


class TooManyCodes(Refused):
    """Too many codes were sent to this account within an hour."""

    code = "too_many_codes"


def wrong(remaining: int) -> CodeWrong:
    return CodeWrong(
        f"the code is not correct ({remaining} tries left)",
        message_ja=f"確認コードが正しくありません。メールの6桁の数字を確かめて、もう一度入力して"
        f"ください(あと{remaining}回まで)",
        remaining=remaining,
    )


def voided() -> CodeVoided:
    return CodeVoided(
        f"the code was wrong {CODE_TRIES} times and is no longer valid: send a new code",
        message_ja=f"確認コードを{CODE_TRIES}回間違えたため、このコードは使えなくなりました。"
        "「新しいコードを送る」を押して、届いたメールの新しいコードを入力してください",
    )


def expired() -> CodeExpired:
    minutes = int(CODE_TTL.total_seconds() // 60)
    return CodeExpired(
        f"the code has expired ({minutes} minutes): send a new code",
        message_ja=f"確認コードの有効期限({minutes}分)が過ぎました。「新しいコードを送る」を"
        "押して、届いたメールの新しいコードを入力してください",
    )


def no_code() -> NoCode:
    return NoCode(
        "there is no valid code: send a new code",
        message_ja="有効な確認コードがありません。「新しいコードを送る」を押してください",
    )


def too_many() -> TooManyCodes:
    return TooManyCodes(
        f"more than {SENDS_PER_HOUR} codes within an hour: wait before asking for another",
        message_ja=f"確認コードを1時間に{SENDS_PER_HOUR}回送りました。しばらく(1時間ほど)"
        "たってから、もう一度お試しください",
    )


@dataclass(frozen=True)
class CodeSent:
    """A code went to the outbox: the mail's row id (to send it at once) and the expiry."""

    mail_id: int
    address: str
    expires_at: dt.datetime


def normalize(typed: object) -> str:
    """A typed code as ASCII digits (full-width digits and spaces forgiven); '' if not one."""
    if not isinstance(typed, str) or len(typed) > 40:
        return ""
    text = "".join(unicodedata.normalize("NFKC", typed).split()).replace("-", "")
    return text if len(text) == CODE_DIGITS and text.isascii() and text.isdigit() else ""


def new_code(rng: Rng = secrets.token_bytes) -> str:
    """Six random digits (uniform: rejection sampling over 3 bytes)."""
    limit = (1 << 24) - (1 << 24) % 10**CODE_DIGITS
    while True:
        value = int.from_bytes(rng(3), "big")
        if value < limit:
            return f"{value % 10**CODE_DIGITS:0{CODE_DIGITS}d}"


def _context(purpose: str, account: Account) -> str:
    return f"mail_codes/{purpose}/{account.id}"


def _audit(
    session: Session,
    account: Account,
    action: str,
    now: dt.datetime,
    source_address: str | None,
    **details: object,
) -> None:
    audit.record(
        session,
        actor=account.kind.value,
        actor_id=account.user_id,
        action=action,
        object_type="account",
        object_id=account.user_id,
        now=now,
        source_address=source_address,
        details={"kind": account.kind.value, **details},
    )


def _mail_text(
    purpose: str, account: Account, code: str, expires: dt.datetime, federation_name: str
) -> tuple[str, str]:
    minutes = int(CODE_TTL.total_seconds() // 60)
    until = format_datetime(expires)
    if purpose == CONFIRM_EMAIL:
        subject = f"【{federation_name}】メールアドレスの確認コード"
        lead = [
            "電子証明書ポータルで、このメールアドレスが登録されようとしています。",
            "ポータルの画面に、次の6桁の確認コードを入力してください。",
        ]
        unknown = "お心当たりがない場合は、このメールを削除してください。登録は行われません。"
    else:
        subject = f"【{federation_name}】パスワード再設定の確認コード"
        lead = [
            "電子証明書ポータルで、パスワードの再設定のお申し込みがありました。",
            "ポータルの画面に、次の6桁の確認コードを入力してください。",
        ]
        unknown = "お心当たりがない場合は、このメールを削除してください。パスワードは変わりません。"
    body = "\n".join(
        [
            f"{account.name} 様",
            "",
            f"{federation_name}です。",
            *lead,
            "",
            f"  確認コード: {code}",
            "",
            f"有効期限: {until} まで(送信から{minutes}分間)",
            f"{CODE_TRIES}回間違えるとこのコードは使えなくなります。その場合は画面の"
            "「新しいコードを送る」を押してください。",
            "",
            unknown,
            "確認コードは他の人に教えないでください。連合会の職員がコードをお尋ねすることは"
            "ありません。",
            "",
            f"ユーザーID: {account.user_id}",
            federation_name,
        ]
    )
    return subject, body


def _open_code(session: Session, account: Account, purpose: str, *, lock: bool) -> MailCode | None:
    query = (
        select(MailCode)
        .where(
            MailCode.account_id == account.id,
            MailCode.purpose == purpose,
            MailCode.closed_at.is_(None),
        )
        .order_by(MailCode.id.desc())
        .limit(1)
    )
    if lock:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def issue(
    session: Session,
    account: Account,
    purpose: str,
    address: str,
    *,
    vault: Vault,
    now: dt.datetime,
    message_id_domain: str,
    federation_name: str,
    rng: Rng = secrets.token_bytes,
    source_address: str | None = None,
) -> CodeSent:
    """Mail a new code for ``purpose`` to ``address``; earlier open codes are replaced.

    Raises :class:`TooManyCodes` after :data:`SENDS_PER_HOUR` codes within an hour.
    """
    now = require_aware(now, "now")
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    sent_lately = session.scalar(
        select(func.count())
        .select_from(MailCode)
        .where(
            MailCode.account_id == account.id,
            MailCode.purpose == purpose,
            MailCode.created_at > now - dt.timedelta(hours=1),
        )
    )
    if (sent_lately or 0) >= SENDS_PER_HOUR:
        _audit(session, account, "mail_code_refused", now, source_address, purpose=purpose)
        raise too_many()
    session.execute(
        update(MailCode)
        .where(
            MailCode.account_id == account.id,
            MailCode.purpose == purpose,
            MailCode.closed_at.is_(None),
        )
        .values(closed_at=now, outcome="replaced")
    )
    code = new_code(rng)
    salt = rng(16).hex()
    expires = now + CODE_TTL
    row = MailCode(
        account_id=account.id,
        purpose=purpose,
        address=address,
        salt=salt,
        code_hash=vault.mac(f"{salt}:{code}", context=_context(purpose, account)),
        created_at=now,
        expires_at=expires,
        tries=0,
    )
    session.add(row)
    subject, body = _mail_text(purpose, account, code, expires, federation_name)
    mail = mail_secret(
        session,
        account,
        to_address=address,
        kind=f"code_{purpose}",
        subject=subject,
        body=body,
        now=now,
        message_id_domain=message_id_domain,
        vault=vault,
    )
    _audit(session, account, "mail_code_sent", now, source_address, purpose=purpose, to=address)
    session.flush()
    return CodeSent(mail.id, address, expires)


def check(
    session: Session,
    account: Account,
    purpose: str,
    typed: object,
    *,
    vault: Vault,
    now: dt.datetime,
    source_address: str | None = None,
) -> MailCode:
    """The open code of ``purpose`` if ``typed`` is it (the code is then closed as used).

    Raises :class:`NoCode`, :class:`CodeExpired`, :class:`CodeWrong` (the try is counted) or,
    at the :data:`CODE_TRIES`-th wrong code, :class:`CodeVoided`.  The counts are written in
    the session also when the code is refused: the caller commits them.
    """
    now = require_aware(now, "now")
    row = _open_code(session, account, purpose, lock=True)
    if row is None:
        raise no_code()
    if row.expires_at <= now:
        row.closed_at, row.outcome = now, "expired"
        session.flush()
        raise expired()
    digits = normalize(typed)
    expected = row.code_hash
    given = vault.mac(f"{row.salt}:{digits}", context=_context(purpose, account))
    if digits and hmac.compare_digest(expected, given):
        row.closed_at, row.outcome = now, "used"
        session.flush()
        return row
    row.tries += 1
    if row.tries >= CODE_TRIES:
        row.closed_at, row.outcome = now, "too_many"
        _audit(
            session,
            account,
            "mail_code_voided",
            now,
            source_address,
            purpose=purpose,
            tries=row.tries,
        )
        session.flush()
        raise voided()
    _audit(
        session, account, "mail_code_failed", now, source_address, purpose=purpose, tries=row.tries
    )
    session.flush()
    raise wrong(CODE_TRIES - row.tries)


def open_code(session: Session, account: Account, purpose: str) -> MailCode | None:
    """The code of ``purpose`` still open for ``account`` (to show where it went), or None."""
    return _open_code(session, account, purpose, lock=False)


def last_code(session: Session, account: Account, purpose: str) -> MailCode | None:
    """The latest code of ``purpose`` sent to ``account``, open or closed, or None."""
    return session.execute(
        select(MailCode)
        .where(MailCode.account_id == account.id, MailCode.purpose == purpose)
        .order_by(MailCode.id.desc())
        .limit(1)
    ).scalar_one_or_none()
