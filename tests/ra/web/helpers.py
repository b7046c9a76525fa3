"""Helpers of the web tests: forms, sign-in steps, and the mojibake check."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pyotp
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ra.party import Party
from ra.people import accounts, auth
from ra.settings import SignInSettings
from ra.store.models import Account, AccountKind
from ra.store.vault import Vault
from tests.ra.conftest import Database

TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
# Two or more "?" in a row next to Japanese text, or a lone replacement character: what a
# page looks like when its text went through the wrong encoding.
MOJIBAKE = re.compile(
    r"\ufffd|[\u3000-\u9fff\uff00-\uffef]\?{2,}|\?{2,}[\u3000-\u9fff\uff00-\uffef]"
)


class Clock:
    """An injected clock the tests move."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@dataclass
class Staff:
    id: int
    user_id: str
    password: str
    secret: str


def assert_no_mojibake(text: str) -> None:
    """Fail when ``text`` shows signs of broken encoding (U+FFFD, runs of '?' in Japanese)."""
    found = MOJIBAKE.search(text)
    assert found is None, f"mojibake near {text[max(0, found.start() - 40) : found.end() + 40]!r}"


def token(client: FlaskClient, path: str = "/auth/sign-in") -> str:
    page = client.get(path)
    found = TOKEN.search(page.get_data(as_text=True))
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def add_staff(
    database: Database,
    vault: Vault,
    now: dt.datetime,
    *,
    kind: AccountKind = AccountKind.STAFF,
    enrolled: bool = True,
    user_id: str | None = None,
) -> Staff:
    with database.factory() as s, s.begin():
        new = accounts.add_console_user(
            s,
            Party.operator(),
            kind=kind,
            name="連合 花子",
            email="hanako@example.jp",
            now=now,
            vault=vault,
            user_id=user_id,
        )
        assert new.totp_secret is not None
        staff = Staff(new.account.id, new.user_id, new.login_password, new.totp_secret)
    if enrolled:
        with database.factory() as s, s.begin():
            code = pyotp.TOTP(staff.secret).at(now - dt.timedelta(minutes=10))
            auth.confirm_enrolment(
                s,
                staff.id,
                code,
                vault=vault,
                settings=SignInSettings(),
                now=now - dt.timedelta(minutes=10),
            )
    return staff


def post_password(client: FlaskClient, user_id: str, password: str) -> TestResponse:
    return client.post(
        "/auth/sign-in",
        data={"user_id": user_id, "password": password, "csrf_token": token(client)},
    )


def post_code(client: FlaskClient, path: str, code: str) -> TestResponse:
    return client.post(path, data={"code": code, "csrf_token": token(client, path)})


def sign_in(client: FlaskClient, staff: Staff, now: dt.datetime) -> TestResponse:
    """Both steps; returns the console home page."""
    first = post_password(client, staff.user_id, staff.password)
    assert first.status_code == 302 and first.headers["Location"].endswith("/auth/totp")
    second = post_code(client, "/auth/totp", pyotp.TOTP(staff.secret).at(now))
    assert second.status_code == 302, second.get_data(as_text=True)
    assert second.headers["Location"].endswith("/console/")
    home = client.get("/console/")
    assert home.status_code == 200
    return home


@dataclass
class PortalUser:
    id: int
    user_id: str
    password: str


def add_portal_account(
    database: Database,
    now: dt.datetime,
    *,
    kind: AccountKind = AccountKind.OFFICE,
    password: str = "Portal-pass-1",  # noqa: S107  # a test account
    first_sign_in_done: bool = True,
    name_kana: str | None = None,
    email: str = "office@example.jp",
) -> PortalUser:
    """An office or agent account that signs in to the portal with ``password``.

    By default it has done its first sign-in (terms, identity, own password, confirmed mail
    address: ra.people.first_sign_in), so the portal's pages open at once; with
    ``first_sign_in_done=False`` it is as the federation created it.
    """
    from ra.people.passwords import hash_password
    from tests.ra import factories

    with database.factory() as s, s.begin():
        account = factories.account(s, kind=kind, now=now)
        account.password_hash = hash_password(password)
        account.name_kana = name_kana
        account.email = email
        if kind is AccountKind.AGENT and account.office_number is None:
            account.office_number = f"99{account.id:08d}"
        if first_sign_in_done:
            first_sign_in_finished(account, now)
        return PortalUser(account.id, account.user_id, password)


def first_sign_in_finished(account: Account, now: dt.datetime) -> None:
    """Mark ``account`` as having done its first sign-in (terms, identity, own password,
    confirmed mail address: ra.people.first_sign_in), as a test that is not about it needs."""
    from ra.settings import SignInSettings

    account.terms_accepted_at = now
    account.terms_version = SignInSettings().terms_version
    account.identity_confirmed_at = now
    account.password_chosen_at = now
    account.email_confirmed_at = now
