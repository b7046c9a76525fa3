"""The first sign-in of an office or agent to the portal, step by step (docs/office-guide.md).

An account the federation created signs in with the password of its notification letter and
then, before any other page of the portal, does these steps in order (:func:`steps_left`;
the portal's gate sends it back here until none is left):

1. ``terms`` — accept the terms of use (``[ra.signin] terms_of_use``); when and which
   version (``terms_version``) are recorded, and a new version is accepted again;
2. ``identity`` — confirm who it is: the office number (an agent: its agent number), and the
   name in kana when the federation registered one, compared with
   :func:`shomei.jatext.kana_equal` (hiragana or katakana, full or half width, spaces,
   濁音・半濁音, small kana all forgiven).  A wrong answer counts toward the portal's lockout
   (3 failures lock for 30 minutes by default), as a wrong password does;
3. ``password`` — choose a password of its own under the portal's rules
   (:data:`ra.people.password_rules.PORTAL`), not the letter's; the other sessions end.  A
   login password reset by staff (a new letter) brings this step back;
4. ``email`` — register a mail address, confirmed by a 6-digit code mailed to it
   (:mod:`ra.people.mail_codes`: 10 minutes, 5 tries);
5. ``totp`` — only when the portal asks for it (``[ra.signin] portal_totp``): enrol an
   authenticator app (:mod:`ra.people.auth`), whose code is then asked at every sign-in.

Every step is audited.  The functions take the signed-in party (an office or agent acting for
itself) and read its account again.
"""

from __future__ import annotations

import datetime as dt
import enum
import secrets
import unicodedata

from sqlalchemy.orm import Session

from ra.party import Party, Permission, account_of, require
from ra.people import auth, mail_codes
from ra.people.accounts import EMAIL, Problem
from ra.people.password_rules import PORTAL
from ra.people.passwords import Rng, WrongPassword, check_password, hash_password
from ra.settings import SignInSettings
from ra.store import audit
from ra.store.models import Account, AccountKind, MailCode
from ra.store.vault import Vault
from shomei.clock import require_aware
from shomei.errors import AuthenticationFailed, MalformedInput, Refused
from shomei.jatext import kana_equal


class Step(enum.StrEnum):
    TERMS = "terms"
    IDENTITY = "identity"
    PASSWORD = "password"  # noqa: S105 - a step's name
    EMAIL = "email"
    TOTP = "totp"


def steps(settings: SignInSettings) -> list[Step]:
    """Every step of the first sign-in under ``settings``, in order."""
    return [s for s in Step if s is not Step.TOTP or settings.portal_totp]


def steps_left(account: Account, settings: SignInSettings) -> list[Step]:
    """The steps ``account`` still has to do, in order (empty: the portal is open to it)."""
    if account.kind not in auth.PORTAL_KINDS:
        return []
    done = {
        Step.TERMS: account.terms_accepted_at is not None
        and account.terms_version == settings.terms_version,
        Step.IDENTITY: account.identity_confirmed_at is not None,
        Step.PASSWORD: account.password_chosen_at is not None,
        Step.EMAIL: account.email_confirmed_at is not None and bool(account.email),
        Step.TOTP: account.totp_enrolled_at is not None,
    }
    return [s for s in steps(settings) if not done[s]]


def _account(session: Session, party: Party) -> Account:
    require(party, Permission.VIEW_OWN_APPLICATIONS)
    return account_of(session, party)


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


def accept_terms(
    session: Session,
    party: Party,
    *,
    settings: SignInSettings,
    now: dt.datetime,
    source_address: str | None = None,
) -> Account:
    """Record that the account accepted the terms of use of ``settings.terms_version``."""
    now = require_aware(now, "now")
    account = _account(session, party)
    account.terms_accepted_at = now
    account.terms_version = settings.terms_version
    _audit(session, account, "terms_accepted", now, source_address, version=settings.terms_version)
    session.flush()
    return account


def number_label_ja(account: Account) -> str:
    """What the account's number is called: 事業所番号 or 代理人番号."""
    return "代理人番号" if account.kind is AccountKind.AGENT else "事業所番号"


def _digits(typed: str) -> str:
    # Full-width digits, spaces and hyphens are what people type; the number is 10 digits.
    folded = unicodedata.normalize("NFKC", typed[:40])
    return "".join(c for c in folded if not c.isspace() and c not in "-ー")


def confirm_identity(
    session: Session,
    party: Party,
    number: str,
    kana: str,
    *,
    settings: SignInSettings,
    now: dt.datetime,
    source_address: str | None = None,
) -> Account:
    """Check the typed number and kana name against the account's registration.

    A wrong answer counts toward the portal's lockout and raises
    :class:`AuthenticationFailed` (the remaining tries in ``fields["remaining"]``), or
    :class:`~shomei.errors.LockedOut` when it was the last one.  Without a registered kana
    name only the number is compared.
    """
    now = require_aware(now, "now")
    account = _account(session, party)
    auth.refuse_if_locked(account, now)
    number_ok = bool(account.office_number) and _digits(number) == account.office_number
    kana_ok = account.name_kana is None or kana_equal(account.name_kana, kana[:200])
    if not (number_ok and kana_ok):
        auth.record_failure(
            session, account, settings, now=now, stage="identity", source_address=source_address
        )
        auth.refuse_if_locked(account, now)
        remaining = max(0, settings.portal.attempts - (account.failed_logins or 0))
        label = number_label_ja(account)
        what_ja = f"{label}またはフリガナ" if account.name_kana else label
        raise AuthenticationFailed(
            f"the number or kana name does not match the registration ({remaining} tries left)",
            message_ja=f"{what_ja}が登録内容と一致しません。通知書や登録内容を確かめて、もう一度"
            f"入力してください(あと{remaining}回間違えると、しばらくサインインできなくなります)",
            remaining=remaining,
        )
    account.identity_confirmed_at = now
    account.failed_logins = 0
    _audit(session, account, "identity_confirmed", now, source_address)
    session.flush()
    return account


def _problems_error(problems: list[Problem]) -> MalformedInput:
    return MalformedInput(
        "; ".join(p.message for p in problems),
        message_ja="\n".join(p.message_ja for p in problems),
        column="password",
        problems=problems,
    )


def new_password_problems(account: Account, new: str) -> list[Problem]:
    """Every portal rule ``new`` breaks, and whether it is the password it replaces."""
    problems = PORTAL.problems(new, account.user_id)
    if not problems:
        try:
            check_password(account.password_hash, new, what="", what_ja="")
        except WrongPassword:
            pass
        else:
            problems.append(
                Problem(
                    "password",
                    "the new password must differ from the current one",
                    "新しいパスワードは、今のパスワード(通知書のパスワード)と違うものにしてください",
                )
            )
    return problems


def set_password(account: Account, new: str, *, now: dt.datetime) -> None:
    """Store ``new`` (checked by the caller) as a password the person chose; sessions end."""
    account.password_hash = hash_password(new)
    account.password_chosen_at = now
    account.session_epoch = (account.session_epoch or 0) + 1


def choose_password(
    session: Session,
    party: Party,
    new: str,
    *,
    now: dt.datetime,
    source_address: str | None = None,
) -> Account:
    """Replace the letter's password with one the person chose (portal rules).

    Every broken rule is in the :class:`MalformedInput`'s ``fields["problems"]``, one each.
    The account's other sessions end (the epoch is raised): the caller starts a new one.
    """
    now = require_aware(now, "now")
    account = _account(session, party)
    problems = new_password_problems(account, new if isinstance(new, str) else "")
    if problems:
        raise _problems_error(problems)
    set_password(account, new, now=now)
    _audit(session, account, "password_chosen", now, source_address)
    session.flush()
    return account


def normalize_address(typed: str) -> str:
    """A typed mail address with full-width characters and surrounding spaces folded."""
    return unicodedata.normalize("NFKC", typed[:300]).strip()


def send_email_code(
    session: Session,
    party: Party,
    address: str,
    *,
    vault: Vault,
    now: dt.datetime,
    message_id_domain: str,
    federation_name: str,
    rng: Rng = secrets.token_bytes,
    source_address: str | None = None,
) -> mail_codes.CodeSent:
    """Mail a 6-digit code to ``address`` to confirm it (a new code replaces the last one).

    A malformed address is :class:`MalformedInput`; too many codes within an hour
    :class:`~ra.people.mail_codes.TooManyCodes`.
    """
    now = require_aware(now, "now")
    account = _account(session, party)
    address = normalize_address(address)
    if len(address) > 254 or not EMAIL.fullmatch(address):
        raise MalformedInput(
            f"not a mail address: {address!r}",
            message_ja="メールアドレスの形式が正しくありません。例: jimusho@example.jp",
            column="email",
        )
    return mail_codes.issue(
        session,
        account,
        mail_codes.CONFIRM_EMAIL,
        address,
        vault=vault,
        now=now,
        message_id_domain=message_id_domain,
        federation_name=federation_name,
        rng=rng,
        source_address=source_address,
    )


def pending_code(session: Session, party: Party) -> MailCode | None:
    """The account's open confirmation code (where it went, until when), if one is open."""
    account = _account(session, party)
    return mail_codes.open_code(session, account, mail_codes.CONFIRM_EMAIL)


def last_address(session: Session, party: Party) -> str | None:
    """The address the account's latest confirmation code went to (open or not), if any."""
    account = _account(session, party)
    row = mail_codes.last_code(session, account, mail_codes.CONFIRM_EMAIL)
    return row.address if row is not None else None


def confirm_email(
    session: Session,
    party: Party,
    code: str,
    *,
    vault: Vault,
    now: dt.datetime,
    source_address: str | None = None,
) -> Account:
    """Confirm the address the open code went to: it becomes the account's mail address."""
    now = require_aware(now, "now")
    account = _account(session, party)
    row = mail_codes.check(
        session,
        account,
        mail_codes.CONFIRM_EMAIL,
        code,
        vault=vault,
        now=now,
        source_address=source_address,
    )
    before = account.email
    account.email = row.address
    account.email_confirmed_at = now
    _audit(
        session,
        account,
        "email_confirmed",
        now,
        source_address,
        address=row.address,
        changed=before != row.address,
    )
    session.flush()
    return account


def enrolment_secret(
    session: Session, party: Party, *, vault: Vault, now: dt.datetime
) -> tuple[str, str]:
    """The TOTP secret the account enrols with (the same until confirmed) and its user ID."""
    account = _account(session, party)
    if account.totp_enrolled_at is not None:
        raise Refused(
            "the authenticator app is set up already",
            message_ja="認証アプリの設定は済んでいます",
        )
    secret = auth.enrolment_secret(
        session, account.id, vault=vault, now=now, kinds=auth.PORTAL_KINDS
    )
    return secret, account.user_id


def confirm_totp(
    session: Session,
    party: Party,
    code: str,
    *,
    vault: Vault,
    settings: SignInSettings,
    now: dt.datetime,
    source_address: str | None = None,
) -> Account:
    """Confirm the enrolment with one code of the app (a wrong code counts toward the lockout)."""
    account = _account(session, party)
    return auth.confirm_enrolment(
        session,
        account.id,
        code,
        vault=vault,
        settings=settings,
        now=now,
        source_address=source_address,
        kinds=auth.PORTAL_KINDS,
        signs_in=False,
    )


__all__ = [
    "Step",
    "accept_terms",
    "choose_password",
    "confirm_email",
    "confirm_identity",
    "confirm_totp",
    "enrolment_secret",
    "last_address",
    "new_password_problems",
    "number_label_ja",
    "pending_code",
    "send_email_code",
    "set_password",
    "steps",
    "steps_left",
]
