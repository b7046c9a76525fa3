"""Accounts of the RA: offices, agents, federation staff and admins (docs/product.md §3).

Staff create office and agent accounts (one by one here, in bulk with :mod:`ra.people.csvimport`);
each gets a user ID, an issuance password (証明書発行用パスワード) and a login password,
generated from injected randomness and returned once, for the notification letter; only argon2
hashes are stored (:mod:`ra.people.passwords`).  Admins create staff and admin users, who also get a
TOTP secret (RFC 6238) for the console's second factor, stored sealed under the RA's secrets
key (:mod:`ra.store.vault`); the first admin is made at the RA host's command line
(``shomei ra add-staff``), with a user ID the operator chooses.  When an office has lost its
issuance password and has no certificate to receive a sealed notice, it phones the federation,
and staff issue a new one here with the text of the letter to post (docs/product.md §7, A7).

Agents (代理人) carry their 10-digit registration number in ``office_number``: it is the OU of
their certificate exactly as an office's number is.  Every change is audited.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
import unicodedata
from dataclasses import dataclass, field

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.party import Party, Permission, require
from ra.people.passwords import Rng, hash_password, new_issuance_password
from ra.people.passwords import new_login_password as _new_login_password
from ra.store import audit
from ra.store.models import Account, AccountKind
from ra.store.vault import Vault, totp_context
from shomei.clock import to_japan
from shomei.errors import AlreadyExists, MalformedInput, NotFound, Refused

NUMBER = re.compile(r"[0-9]{10}")  # ASCII digits only (\d would accept full-width digits)
PHONE = re.compile(r"[0-9]{2,5}-?[0-9]{1,4}-?[0-9]{3,4}")
POSTAL = re.compile(r"[0-9]{3}-?[0-9]{4}")
REPRESENTATIVE = re.compile(r"[0-9][0-9-]{0,19}")
# A user ID chosen for a staff member or admin: lower-case ASCII, 3-32 characters.
CHOSEN_USER_ID = re.compile(r"[a-z][a-z0-9._-]{2,31}")
EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
NAME_LIMIT = 64  # the certificate's CN (RFC 5280 Appendix A.1, ub-common-name)
USER_ID_PREFIX = {
    AccountKind.OFFICE: "of",
    AccountKind.AGENT: "ag",
    AccountKind.STAFF: "st",
    AccountKind.ADMIN: "ad",
}
KIND_JA = {
    AccountKind.OFFICE: "事業所",
    AccountKind.AGENT: "代理人",
    AccountKind.STAFF: "職員",
    AccountKind.ADMIN: "管理者",
}


@dataclass(frozen=True)
class Problem:
    """One bad field: which column, and why (for forms and the CSV report)."""

    column: str
    message: str
    message_ja: str


@dataclass(frozen=True)
class AccountInput:
    """What staff enter for an office or agent (one form, or one CSV row)."""

    kind: AccountKind
    number: str  # office number, or the agent's registration number (10 digits)
    name: str
    address: str
    phone: str
    email: str
    representative_number: str = ""
    postal_code: str = ""
    name_kana: str = ""  # フリガナ, optional: asked for at the first sign-in when registered

    def problems(self) -> list[Problem]:
        """Every problem of this input (empty when it is good)."""
        found: list[Problem] = []
        label_ja = "事業所番号" if self.kind is AccountKind.OFFICE else "代理人番号"
        if self.kind not in (AccountKind.OFFICE, AccountKind.AGENT):
            found.append(Problem("kind", "must be office or agent", "事業所か代理人のみです"))
        if not NUMBER.fullmatch(self.number):
            found.append(
                Problem(
                    "number",
                    f"must be 10 digits, not {self.number!r}",
                    f"{label_ja}は半角数字 10 桁です({self.number!r})",
                )
            )
        name = self.name
        if not name.strip():
            found.append(Problem("name", "the name is missing", "名称がありません"))
        elif name != name.strip() or len(name) > NAME_LIMIT or _has_control(name):
            found.append(
                Problem(
                    "name",
                    f"the name must be 1-{NAME_LIMIT} characters without control characters "
                    "or leading/trailing spaces",
                    f"名称は {NAME_LIMIT} 文字以内で、前後の空白や制御文字は使えません",
                )
            )
        if not self.address.strip():
            found.append(Problem("address", "the address is missing", "住所がありません"))
        elif len(self.address) > 300 or _has_control(self.address):
            found.append(
                Problem(
                    "address",
                    "the address is too long or has control characters",
                    "住所が長すぎるか制御文字を含みます",
                )
            )
        if not PHONE.fullmatch(self.phone) or not 10 <= _digits(self.phone) <= 11:
            found.append(
                Problem(
                    "phone",
                    f"not a phone number: {self.phone!r}",
                    f"電話番号の形式が正しくありません({self.phone!r})",
                )
            )
        if len(self.email) > 254 or not EMAIL.fullmatch(self.email):
            found.append(
                Problem(
                    "email",
                    f"not a mail address: {self.email!r}",
                    f"メールアドレスの形式が正しくありません({self.email!r})",
                )
            )
        if self.representative_number and not REPRESENTATIVE.fullmatch(self.representative_number):
            found.append(
                Problem(
                    "representative_number",
                    "the representative number must be digits (and hyphens), at most 20",
                    "代表者番号は半角数字(とハイフン)20 文字以内です",
                )
            )
        if self.name_kana and not is_kana_name(self.name_kana):
            found.append(
                Problem(
                    "name_kana",
                    f"the kana name must be written in kana, at most {KANA_LIMIT} characters "
                    f"({self.name_kana!r})",
                    f"フリガナはカタカナ(またはひらがな)で {KANA_LIMIT} 文字以内です"
                    f"({self.name_kana!r})",
                )
            )
        if self.postal_code and not POSTAL.fullmatch(self.postal_code):
            found.append(
                Problem(
                    "postal_code",
                    "the postal code must be NNN-NNNN",
                    "郵便番号は NNN-NNNN の形式です",
                )
            )
        return found


KANA_LIMIT = 100
# What a kana name (フリガナ) may hold after NFKC: kana, the long vowel mark and the middle dot,
# spaces, Latin letters and digits (エヌピーオー法人ＡＢＣ is written so), and a few signs of
# company names.
_KANA_EXTRA = frozenset(" ー・-()&.,'")


def is_kana_name(text: str) -> bool:
    """True if ``text`` can be a registered kana name (フリガナ): kana, not kanji."""
    folded = unicodedata.normalize("NFKC", text)
    if not folded.strip() or len(text) > KANA_LIMIT or _has_control(text):
        return False
    return any("\u3041" <= c <= "\u30ff" for c in folded) and all(
        "\u3041" <= c <= "\u30ff"
        or c.isspace()
        or (c.isascii() and c.isalnum())
        or c in _KANA_EXTRA
        for c in folded
    )


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


def _digits(text: str) -> int:
    return sum(c.isascii() and c.isdigit() for c in text)


@dataclass(frozen=True)
class NewAccount:
    """A created account with its one-time secrets (shown once, never stored in clear)."""

    account: Account
    issuance_password: str | None
    login_password: str
    totp_secret: str | None = field(default=None, repr=False)

    @property
    def user_id(self) -> str:
        return self.account.user_id

    def otpauth_uri(self, issuer: str) -> str | None:
        """The ``otpauth://totp/...`` URI an authenticator app reads (as a QR code or text)."""
        if self.totp_secret is None:
            return None
        return pyotp.TOTP(self.totp_secret).provisioning_uri(
            name=self.account.user_id, issuer_name=issuer
        )


def _new_user_id(session: Session, kind: AccountKind, rng: Rng) -> str:
    for _ in range(20):
        digits = "".join(str(b % 10) for b in rng(8) if b < 250)
        if len(digits) < 8:
            continue  # a rejected byte shortened it; draw again rather than bias the digits
        user_id = USER_ID_PREFIX[kind] + digits
        if session.execute(select(Account.id).where(Account.user_id == user_id)).first() is None:
            return user_id
    raise Refused("could not find a free user ID", message_ja="ユーザー ID を採番できません")


def number_taken(session: Session, number: str) -> bool:
    """True if an account already holds this office (or agent) number."""
    found = session.execute(select(Account.id).where(Account.office_number == number)).first()
    return found is not None


@dataclass(frozen=True)
class PortalPasswords:
    """The two passwords of a new portal account and their argon2id hashes."""

    issuance: str = field(repr=False)
    login: str = field(repr=False)
    issuance_hash: str = field(repr=False)
    login_hash: str = field(repr=False)


def new_portal_passwords(rng: Rng = secrets.token_bytes) -> tuple[str, str]:
    """A fresh issuance password and login password (in that order)."""
    return new_issuance_password(rng), _new_login_password(rng)


def add_portal_account(
    session: Session,
    party: Party,
    data: AccountInput,
    *,
    now: dt.datetime,
    rng: Rng = secrets.token_bytes,
    source_address: str | None = None,
    passwords: PortalPasswords | None = None,
) -> NewAccount:
    """Create an office or agent account with a user ID and its two passwords.

    Staff, admins or the operator only.  Bad input raises :class:`MalformedInput` naming the
    first bad column (all of them in ``fields["problems"]``); a number already registered is
    :class:`AlreadyExists`.  Nothing is written in either case.  ``passwords`` are made here unless
    given (a bulk import hashes them on every core first, :mod:`ra.people.csvimport`).
    """
    require(party, Permission.MANAGE_PORTAL_ACCOUNTS)
    problems = data.problems()
    if problems:
        first = problems[0]
        raise MalformedInput(
            f"{first.column}: {first.message}",
            message_ja=first.message_ja,
            column=first.column,
            problems=problems,
        )
    if number_taken(session, data.number):
        raise AlreadyExists(
            f"an account with number {data.number} already exists",
            message_ja=f"番号 {data.number} のアカウントは既に登録されています",
            column="number",
        )
    if passwords is None:
        issuance, login = new_portal_passwords(rng)
        passwords = PortalPasswords(issuance, login, hash_password(issuance), hash_password(login))
    account = Account(
        user_id=_new_user_id(session, data.kind, rng),
        kind=data.kind,
        name=data.name,
        office_number=data.number,
        representative_number=data.representative_number or None,
        postal_code=data.postal_code or None,
        name_kana=data.name_kana or None,
        address=data.address,
        phone=data.phone,
        email=data.email,
        password_hash=passwords.login_hash,
        issuance_password_hash=passwords.issuance_hash,
        failed_logins=0,
        active=True,
        created_at=now,
    )
    session.add(account)
    session.flush()
    audit_account(session, party, account, "create_account", now, source_address)
    return NewAccount(account, passwords.issuance, passwords.login)


def add_console_user(
    session: Session,
    party: Party,
    *,
    kind: AccountKind,
    name: str,
    email: str,
    now: dt.datetime,
    vault: Vault,
    rng: Rng = secrets.token_bytes,
    source_address: str | None = None,
    user_id: str | None = None,
) -> NewAccount:
    """Create a staff or admin user (admins or the operator only) with a TOTP secret.

    ``user_id`` is the ID the operator chose (``[a-z][a-z0-9._-]{2,31}``); a taken one is
    :class:`AlreadyExists`.  Without it an ID ``st…``/``ad…`` is drawn.  The TOTP secret is stored
    sealed under ``vault`` and returned in clear, once.
    """
    require(party, Permission.MANAGE_STAFF)
    if kind not in (AccountKind.STAFF, AccountKind.ADMIN):
        raise MalformedInput(
            "console users are staff or admin", message_ja="職員か管理者のみ作成できます"
        )
    if not name.strip() or len(name) > 200 or _has_control(name):
        raise MalformedInput(
            "the name is missing or too long", message_ja="氏名が不正です", column="name"
        )
    if not EMAIL.fullmatch(email) or len(email) > 254:
        raise MalformedInput(
            f"not a mail address: {email!r}",
            message_ja="メールアドレスの形式が正しくありません",
            column="email",
        )
    if user_id is not None:
        _check_chosen_user_id(session, user_id)
    else:
        user_id = _new_user_id(session, kind, rng)
    login = _new_login_password(rng)
    totp = base64.b32encode(rng(20)).decode("ascii")  # 160 bits, RFC 4226 §4 recommends it
    account = Account(
        user_id=user_id,
        kind=kind,
        name=name.strip(),
        email=email,
        password_hash=hash_password(login),
        totp_secret_sealed=vault.seal(totp, context=totp_context(user_id)),
        failed_logins=0,
        active=True,
        created_at=now,
    )
    session.add(account)
    session.flush()
    audit_account(session, party, account, "create_account", now, source_address)
    return NewAccount(account, None, login, totp)


def _check_chosen_user_id(session: Session, user_id: str) -> None:
    if not CHOSEN_USER_ID.fullmatch(user_id):
        raise MalformedInput(
            f"a user ID is 3-32 characters: a-z first, then a-z, 0-9, '.', '_' or '-' "
            f"(not {user_id!r})",
            message_ja="ユーザー ID は 3〜32 文字で、先頭は a-z、続けて a-z・0-9・「.」「_」「-」"
            f"です({user_id!r})",
            column="user_id",
        )
    if session.execute(select(Account.id).where(Account.user_id == user_id)).first() is not None:
        raise AlreadyExists(
            f"the user ID {user_id!r} is already taken; nothing was created",
            message_ja=f"ユーザー ID {user_id!r} は既に使われています(何も作成していません)",
            column="user_id",
        )


def get_account(session: Session, user_id: str) -> Account:
    """The account with ``user_id``, or :class:`NotFound`."""
    account = session.execute(
        select(Account).where(Account.user_id == user_id)
    ).scalar_one_or_none()
    if account is None:
        raise NotFound(
            f"no account with user ID {user_id!r}",
            message_ja=f"ユーザー ID {user_id!r} は登録されていません",
        )
    return account


@dataclass(frozen=True)
class Reissued:
    """A new issuance password and the letter that carries it (PDF comes with the web)."""

    account: Account
    issuance_password: str
    letter: str


def reset_issuance_password(
    session: Session,
    party: Party,
    user_id: str,
    *,
    now: dt.datetime,
    federation_name: str,
    rng: Rng = secrets.token_bytes,
    source_address: str | None = None,
) -> Reissued:
    """Issue a new issuance password for an office or agent (A7, phone path: docs/product.md §7).

    Keys the RA still keeps for this account stay wrapped under the password they were
    wrapped with; the letter says so.
    """
    require(party, Permission.MANAGE_PORTAL_ACCOUNTS)
    account = get_account(session, user_id)
    if account.kind not in (AccountKind.OFFICE, AccountKind.AGENT):
        raise Refused(
            "only offices and agents have an issuance password",
            message_ja="証明書発行用パスワードは事業所と代理人のみです",
        )
    password = new_issuance_password(rng)
    account.issuance_password_hash = hash_password(password)
    session.flush()
    audit_account(session, party, account, "reset_issuance_password", now, source_address)
    return Reissued(account, password, password_letter(account, password, federation_name, now))


def reset_login_password(
    session: Session,
    party: Party,
    user_id: str,
    *,
    now: dt.datetime,
    rng: Rng = secrets.token_bytes,
    source_address: str | None = None,
) -> str:
    """A new login password for ``user_id``, shown once; also lifts a login lockout.

    Staff reset offices and agents; only admins (or the operator) reset staff and admins.
    """
    # Whether the target is staff decides which permission is needed; a party with neither
    # is refused before the user ID is looked up, so it learns nothing about it.
    require(party, Permission.MANAGE_PORTAL_ACCOUNTS, Permission.MANAGE_STAFF)
    account = get_account(session, user_id)
    require(
        party,
        Permission.MANAGE_STAFF
        if account.kind in (AccountKind.STAFF, AccountKind.ADMIN)
        else Permission.MANAGE_PORTAL_ACCOUNTS,
    )
    password = _new_login_password(rng)
    account.password_hash = hash_password(password)
    account.password_chosen_at = None  # the letter's password: replaced at the next sign-in
    account.failed_logins = 0
    account.locked_until = None
    account.session_epoch = (account.session_epoch or 0) + 1  # its web sessions end
    session.flush()
    audit_account(session, party, account, "reset_login_password", now, source_address)
    return password


def password_letter(account: Account, password: str, federation_name: str, now: dt.datetime) -> str:
    """The text of the letter that carries a user ID and issuance password."""
    date = to_japan(now)
    return "\n".join(
        [
            f"〒{account.postal_code or ''} {account.address or ''}",
            f"{account.name} 御中",
            "",
            f"{date.year}年{date.month}月{date.day}日",
            federation_name,
            "",
            "証明書発行用パスワードのお知らせ",
            "",
            "電子請求の証明書の申請とダウンロードに使う「証明書発行用パスワード」をお知らせします。",
            "このパスワードは本書でのみお知らせします。他人に知られないよう大切に保管してください。",
            "",
            f"  ユーザー ID            : {account.user_id}",
            f"  証明書発行用パスワード : {password}",
            "",
            "再発行前に申請済みで未ダウンロードの証明書は、申請時のパスワードで保護されています。",
            "申請時のパスワードが分からない場合は、再度お申し込みください。",
        ]
    )


def audit_account(
    session: Session,
    party: Party,
    account: Account,
    action: str,
    now: dt.datetime,
    source_address: str | None,
) -> None:
    """Record ``action`` by ``party`` on ``account`` in the audit log (never a secret)."""
    audit.record(
        session,
        actor=party.actor.value,
        actor_id=party.audit_id,
        action=action,
        object_type="account",
        object_id=account.user_id,
        now=now,
        source_address=source_address,
        # Never a password or secret: the log is read by more people than the letters.
        details={"kind": account.kind.value, "number": account.office_number, "name": account.name},
    )
