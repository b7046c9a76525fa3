"""Security of the web application, over every route of ``app.url_map`` (none hand-listed)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import flask
import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_wtf.csrf import generate_csrf
from sqlalchemy import func, select
from werkzeug.routing import Rule

from ra.settings import RASettings, WebSettings
from ra.store.models import Account, AccountKind, AuditRecord
from ra.store.vault import Vault
from ra.web import create_app
from ra.web.security import CSP
from tests.ra import factories
from tests.ra.conftest import Database
from tests.ra.web.helpers import Clock, add_staff, assert_no_mojibake, sign_in
from tests.ra_profile import FEES


def _rules(app: Flask, method: str, prefix: str = "/") -> Iterator[Rule]:
    for rule in app.url_map.iter_rules():
        if (
            rule.endpoint != "static"
            and method in (rule.methods or ())
            and rule.rule.startswith(prefix)
        ):
            yield rule


def _url(rule: Rule) -> str:
    # Routes with arguments get a harmless value of the right shape (an int for <int:...>).
    return re.sub(
        r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>",
        lambda m: "1" if m.group(1) == "int" else m.group(2),
        rule.rule,
    )


def _snapshot(database: Database) -> tuple[object, ...]:
    with database.factory() as s:
        audit = s.scalar(select(func.count()).select_from(AuditRecord))
        rows = s.execute(
            select(
                Account.id,
                Account.password_hash,
                Account.failed_logins,
                Account.locked_until,
                Account.session_epoch,
                Account.totp_last_step,
            ).order_by(Account.id)
        ).all()
        return (audit, tuple(tuple(r) for r in rows))


# The JSON API (/api/...) is called by other systems with a bearer token in a header, never
# with a cookie, so there is no session to ride and no CSRF token to ask for: its POST routes
# are left out of the CSRF check here on purpose, and tests/ra/web/test_api_security.py checks
# them instead (no token: 401, no cookie read or set, the blueprint exempt from CSRFProtect).
API = "/api/"


def _form_posts(app: Flask) -> Iterator[Rule]:
    return (r for r in _rules(app, "POST") if not r.rule.startswith(API))


def test_the_app_has_routes_to_check(app: Flask) -> None:
    assert len(list(_form_posts(app))) >= 6
    assert len(list(_rules(app, "POST", API))) >= 3  # and the API's are left out above
    assert len(list(_rules(app, "GET", "/console/"))) >= 1


def test_every_post_without_csrf_token_is_400_and_changes_nothing(
    app: Flask, database: Database, vault: Vault, clock: Clock
) -> None:
    staff = add_staff(database, vault, clock.now)
    client = app.test_client()
    sign_in(client, staff, clock.now)
    before = _snapshot(database)
    for rule in _form_posts(app):
        answer = client.post(
            _url(rule),
            data={
                "user_id": staff.user_id,
                "password": staff.password,
                "current": staff.password,
                "new": "Other-pass-1",
                "confirm": "Other-pass-1",
                "code": "123456",
                "value": "en",
            },
        )
        assert answer.status_code == 400, rule.rule
        assert "このサイトから送信されたものではありません" in answer.get_data(as_text=True)
    assert _snapshot(database) == before
    assert client.get("/console/").status_code == 200  # still signed in, still Japanese
    assert '<html lang="ja">' in client.get("/console/").get_data(as_text=True)


def test_every_console_route_sends_an_anonymous_visitor_to_sign_in(
    client: FlaskClient, app: Flask
) -> None:
    for rule in _rules(app, "GET", "/console"):
        answer = client.get(_url(rule))
        assert answer.status_code == 302, rule.rule
        assert answer.headers["Location"].startswith("/auth/sign-in"), rule.rule


@pytest.mark.parametrize("kind", [AccountKind.OFFICE, AccountKind.AGENT])
def test_portal_accounts_get_403_on_every_console_route(
    app: Flask, database: Database, clock: Clock, kind: AccountKind
) -> None:
    with database.factory() as s, s.begin():
        account = factories.account(s, kind=kind, now=clock.now)
        session_id = f"{account.id}:{account.session_epoch}"
    client = app.test_client()
    # A valid CSRF token of this session, so that a POST meets the console's gate, not the
    # CSRF check (which comes first and answers 400).
    with app.test_request_context():
        csrf = generate_csrf()
        raw = flask.session["csrf_token"]
    with client.session_transaction() as sess:
        sess["_user_id"] = session_id  # as if the portal (a later blueprint) had signed it in
        sess["seen"] = int(clock.now.timestamp())
        sess["csrf_token"] = raw
    routes = list(_rules(app, "GET", "/console")) + list(_rules(app, "POST", "/console"))
    assert routes
    for rule in routes:
        post = "GET" not in (rule.methods or ())
        answer = client.open(
            _url(rule),
            method="POST" if post else "GET",
            data={"csrf_token": csrf} if post else None,
        )
        assert answer.status_code in (403, 404), rule.rule
        if answer.status_code == 403:
            assert "この操作は連合会職員のみ行えます" in answer.get_data(as_text=True)


def test_every_portal_route_sends_an_anonymous_visitor_to_the_portal_sign_in(
    client: FlaskClient, app: Flask
) -> None:
    routes = [r for r in _rules(app, "GET", "/portal") if not r.endpoint.startswith("portal_auth")]
    assert routes
    for rule in routes:
        answer = client.get(_url(rule))
        assert answer.status_code == 302, rule.rule
        assert answer.headers["Location"].startswith("/portal/sign-in"), rule.rule


@pytest.mark.parametrize("kind", [AccountKind.STAFF, AccountKind.ADMIN])
def test_staff_get_403_on_every_portal_route(
    app: Flask, database: Database, clock: Clock, kind: AccountKind
) -> None:
    with database.factory() as s, s.begin():
        account = factories.account(s, kind=kind, now=clock.now)
        session_id = f"{account.id}:{account.session_epoch}"
    client = app.test_client()
    with app.test_request_context():
        csrf = generate_csrf()
        raw = flask.session["csrf_token"]
    with client.session_transaction() as sess:
        sess["_user_id"] = session_id
        sess["seen"] = int(clock.now.timestamp())
        sess["csrf_token"] = raw
    routes = [
        r
        for method in ("GET", "POST")
        for r in _rules(app, method, "/portal")
        if not r.endpoint.startswith("portal_auth")
    ]
    assert routes
    for rule in routes:
        post = "GET" not in (rule.methods or ())
        answer = client.open(
            _url(rule),
            method="POST" if post else "GET",
            data={"csrf_token": csrf} if post else None,
        )
        assert answer.status_code in (403, 404), rule.rule
        if answer.status_code == 403:
            assert "事業所・代理人の方のみ" in answer.get_data(as_text=True)


def test_a_disabled_account_is_signed_out(
    app: Flask, database: Database, vault: Vault, clock: Clock
) -> None:
    staff = add_staff(database, vault, clock.now)
    client = app.test_client()
    sign_in(client, staff, clock.now)
    with database.factory() as s, s.begin():
        account = s.get(Account, staff.id)
        assert account is not None
        account.active = False
    assert client.get("/console/").status_code == 302


def _every_get(app: Flask) -> Iterator[str]:
    for rule in _rules(app, "GET"):
        yield _url(rule)


def test_headers_on_every_page(app: Flask, database: Database, vault: Vault, clock: Clock) -> None:
    staff = add_staff(database, vault, clock.now)
    anonymous, signed = app.test_client(), app.test_client()
    sign_in(signed, staff, clock.now)
    for client in (anonymous, signed):
        for url in [*_every_get(app), "/no-such-page"]:
            answer = client.get(url)
            headers = answer.headers
            assert headers["Content-Security-Policy"] == CSP, url
            assert "frame-ancestors 'none'" in CSP and "'unsafe-inline'" not in CSP
            assert headers["X-Content-Type-Options"] == "nosniff", url
            assert headers["Referrer-Policy"] == "same-origin", url
            assert headers["Cache-Control"] == "no-store", url
            if answer.mimetype == "text/html":
                text = answer.get_data(as_text=True)
                assert_no_mojibake(text)
                assert "<script>" not in text and " style=" not in text and "<style" not in text
    css = anonymous.get("/static/shomei.css")
    css.close()  # a file response: let go of the file
    assert css.status_code == 200 and css.headers["X-Content-Type-Options"] == "nosniff"


def _cookie(answer: object) -> str:
    cookies = [v for k, v in answer.headers.items() if k == "Set-Cookie"]  # type: ignore[attr-defined]
    found = [c for c in cookies if c.startswith("shomei_session=")]
    assert found, cookies
    return found[-1]


@pytest.mark.parametrize("behind_tls", [False, True])
def test_cookie_flags(
    web_settings: RASettings, database: Database, clock: Clock, behind_tls: bool
) -> None:
    settings = RASettings(
        fees=FEES,
        database_url=web_settings.database_url,
        data_dir=web_settings.data_dir,
        secrets_key_file=web_settings.secrets_key_file,
        web=WebSettings(secret_key_file=web_settings.web.secret_key_file, behind_tls=behind_tls),
    )
    app = create_app(settings, session_factory=database.factory, now=clock)
    cookie = _cookie(app.test_client().get("/auth/sign-in"))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert ("Secure" in cookie) is behind_tls


def test_session_key_file_is_made_private_and_kept(
    web_settings: RASettings, database: Database
) -> None:
    key = web_settings.web.secret_key_file
    assert isinstance(key, Path)
    first = create_app(web_settings, session_factory=database.factory)
    assert key.stat().st_mode & 0o777 == 0o600
    again = create_app(web_settings, session_factory=database.factory)
    assert first.config["SECRET_KEY"] == again.config["SECRET_KEY"]
    assert len(first.config["SECRET_KEY"]) == 32


def test_time_is_injected(app: Flask, clock: Clock) -> None:
    assert (
        app.extensions["shomei"].now()
        == clock.now
        == dt.datetime(2026, 11, 2, 1, 2, 3, tzinfo=dt.UTC)
    )


def test_a_password_reset_by_an_admin_ends_the_sessions(
    app: Flask, database: Database, vault: Vault, clock: Clock
) -> None:
    from ra.party import Party
    from ra.people import accounts

    staff = add_staff(database, vault, clock.now)
    client = app.test_client()
    sign_in(client, staff, clock.now)
    with database.factory() as s, s.begin():
        accounts.reset_login_password(s, Party.operator(), staff.user_id, now=clock.now)
    assert client.get("/console/").status_code == 302


def test_behind_tls_the_audit_gets_the_forwarded_address(
    web_settings: RASettings, database: Database, vault: Vault, clock: Clock
) -> None:
    settings = RASettings(
        fees=FEES,
        database_url=web_settings.database_url,
        data_dir=web_settings.data_dir,
        secrets_key_file=web_settings.secrets_key_file,
        web=WebSettings(secret_key_file=web_settings.web.secret_key_file, behind_tls=True),
    )
    app = create_app(settings, session_factory=database.factory, now=clock)
    staff = add_staff(database, vault, clock.now)
    client = app.test_client()
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    page = client.get("/auth/sign-in", headers=headers, base_url="https://localhost")
    token = page.get_data(as_text=True).split('name="csrf_token" type="hidden" value="')[1]
    answer = client.post(
        "/auth/sign-in",
        data={"user_id": staff.user_id, "password": "wrong-1!", "csrf_token": token.split('"')[0]},
        # Over HTTPS the CSRF check also wants a same-site Referer (a browser sends it).
        headers={**headers, "Referer": "https://localhost/auth/sign-in"},
        base_url="https://localhost",
    )
    assert answer.status_code == 401
    with database.factory() as s:
        rec = s.execute(
            select(AuditRecord).where(AuditRecord.action == "sign_in_failed")
        ).scalar_one()
        assert rec.source_address == "203.0.113.7"


def _id_rules(app: Flask, prefix: str) -> Iterator[tuple[Rule, str]]:
    for method in ("GET", "POST"):
        for rule in _rules(app, method, prefix):
            if any(type(c).__name__ == "IdConverter" for c in rule._converters.values()):
                yield rule, method


@pytest.mark.parametrize("huge", [2**31, 10**20])
def test_an_id_beyond_the_database_is_not_found_on_every_route(
    app: Flask, database: Database, vault: Vault, clock: Clock, huge: int
) -> None:
    """No id a database INTEGER cannot hold reaches the database (PostgreSQL would fail: 500)."""
    from tests.ra.web.helpers import add_portal_account

    staff = add_staff(database, vault, clock.now, kind=AccountKind.ADMIN)
    console = app.test_client()
    sign_in(console, staff, clock.now)
    office = add_portal_account(database, clock.now)
    portal = app.test_client()
    csrf = re.search(
        r'name="csrf_token"[^>]*value="([^"]+)"',
        portal.get("/portal/sign-in").get_data(as_text=True),
    )
    assert csrf is not None
    signed = portal.post(
        "/portal/sign-in",
        data={"csrf_token": csrf.group(1), "user_id": office.user_id, "password": office.password},
    )
    assert signed.status_code == 302
    checked = 0
    for client, prefix in ((console, "/console"), (portal, "/portal")):
        for rule, method in _id_rules(app, prefix):
            url = re.sub(
                r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>",
                lambda m: str(huge) if m.group(0).startswith("<int") else m.group(1),
                rule.rule,
            )
            # No route matches, so no CSRF check and no view runs: 404 before any database
            # (or 405, when werkzeug's matcher names the methods of the same path's other rule).
            answer = client.open(url, method=method)
            assert answer.status_code in (404, 405), (rule.rule, method, answer.status_code)
            checked += 1
    assert checked >= 10
