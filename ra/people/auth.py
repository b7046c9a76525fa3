"""Sign-in: password, lockout, TOTP with a replay guard, enrolment and own-password changes.

What the console and the portal call to let a person in.  A sign-in is one or two steps:

1. :func:`check_password`: the user ID (typed full-width or half-width: it is folded) and the
   login password, checked against the argon2id hash.  An unknown user ID costs the same
   argon2 time as a known one and fails with the same :class:`AuthenticationFailed`, which
   never says which of the two was wrong.  Offices and agents are then signed in, unless
   the portal asks for TOTP too (``[ra.signin] portal_totp``) and they have enrolled; staff
   and admins go on to the second step.
2. :func:`check_totp` (RFC 6238, 30-second steps, one step of clock drift either way).  A code
   is accepted once: the time step of the last accepted code is kept per account, and a code
   of that step or an earlier one is refused, so a code seen over a shoulder or replayed from
   a captured request is worthless.  A staff account whose TOTP secret has not been confirmed
   yet enrols instead (:func:`enrolment_secret`, then :func:`confirm_enrolment`): the secret
   counts only once one code made from it was accepted.  Offices and agents enrol at their
   first sign-in (:mod:`ra.people.first_sign_in`) when the portal asks for TOTP.

Every failure of either step counts toward the lockout of the account (settings
``[ra.signin]``, by the page: the console locks after 5 failures for 30 minutes, the portal
after 3); a locked account is refused with :class:`LockedOut`, which carries ``until``,
without looking at the password.  Failures with an unknown user ID are counted the same way
(table ``signin_unknown``, keyed by a hash of the ID), so an unknown ID locks as a real one
does and the lockout does not tell which IDs exist either.

Every sign-in, failure, lockout and unlock is in the audit log, in the same transaction as
the change it records, so the caller must commit also when a step fails (the
exceptions say nothing was signed in, not that nothing was written): :func:`attempt` does that.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NoReturn

import pyotp
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from ra.party import Party, PartyKind, Permission, require
from ra.people.accounts import KIND_JA, Problem, get_account
from ra.people.password_rules import STAFF, PasswordPolicy, password_problems
from ra.people.passwords import Rng, WrongPassword, hash_password
from ra.people.passwords import check_password as _check_hash
from ra.settings import LockoutPolicy, SignInSettings
from ra.store import audit
from ra.store.models import Account, AccountKind, UnknownSignIn
from ra.store.vault import Vault, totp_context
from shomei.clock import require_aware
from shomei.errors import AuthenticationFailed, LockedOut, MalformedInput, NotFound
from shomei.jatext import fold_user_id

CONSOLE_KINDS = frozenset({AccountKind.STAFF, AccountKind.ADMIN})
PORTAL_KINDS = frozenset({AccountKind.OFFICE, AccountKind.AGENT})
TOTP_STEP = 30  # seconds (RFC 6238 §4)
TOTP_DRIFT = 1  # steps accepted either side of the current one
INPUT_LIMIT = 200  # longer input is not a password or a user ID of ours; not hashed
UNKNOWN_KEPT = dt.timedelta(days=30)  # failures with unknown IDs are forgotten after this
LOCKED_JA = "サインインの失敗が続いたため、このアカウントは一時的にロックされています"


@dataclass(frozen=True)
class PasswordChecked:
    """The first step passed: who, and whether a second step is needed."""

    account: Account
    needs_totp: bool  # a staff member or admin with a confirmed TOTP secret
    needs_enrolment: bool  # a staff member or admin who has yet to confirm a TOTP secret

    @property
    def signed_in(self) -> bool:
        return not (self.needs_totp or self.needs_enrolment)


def _failed() -> AuthenticationFailed:
    return AuthenticationFailed(
        "the user ID or password is not correct",
        message_ja="ユーザーIDまたはパスワードが正しくありません",
    )


def _wrong_code() -> AuthenticationFailed:
    return AuthenticationFailed(
        "the one-time code is not correct (or was used already)",
        message_ja="ワンタイムパスワードが正しくありません(使用済みのコードは使えません)",
    )


@functools.cache
def _decoy_hash() -> str:
    # An unknown user ID is checked against this hash, so it costs the argon2 time a known
    # one does and a stopwatch cannot tell the two apart.
    return hash_password(secrets.token_urlsafe(16))


def policy_for(account: Account, settings: SignInSettings) -> LockoutPolicy:
    """The lockout policy of the page ``account`` signs in on (console or portal)."""
    return settings.console if account.kind in CONSOLE_KINDS else settings.portal


def page_policy(kinds: frozenset[AccountKind], settings: SignInSettings) -> LockoutPolicy:
    """The lockout policy of a sign-in page, by the accounts it signs in.

    The page's, not the account's: an office's ID tried at the console locks as a staff
    member's or an unknown ID would there, so the count does not tell what an ID is.
    """
    return settings.console if kinds <= CONSOLE_KINDS else settings.portal


def _unknown_key(typed_user_id: object) -> str:
    text = typed_user_id if isinstance(typed_user_id, str) else ""
    folded = fold_user_id(text[:INPUT_LIMIT])
    return hashlib.sha256(folded.encode("utf-8", "surrogatepass")).hexdigest()


def _unknown_attempt(
    session: Session,
    typed_user_id: object,
    password: object,
    policy: LockoutPolicy,
    now: dt.datetime,
    source_address: str | None,
) -> NoReturn:
    """A sign-in with an ID no account has: refused as a known account would be, at its cost."""
    key = _unknown_key(typed_user_id)
    # Rows nobody has tried for a long time go (the one difference from an account, whose
    # count stays until a sign-in succeeds), so guessed IDs do not fill the table.
    session.execute(
        delete(UnknownSignIn).where(
            UnknownSignIn.last_failure_at < now - UNKNOWN_KEPT, UnknownSignIn.key != key
        )
    )
    row = session.get(UnknownSignIn, key, with_for_update=True)
    if row is not None and row.locked_until is not None:
        if row.locked_until > now:
            raise LockedOut(
                f"too many failed sign-ins: locked until {row.locked_until.isoformat()}",
                message_ja=LOCKED_JA,
                until=row.locked_until,
            )
        row.locked_until = None
        row.failed_logins = 0
    try:
        _check_hash(_decoy_hash(), str(password)[:INPUT_LIMIT], what="", what_ja="")
    except WrongPassword:
        pass
    if row is None:
        row = UnknownSignIn(key=key, failed_logins=0, last_failure_at=now)
        session.add(row)
    row.failed_logins += 1
    row.last_failure_at = now
    details: dict[str, object] = {"user_id_sha256": key[:16], "failures": row.failed_logins}
    audit.record(
        session,
        actor="anonymous",
        actor_id="-",
        action="sign_in_failed",
        object_type="account",
        object_id="(unknown)",
        now=now,
        source_address=source_address,
        details={**details, "stage": "unknown_user"},
    )
    if row.failed_logins >= policy.attempts:
        row.locked_until = now + dt.timedelta(minutes=policy.minutes)
    session.flush()
    raise _failed()


def _audit(
    session: Session,
    account: Account,
    action: str,
    now: dt.datetime,
    source_address: str | None,
    *,
    actor: Party | None = None,
    **details: object,
) -> None:
    # Without another actor the account acts itself (even a disabled or locked one, whose
    # refused sign-in is recorded too): the party is built here, not by ra.party.party_of.
    who = actor or Party(PartyKind(account.kind.value), account.user_id, account.id)
    audit.record(
        session,
        actor=who.actor.value,
        actor_id=who.audit_id,
        action=action,
        object_type="account",
        object_id=account.user_id,
        now=now,
        source_address=source_address,
        details={"kind": account.kind.value, **details},
    )


def _lift_expired_lock(
    session: Session, account: Account, now: dt.datetime, source_address: str | None
) -> None:
    if account.locked_until is not None and account.locked_until <= now:
        account.locked_until = None
        account.failed_logins = 0
        _audit(session, account, "unlock", now, source_address, by="expiry")


def _refuse_if_locked(account: Account, now: dt.datetime) -> None:
    if account.locked_until is not None and account.locked_until > now:
        raise LockedOut(
            f"too many failed sign-ins: locked until {account.locked_until.isoformat()}",
            message_ja=LOCKED_JA,
            until=account.locked_until,
        )


def refuse_if_locked(account: Account, now: dt.datetime) -> None:
    """Raise :class:`LockedOut` while ``account`` is locked."""
    _refuse_if_locked(account, now)


def record_failure(
    session: Session,
    account: Account,
    settings: SignInSettings,
    *,
    now: dt.datetime,
    stage: str,
    source_address: str | None = None,
) -> None:
    """Count a failed step of ``account``'s sign-in (e.g. a wrong identity answer at the
    first sign-in) toward its lockout, audited; the caller raises the error to show."""
    _count_failure(session, account, policy_for(account, settings), now, source_address, stage)


def _count_failure(
    session: Session,
    account: Account,
    policy: LockoutPolicy,
    now: dt.datetime,
    source_address: str | None,
    stage: str,
) -> None:
    account.failed_logins = (account.failed_logins or 0) + 1
    _audit(
        session,
        account,
        "sign_in_failed",
        now,
        source_address,
        stage=stage,
        failures=account.failed_logins,
    )
    if account.failed_logins >= policy.attempts:
        account.locked_until = now + dt.timedelta(minutes=policy.minutes)
        _audit(
            session,
            account,
            "lockout",
            now,
            source_address,
            until=account.locked_until.isoformat(),
            failures=account.failed_logins,
        )
    session.flush()


def _signed_in(
    session: Session, account: Account, now: dt.datetime, source_address: str | None, how: str
) -> None:
    account.failed_logins = 0
    _audit(session, account, "sign_in", now, source_address, factors=how)
    session.flush()


def find_account(session: Session, typed_user_id: str) -> Account | None:
    """The account a typed user ID means (full-width folded), or None."""
    if not isinstance(typed_user_id, str) or len(typed_user_id) > INPUT_LIMIT:
        return None
    user_id = fold_user_id(typed_user_id)
    if not user_id:
        return None
    return session.execute(select(Account).where(Account.user_id == user_id)).scalar_one_or_none()


def check_password(
    session: Session,
    typed_user_id: str,
    password: str,
    *,
    settings: SignInSettings,
    now: dt.datetime,
    kinds: frozenset[AccountKind],
    source_address: str | None = None,
) -> PasswordChecked:
    """Step one: the user ID and login password of an account of one of ``kinds``.

    ``kinds`` are the accounts the page signs in (the console: staff and admins); any other
    account, a disabled one and an unknown user ID fail exactly as a wrong password does.
    Raises :class:`AuthenticationFailed` or :class:`LockedOut`; both may have written audit
    records and counters, which the caller commits.
    """
    now = require_aware(now, "now")
    policy = page_policy(kinds, settings)
    account = find_account(session, typed_user_id)
    if account is None:
        _unknown_attempt(session, typed_user_id, password, policy, now, source_address)
    _lift_expired_lock(session, account, now, source_address)
    _refuse_if_locked(account, now)
    try:
        if not isinstance(password, str) or len(password) > INPUT_LIMIT:
            raise WrongPassword("not a password")
        _check_hash(account.password_hash, password, what="password", what_ja="パスワード")
    except WrongPassword:
        _count_failure(session, account, policy, now, source_address, "password")
        raise _failed() from None
    if not account.active or account.kind not in kinds:
        # The right password of an account that may not sign in here: still a failure, and
        # said the same way, so the page does not tell what kind of account an ID is.
        _audit(session, account, "sign_in_failed", now, source_address, stage="not_allowed")
        session.flush()
        raise _failed()
    enrolled = account.totp_enrolled_at is not None and account.totp_secret_sealed is not None
    if account.kind in CONSOLE_KINDS:
        return PasswordChecked(account, needs_totp=enrolled, needs_enrolment=not enrolled)
    if settings.portal_totp and enrolled:
        # An office or agent enrols at its first sign-in, signed in (ra.people.first_sign_in):
        # until then the password is its one step.
        return PasswordChecked(account, needs_totp=True, needs_enrolment=False)
    _signed_in(session, account, now, source_address, "password")
    return PasswordChecked(account, needs_totp=False, needs_enrolment=False)


def _step(now: dt.datetime) -> int:
    return int(now.timestamp()) // TOTP_STEP


def _matching_step(secret: str, code: str, now: dt.datetime, after: int | None) -> int | None:
    """The time step within the drift window whose code is ``code`` and is newer than ``after``."""
    code = code.strip().replace(" ", "")
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = _step(now)
    found = None
    for step in range(current - TOTP_DRIFT, current + TOTP_DRIFT + 1):
        # Compare every step in constant time; no early exit.
        if hmac.compare_digest(totp.at(step * TOTP_STEP), code) and (after is None or step > after):
            found = step
    return found


def totp_kinds(settings: SignInSettings | None) -> frozenset[AccountKind]:
    """The accounts that sign in with TOTP: staff and admins, and offices and agents when
    the portal asks for it."""
    if settings is not None and settings.portal_totp:
        return CONSOLE_KINDS | PORTAL_KINDS
    return CONSOLE_KINDS


def _account_for_step(
    session: Session, account_id: int, kinds: frozenset[AccountKind] = CONSOLE_KINDS
) -> Account:
    account = session.execute(
        select(Account).where(Account.id == account_id).with_for_update()
    ).scalar_one_or_none()
    if account is None or not account.active or account.kind not in kinds:
        raise _failed()
    return account


def check_totp(
    session: Session,
    account_id: int,
    code: str,
    *,
    vault: Vault,
    settings: SignInSettings,
    now: dt.datetime,
    source_address: str | None = None,
) -> Account:
    """Step two for staff and admins (and offices and agents when the portal asks for TOTP):
    a TOTP code, accepted once; returns the account.

    The account row is locked while the code is checked, so two requests carrying the same
    code cannot both pass.  A wrong or replayed code counts toward the lockout of the
    account's page.
    """
    now = require_aware(now, "now")
    account = _account_for_step(session, account_id, totp_kinds(settings))
    _lift_expired_lock(session, account, now, source_address)
    _refuse_if_locked(account, now)
    if account.totp_enrolled_at is None or account.totp_secret_sealed is None:
        raise _wrong_code()
    secret = vault.open(account.totp_secret_sealed, context=totp_context(account.user_id))
    step = _matching_step(secret, code, now, account.totp_last_step)
    if step is None:
        _count_failure(session, account, policy_for(account, settings), now, source_address, "totp")
        raise _wrong_code()
    account.totp_last_step = step
    _signed_in(session, account, now, source_address, "password+totp")
    return account


def new_totp_secret(rng: Rng = secrets.token_bytes) -> str:
    """A fresh base32 TOTP secret of 160 bits (the size RFC 4226 §4 recommends)."""
    return base64.b32encode(rng(20)).decode("ascii")


def enrolment_secret(
    session: Session,
    account_id: int,
    *,
    vault: Vault,
    now: dt.datetime,
    rng: Rng = secrets.token_bytes,
    kinds: frozenset[AccountKind] = CONSOLE_KINDS,
) -> str:
    """The TOTP secret a staff member (or, with ``kinds``, an office or agent) is enrolling
    with, made (and sealed) if there is none.

    Only for an account whose secret is not confirmed yet: the same secret is returned until a
    code confirms it, so reloading the enrolment page does not void a QR code already scanned.
    """
    require_aware(now, "now")
    account = _account_for_step(session, account_id, kinds)
    if account.totp_enrolled_at is not None:
        raise _wrong_code()
    if account.totp_secret_sealed is None:
        account.totp_secret_sealed = vault.seal(
            new_totp_secret(rng), context=totp_context(account.user_id)
        )
        session.flush()
    return vault.open(account.totp_secret_sealed, context=totp_context(account.user_id))


def provisioning_uri(secret: str, user_id: str, issuer: str) -> str:
    """The ``otpauth://totp/…`` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=user_id, issuer_name=issuer)


def confirm_enrolment(
    session: Session,
    account_id: int,
    code: str,
    *,
    vault: Vault,
    settings: SignInSettings,
    now: dt.datetime,
    source_address: str | None = None,
    kinds: frozenset[AccountKind] = CONSOLE_KINDS,
    signs_in: bool = True,
) -> Account:
    """Confirm the enrolment secret with one code: from now on it counts, and this signs in
    (unless ``signs_in`` is false: an office enrolling at its first sign-in is in already)."""
    now = require_aware(now, "now")
    account = _account_for_step(session, account_id, kinds)
    _lift_expired_lock(session, account, now, source_address)
    _refuse_if_locked(account, now)
    if account.totp_enrolled_at is not None or account.totp_secret_sealed is None:
        raise _wrong_code()
    secret = vault.open(account.totp_secret_sealed, context=totp_context(account.user_id))
    step = _matching_step(secret, code, now, account.totp_last_step)
    if step is None:
        _count_failure(session, account, policy_for(account, settings), now, source_address, "totp")
        raise _wrong_code()
    account.totp_last_step = step
    account.totp_enrolled_at = now
    _audit(session, account, "totp_enrolled", now, source_address)
    if signs_in:
        _signed_in(session, account, now, source_address, "password+totp")
    else:
        session.flush()
    return account


def change_own_password(
    session: Session,
    account: Account,
    current: str,
    new: str,
    *,
    settings: SignInSettings,
    now: dt.datetime,
    source_address: str | None = None,
    policy: PasswordPolicy = STAFF,
) -> None:
    """Change ``account``'s own login password; its other sessions end (the epoch is raised).

    The current password is checked first (a wrong one counts toward the lockout and raises
    :class:`AuthenticationFailed`); a new password that breaks a rule of ``policy`` (the
    portal's for offices and agents) raises :class:`MalformedInput` with every broken rule in
    ``fields["problems"]``.
    """
    now = require_aware(now, "now")
    _refuse_if_locked(account, now)
    try:
        _check_hash(account.password_hash, current, what="password", what_ja="パスワード")
    except WrongPassword:
        _count_failure(
            session, account, policy_for(account, settings), now, source_address, "password"
        )
        raise AuthenticationFailed(
            "the current password is not correct",
            message_ja="現在のパスワードが正しくありません",
        ) from None
    problems = password_problems(new, account.user_id, policy)
    if not problems and hmac.compare_digest(new.encode(), current.encode()):
        problems = [
            Problem(
                "password",
                "the new password must differ from the current one",
                "新しいパスワードは現在のパスワードと違うものにしてください",
            )
        ]
    if problems:
        raise MalformedInput(
            "; ".join(p.message for p in problems),
            message_ja="\n".join(p.message_ja for p in problems),
            column="password",
            problems=problems,
        )
    account.password_hash = hash_password(new)
    account.password_chosen_at = now
    account.session_epoch = (account.session_epoch or 0) + 1
    _audit(session, account, "password_changed", now, source_address)
    session.flush()


def unlock(
    session: Session,
    party: Party,
    user_id: str,
    *,
    now: dt.datetime,
    source_address: str | None = None,
) -> Account:
    """Lift a login lockout (staff for offices and agents, admins for anyone); audited."""
    now = require_aware(now, "now")
    require(party, Permission.MANAGE_PORTAL_ACCOUNTS, Permission.MANAGE_STAFF)
    account = get_account(session, fold_user_id(user_id))
    require(
        party,
        Permission.MANAGE_STAFF
        if account.kind in CONSOLE_KINDS
        else Permission.MANAGE_PORTAL_ACCOUNTS,
    )
    if account.locked_until is None and not account.failed_logins:
        raise NotFound(
            f"{account.user_id} is not locked",
            message_ja=f"{KIND_JA[account.kind]} {account.user_id} はロックされていません",
        )
    account.locked_until = None
    account.failed_logins = 0
    _audit(session, account, "unlock", now, source_address, actor=party, by="staff")
    session.flush()
    return account


@contextmanager
def attempt(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction for one sign-in step that commits also when the step is refused.

    The counters and audit records of a failed attempt must be kept: an
    :class:`AuthenticationFailed` or :class:`LockedOut` commits and is raised again; any
    other error rolls back.
    """
    session = factory()
    try:
        yield session
        session.commit()
    except (AuthenticationFailed, LockedOut):
        session.commit()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


__all__ = [
    "CONSOLE_KINDS",
    "PORTAL_KINDS",
    "PasswordChecked",
    "attempt",
    "change_own_password",
    "check_password",
    "check_totp",
    "confirm_enrolment",
    "enrolment_secret",
    "find_account",
    "find_account_by_id",
    "new_totp_secret",
    "page_policy",
    "password_problems",
    "policy_for",
    "provisioning_uri",
    "record_failure",
    "refuse_if_locked",
    "totp_kinds",
    "unlock",
]


def find_account_by_id(session: Session, account_id: int) -> Account:
    """The account ``account_id`` (for a signed-in session), or :class:`AuthenticationFailed`."""
    account = session.get(Account, account_id)
    if account is None or not account.active:
        raise _failed()
    return account
