"""A forgotten portal password: the user ID, a code mailed to the confirmed address, a new one.

For offices and agents who confirmed a mail address at their first sign-in
(:mod:`ra.people.first_sign_in`):

1. :func:`request_code` — the visitor types a user ID; if it is an active office or agent
   with a confirmed address, a 6-digit code is mailed there (:mod:`ra.people.mail_codes`:
   10 minutes, 5 tries, a new code replaces the last).  Nothing tells the visitor whether
   that happened: an unknown ID, an account without a confirmed address and one that asked
   for too many codes look the same;
2. :func:`check_code` — the code.  For an ID that got no code the answers are made the same
   way as for one that did (wrong, then void after 5 tries, expired after 10 minutes), from
   the tries and the time the caller kept for this visitor;
3. :func:`set_new_password` — a new password under the portal's rules, within 10 minutes of
   the code; the account's sessions end and a lockout is lifted (the code proved the mailbox).

Without a confirmed address there is no mail path: the office phones the federation, whose
staff reset the login password in the console and post a letter
(:func:`ra.people.accounts.reset_login_password`).  Every step is audited.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy.orm import Session

from ra.people import auth, mail_codes
from ra.people.first_sign_in import set_password
from ra.people.password_rules import PORTAL
from ra.people.passwords import Rng
from ra.store import audit
from ra.store.models import Account
from ra.store.vault import Vault
from shomei.clock import require_aware
from shomei.errors import MalformedInput, Refused

RESET_WINDOW = mail_codes.CODE_TTL  # from the accepted code to the new password


def _eligible(account: Account | None) -> Account | None:
    if (
        account is None
        or not account.active
        or account.kind not in auth.PORTAL_KINDS
        or not account.email
        or account.email_confirmed_at is None
    ):
        return None
    return account


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


def request_code(
    session: Session,
    typed_user_id: str,
    *,
    vault: Vault,
    now: dt.datetime,
    message_id_domain: str,
    federation_name: str,
    rng: Rng = secrets.token_bytes,
    source_address: str | None = None,
) -> int | None:
    """Mail a reset code if ``typed_user_id`` may get one; the outbox mail's id, or None.

    None for an unknown ID, an account without a confirmed address, a disabled one and one
    that had too many codes within the hour: the caller shows the same page in every case.
    """
    now = require_aware(now, "now")
    account = _eligible(auth.find_account(session, typed_user_id))
    if account is None:
        return None
    try:
        sent = mail_codes.issue(
            session,
            account,
            mail_codes.RESET_PASSWORD,
            account.email or "",
            vault=vault,
            now=now,
            message_id_domain=message_id_domain,
            federation_name=federation_name,
            rng=rng,
            source_address=source_address,
        )
    except mail_codes.TooManyCodes:
        return None
    return sent.mail_id


def _as_if_sent(requested_at: dt.datetime, tries: int, now: dt.datetime) -> Exception:
    """The answer to a code for which no code exists, as it would be for one that does."""
    if now >= requested_at + mail_codes.CODE_TTL:
        return mail_codes.expired()
    if tries + 1 >= mail_codes.CODE_TRIES:
        return mail_codes.voided()
    return mail_codes.wrong(mail_codes.CODE_TRIES - tries - 1)


def check_code(
    session: Session,
    typed_user_id: str,
    code: str,
    *,
    requested_at: dt.datetime,
    tries: int,
    vault: Vault,
    now: dt.datetime,
    source_address: str | None = None,
) -> Account:
    """The account whose reset code ``code`` is (the code is then used up).

    ``requested_at`` and ``tries`` are what the caller kept for this visitor (when the code
    was asked for, how many wrong codes so far): an ID that got no code is answered from them
    exactly as one that did.  Raises the errors of :func:`ra.people.mail_codes.check`.
    """
    now = require_aware(now, "now")
    account = _eligible(auth.find_account(session, typed_user_id))
    if account is None:
        raise _as_if_sent(requested_at, tries, now)
    try:
        mail_codes.check(
            session,
            account,
            mail_codes.RESET_PASSWORD,
            code,
            vault=vault,
            now=now,
            source_address=source_address,
        )
    except mail_codes.NoCode:
        raise _as_if_sent(requested_at, tries, now) from None
    _audit(session, account, "password_reset_code_accepted", now, source_address)
    return account


def start_again() -> Refused:
    minutes = int(RESET_WINDOW.total_seconds() // 60)
    return Refused(
        "the time to set a new password is over: start again",
        message_ja=f"確認コードの入力から{minutes}分が過ぎたため、この手続きは無効になりました。"
        "はじめからやり直してください",
    )


def set_new_password(
    session: Session,
    account_id: int,
    epoch: int,
    new: str,
    *,
    verified_at: dt.datetime,
    now: dt.datetime,
    source_address: str | None = None,
) -> Account:
    """Set the new password of the account whose code was accepted at ``verified_at``.

    Refused after :data:`RESET_WINDOW` or when the account changed since (``epoch``); a
    password that breaks a portal rule is :class:`MalformedInput` listing every broken rule.
    """
    now = require_aware(now, "now")
    account = _eligible(session.get(Account, account_id))
    if account is None or account.session_epoch != epoch or now > verified_at + RESET_WINDOW:
        raise start_again()
    problems = PORTAL.problems(new if isinstance(new, str) else "", account.user_id)
    if problems:
        raise MalformedInput(
            "; ".join(p.message for p in problems),
            message_ja="\n".join(p.message_ja for p in problems),
            column="password",
            problems=problems,
        )
    set_password(account, new, now=now)
    was_locked = account.locked_until is not None
    account.failed_logins = 0
    account.locked_until = None
    _audit(session, account, "password_reset", now, source_address, lifted_lockout=was_locked)
    session.flush()
    return account


__all__ = ["RESET_WINDOW", "check_code", "request_code", "set_new_password", "start_again"]
