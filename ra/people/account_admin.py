"""What the console does to accounts after creating them (docs/product.md §3).

* :func:`search` — offices and agents by user ID prefix (full-width folded), office number
  prefix or a part of the name; each row says whether the account ever signed in.
* :func:`console_users` — the staff and admin users (admins only).
* :func:`disable` — an account can no longer sign in; its web sessions end.
* :func:`reset_totp` — a staff member (or an office or agent that lost its phone) enrols an
  authenticator app again at the next sign-in.
* :func:`remind` — one mail through the outbox to an office or agent that has not signed in.

"Signed in" is read from the audit log (the ``sign_in`` records :mod:`ra.people.auth` writes), so
the
accounts table needs no column of its own.  An account that has not signed in within
:data:`REMINDER_AFTER` of its creation is *overdue*: the console highlights it and offers the
reminder mail.  Every change is audited; permissions are checked here (:mod:`ra.party`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ra.mailing.notify import notify
from ra.party import Party, Permission, require
from ra.people.accounts import audit_account, get_account
from ra.store.models import Account, AccountKind, AuditRecord
from shomei.errors import Conflict, Refused
from shomei.jatext import fold_user_id

REMINDER_AFTER = dt.timedelta(days=3)
SEARCH_LIMIT = 200  # rows shown; the page says when there are more
PORTAL_KINDS = (AccountKind.OFFICE, AccountKind.AGENT)
CONSOLE_KINDS = (AccountKind.STAFF, AccountKind.ADMIN)


@dataclass(frozen=True)
class AccountRow:
    """An account as the console lists it."""

    account: Account
    signed_in: bool  # at least once, per the audit log
    overdue: bool  # created more than REMINDER_AFTER ago and never signed in
    locked: bool


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def signed_in_ids(session: Session, user_ids: Iterable[str]) -> set[str]:
    """Those of ``user_ids`` that signed in at least once (audit ``sign_in`` records)."""
    ids = list(user_ids)
    if not ids:
        return set()
    found = session.scalars(
        select(AuditRecord.object_id)
        .where(
            AuditRecord.object_type == "account",
            AuditRecord.action == "sign_in",
            AuditRecord.object_id.in_(ids),
        )
        .distinct()
    )
    return set(found)


def _rows(session: Session, accounts: list[Account], now: dt.datetime) -> list[AccountRow]:
    seen = signed_in_ids(session, (a.user_id for a in accounts))
    return [
        AccountRow(
            account=a,
            signed_in=a.user_id in seen,
            overdue=a.active and a.user_id not in seen and a.created_at <= now - REMINDER_AFTER,
            locked=a.locked_until is not None and a.locked_until > now,
        )
        for a in accounts
    ]


def search(
    session: Session,
    party: Party,
    query: str,
    *,
    now: dt.datetime,
    overdue_only: bool = False,
) -> tuple[list[AccountRow], bool]:
    """Offices and agents matching ``query`` (all when empty), newest first; and "more?".

    The query matches a user ID prefix (typed full-width or in upper case, as on the
    sign-in page), an office or agent number prefix, or a part of the name.
    """
    require(party, Permission.MANAGE_PORTAL_ACCOUNTS)
    statement = select(Account).where(Account.kind.in_(PORTAL_KINDS))
    text = query.strip()[:100]
    if text:
        folded = _like_escape(fold_user_id(text, casefold=True))  # user IDs are lower case
        plain = _like_escape(text)
        statement = statement.where(
            or_(
                Account.user_id.like(folded + "%", escape="\\"),
                Account.office_number.like(folded + "%", escape="\\"),
                Account.name.like("%" + plain + "%", escape="\\"),
            )
        )
    if overdue_only:
        statement = statement.where(
            Account.active.is_(True), Account.created_at <= now - REMINDER_AFTER
        )
    statement = statement.order_by(Account.created_at.desc(), Account.id.desc())
    if overdue_only:
        # Whether an account signed in is in the audit log: filter after reading.
        rows = [r for r in _rows(session, list(session.scalars(statement)), now) if r.overdue]
        return rows[:SEARCH_LIMIT], len(rows) > SEARCH_LIMIT
    found = list(session.scalars(statement.limit(SEARCH_LIMIT + 1)))
    return _rows(session, found[:SEARCH_LIMIT], now), len(found) > SEARCH_LIMIT


def account_row(session: Session, party: Party, user_id: str, *, now: dt.datetime) -> AccountRow:
    """One account for its console page (offices and agents: staff; staff and admins: admins)."""
    require(party, Permission.MANAGE_PORTAL_ACCOUNTS, Permission.MANAGE_STAFF)
    account = get_account(session, fold_user_id(user_id))
    require(party, _permission_for(account))
    return _rows(session, [account], now)[0]


def console_users(session: Session, party: Party, *, now: dt.datetime) -> list[AccountRow]:
    """Every staff and admin user, by user ID (admins only)."""
    require(party, Permission.MANAGE_STAFF)
    found = session.scalars(
        select(Account).where(Account.kind.in_(CONSOLE_KINDS)).order_by(Account.user_id)
    )
    return _rows(session, list(found), now)


def _permission_for(account: Account) -> Permission:
    return (
        Permission.MANAGE_STAFF
        if account.kind in CONSOLE_KINDS
        else Permission.MANAGE_PORTAL_ACCOUNTS
    )


def _target(session: Session, party: Party, user_id: str) -> Account:
    # A party with neither permission is refused before the lookup: it learns nothing.
    require(party, Permission.MANAGE_PORTAL_ACCOUNTS, Permission.MANAGE_STAFF)
    account = get_account(session, fold_user_id(user_id))
    require(party, _permission_for(account))
    return account


def disable(
    session: Session,
    party: Party,
    user_id: str,
    *,
    now: dt.datetime,
    source_address: str | None = None,
) -> Account:
    """Disable an account: it can no longer sign in, and its web sessions end.

    Staff disable offices and agents; admins also staff and admins, but never themselves
    (the last admin could lock everyone out of the console).
    """
    account = _target(session, party, user_id)
    if party.account_id is not None and party.account_id == account.id:
        raise Refused(
            "you cannot disable your own account", message_ja="自分のアカウントは無効にできません"
        )
    if not account.active:
        raise Conflict(
            f"{account.user_id} is already disabled",
            message_ja=f"{account.user_id} は既に無効です",
        )
    account.active = False
    account.session_epoch = (account.session_epoch or 0) + 1
    session.flush()
    audit_account(session, party, account, "disable_account", now, source_address)
    return account


def reset_totp(
    session: Session,
    party: Party,
    user_id: str,
    *,
    now: dt.datetime,
    source_address: str | None = None,
) -> Account:
    """Forget an account's authenticator app: the next sign-in enrols a new one.

    Admins do it for staff and admins; staff for an office or agent that enrolled one at its
    first sign-in (``[ra.signin] portal_totp``) and lost the phone (it calls the federation).
    The password stays; the sessions end, so the new enrolment happens at once.
    """
    account = _target(session, party, user_id)
    if account.kind not in CONSOLE_KINDS and account.totp_secret_sealed is None:
        raise Refused(
            f"{account.user_id} has no authenticator app",
            message_ja=f"{account.user_id} は認証アプリを登録していません",
        )
    account.totp_secret_sealed = None
    account.totp_enrolled_at = None
    account.totp_last_step = None
    account.session_epoch = (account.session_epoch or 0) + 1
    session.flush()
    audit_account(session, party, account, "reset_totp", now, source_address)
    return account


REMINDER_TITLE = "電子証明書ポータルへのログインのお願い"


def reminder_body(account: Account, portal_url: str, federation_name: str) -> str:
    """The reminder mail: no password, only where to sign in and what to do first."""
    return "\n".join(
        [
            f"{account.name} 御中",
            "",
            f"{federation_name}です。",
            "郵送でお送りした「ユーザーID・パスワード通知書」で、電子証明書ポータルへの"
            "ログインがまだ行われていません。",
            "通知書に記載のユーザーIDと初回ログイン用パスワードで、次のページからログインして"
            "ください。",
            "",
            f"  {portal_url}",
            f"  ユーザーID: {account.user_id}",
            "",
            "通知書が届いていない、または紛失した場合は、連合会までお電話でご連絡ください。",
            "このメールにパスワードは記載していません。",
        ]
    )


def remind(
    session: Session,
    party: Party,
    user_id: str,
    *,
    now: dt.datetime,
    portal_url: str,
    federation_name: str,
    message_id_domain: str,
    source_address: str | None = None,
) -> Account:
    """Queue one reminder mail (outbox) to an office or agent that has not signed in yet."""
    require(party, Permission.MANAGE_PORTAL_ACCOUNTS)
    account = _target(session, party, user_id)
    if account.kind not in PORTAL_KINDS:
        raise Refused("only offices and agents get reminders", message_ja="事業所と代理人のみです")
    if not account.active:
        raise Conflict(f"{account.user_id} is disabled", message_ja=f"{account.user_id} は無効です")
    if account.user_id in signed_in_ids(session, [account.user_id]):
        raise Conflict(
            f"{account.user_id} has signed in already",
            message_ja=f"{account.user_id} は既にログインしています",
        )
    if not account.email:
        raise Conflict(
            f"{account.user_id} has no mail address",
            message_ja=f"{account.user_id} にはメールアドレスがありません",
        )
    notify(
        session,
        account,
        kind="signin_reminder",
        title=REMINDER_TITLE,
        body=reminder_body(account, portal_url, federation_name),
        now=now,
        message_id_domain=message_id_domain,
    )
    audit_account(session, party, account, "signin_reminder", now, source_address)
    return account
