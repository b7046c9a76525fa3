"""Security of the JSON API, over every route under /api/ of ``app.url_map`` (none hand-listed).

The API is called by other systems with a bearer token, never with a cookie: so it is exempt
from CSRF (test_security.py leaves its POST routes out of the CSRF check for that reason), and
in exchange a console session is worth nothing here, no cookie is read or set, every answer
carries the site's security headers and is never cached, every error is problem details, and
the body limit of the API holds.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.routing import Rule

from ra.settings import ApiSettings
from ra.store.models import AccountKind, AuditRecord, CrlRecord
from ra.web.security import CSP
from tests.ra.ca_fixture import CaHome, ca_home_fixture  # noqa: F401
from tests.ra.conftest import Database
from tests.ra.web.api_fixture import API, api_app, bearer, make_token
from tests.ra.web.helpers import Clock, add_staff, sign_in

PUBLIC = {f"{API}/", f"{API}/openapi.json"}


@pytest.fixture
def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture
def api(ca_home: CaHome, database: Database, tmp_path: Path, clock: Clock) -> Flask:
    return api_app(ca_home, database, tmp_path, clock)


def _routes(app: Flask) -> Iterator[tuple[str, str]]:
    """(method, url) of every API route, arguments filled with a value of the right shape."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        url = re.sub(
            r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>",
            lambda m: "1" if m.group(1) == "int" else "1a",
            rule.rule,
        )
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield method, url


def _rules(app: Flask) -> list[Rule]:
    return [r for r in app.url_map.iter_rules() if r.rule.startswith("/api/")]


def test_the_api_blueprint_is_exempt_from_csrf_and_its_posts_need_no_csrf_token(
    api: Flask, database: Database
) -> None:
    csrf = api.extensions["csrf"]
    assert api.blueprints["api"] in csrf._exempt_blueprints
    posts = [url for method, url in _routes(api) if method == "POST"]
    assert len(posts) >= 3
    headers = bearer(make_token(database))
    client = api.test_client()
    for url in posts:
        answer = client.post(url, json={}, headers=headers)
        # Refused for the empty body (400 problem), never for a missing CSRF token.
        assert answer.status_code == 400, url
        assert answer.mimetype == "application/problem+json", url
        assert "このサイトから送信されたものではありません" not in answer.get_data(as_text=True)


def test_a_console_session_is_no_credential_here(
    api: Flask, database: Database, clock: Clock
) -> None:
    vault = api.extensions["shomei"].vault
    admin = add_staff(database, vault, clock.now, kind=AccountKind.ADMIN)
    client = api.test_client()
    sign_in(client, admin, clock.now)  # the session cookie is sent with every call below
    for method, url in _routes(api):
        if url in PUBLIC:
            continue
        answer = client.open(url, method=method, json={})
        assert answer.status_code == 401, (method, url)
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="shomei"'
    with database.factory() as s:
        assert s.scalar(select(func.count()).select_from(CrlRecord)) == 0
        assert s.scalar(select(func.count()).where(AuditRecord.action == "api_call")) == 0


@pytest.mark.parametrize("with_token", [False, True])
def test_no_cookie_is_set_and_every_answer_has_the_security_headers(
    api: Flask, database: Database, with_token: bool
) -> None:
    headers = bearer(make_token(database)) if with_token else {}
    client = api.test_client()
    urls = [*_routes(api), ("GET", f"{API}/no-such-thing"), ("DELETE", f"{API}/applications")]
    for method, url in urls:
        answer = client.open(url, method=method, json={}, headers=headers)
        assert answer.status_code < 500, (method, url)
        assert "set-cookie" not in {k.lower() for k in answer.headers.keys()}, (method, url)
        assert answer.headers["Content-Security-Policy"] == CSP
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Cache-Control"] == "no-store", (method, url)
        if answer.status_code >= 400:
            assert answer.mimetype == "application/problem+json", (method, url)
            body = answer.get_json()
            assert body["status"] == answer.status_code and body["detail_ja"], (method, url)
    assert client.get_cookie("shomei_session") is None


def test_unknown_paths_and_methods_are_problems_with_allow(api: Flask, database: Database) -> None:
    client = api.test_client()
    headers = bearer(make_token(database))
    missing = client.get(f"{API}/nothing", headers=headers)
    assert missing.status_code == 404 and missing.get_json()["code"] == "not_found"
    wrong = client.delete(f"{API}/crl", headers=headers)
    assert wrong.status_code == 405 and wrong.get_json()["code"] == "method_not_allowed"
    assert set(wrong.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    outside = client.get(f"{API}/applications/99999999999", headers=headers)
    assert outside.status_code == 404  # no INTEGER holds it: not a database error


def test_the_api_body_limit_holds(
    ca_home: CaHome, database: Database, tmp_path: Path, clock: Clock
) -> None:
    app = api_app(ca_home, database, tmp_path, clock, api=ApiSettings(max_request_bytes=4096))
    client = app.test_client()
    headers = bearer(make_token(database))
    big = {"claim": base64.b64encode(b"x" * 8192).decode()}
    answer = client.post(f"{API}/verify", json=big, headers=headers)
    assert answer.status_code == 413 and answer.mimetype == "application/problem+json"
    assert "4096" in answer.get_json()["detail"]
    # The API's limit is its own: larger than the console's upload limit by default.
    default = ApiSettings().max_request_bytes
    assert default > app.extensions["shomei"].settings.web.max_upload_bytes


def test_the_token_is_never_echoed_or_logged_in_the_audit(api: Flask, database: Database) -> None:
    secret = make_token(database)
    client = api.test_client()
    client.get(f"{API}/applications?user_id={secret[:20]}", headers=bearer(secret))
    client.get(f"{API}/crl", headers=bearer(secret))
    with database.factory() as s:
        for record in s.execute(select(AuditRecord)).scalars():
            assert secret not in str(record.details) and secret not in record.actor_id
