"""The JSON API (/api/v1) end to end, on SQLite and PostgreSQL: tokens and scopes, revocation at
once, the rate limit, problem details, the resources (applications with keyset paging and
history, certificates by serial, the current CRL, registering a CRL) and the audit record of
every call."""

from __future__ import annotations

import base64
import datetime as dt
import re
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from ca.crls import issue_crl
from ra.ca_link import link
from ra.lifecycle import Applicant, Status
from ra.party import Party, Scope
from ra.people import api_tokens
from ra.settings import ApiSettings
from ra.store.models import AccountKind, ApiToken, Application, AuditRecord, Certificate, CrlRecord
from tests.ra import factories
from tests.ra.ca_fixture import CaHome, ca_home_fixture, open_test_ca  # noqa: F401
from tests.ra.ca_link.test_link import request_revocation, requested
from tests.ra.conftest import Database
from tests.ra.web.api_fixture import API, api_app, bearer, make_token
from tests.ra.web.helpers import Clock, add_staff, assert_no_mojibake, sign_in, token


@pytest.fixture
def now() -> dt.datetime:
    """Real time: the session's CA (tests/ra/ca_fixture.py) was made a day ago, really."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture
def api(ca_home: CaHome, database: Database, tmp_path: Path, clock: Clock) -> Flask:
    return api_app(ca_home, database, tmp_path, clock)


def _calls(database: Database, name: str) -> list[AuditRecord]:
    with database.factory() as s:
        return list(
            s.execute(
                select(AuditRecord)
                .where(AuditRecord.action == "api_call", AuditRecord.actor_id == f"api:{name}")
                .order_by(AuditRecord.seq)
            ).scalars()
        )


def _problem(answer: object, status: int) -> dict[str, object]:
    assert answer.status_code == status, answer.get_data(as_text=True)  # type: ignore[attr-defined]
    assert answer.mimetype == "application/problem+json"  # type: ignore[attr-defined]
    body: dict[str, object] = answer.get_json()  # type: ignore[attr-defined]
    assert body["status"] == status
    assert body["detail"] and body["detail_ja"] and body["code"] and body["request_id"]
    assert str(body["type"]).endswith(f"#problem-{body['code']}")
    return body


# -- the document and the reference page -------------------------------------------------------


def test_the_openapi_document_is_3_1_and_describes_every_operation(api: Flask) -> None:
    doc = api.test_client().get(f"{API}/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    operations = {
        op["operationId"]: (method, path)
        for path, item in doc["paths"].items()
        for method, op in item.items()
    }
    assert operations == {
        "listApplications": ("get", f"{API}/applications"),
        "getApplication": ("get", f"{API}/applications/{{application_id}}"),
        "getCertificate": ("get", f"{API}/certificates/{{serial}}"),
        "getCurrentCrl": ("get", f"{API}/crl"),
        "registerCrl": ("post", f"{API}/crl"),
        "verifyClaim": ("post", f"{API}/verify"),
        "verifyClaims": ("post", f"{API}/verify/batch"),
    }
    assert doc["components"]["securitySchemes"]["token"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token made by an admin in the console (API トークン)",
    }
    assert doc["security"] == [{"token": []}]
    for item in doc["paths"].values():
        for op in item.values():
            responses = op["responses"]
            assert {"401", "403", "429"} <= set(responses)
            for status, response in responses.items():
                media = set(response.get("content", {}))
                assert media == (
                    {"application/json"} if status < "400" else {"application/problem+json"}
                ), (op["operationId"], status)
            assert responses["429"]["headers"]["Retry-After"]["required"] is True


def test_the_reference_page_is_served_here_without_script(api: Flask) -> None:
    client = api.test_client()
    page = client.get(f"{API}/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert_no_mojibake(html)
    assert '<html lang="ja">' in html and "トークン・権限・上限" in html
    for op in ("listApplications", "getCertificate", "registerCrl", "verifyClaims"):
        assert f'id="{op}"' in html
    for code in ("not_permitted", "authentication", "rate_limited", "malformed"):
        assert f'id="problem-{code}"' in html
    assert "<script" not in html and " style=" not in html and "<style" not in html
    # Nothing from elsewhere: every src and stylesheet is a path of this site.
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "set-cookie" not in {k.lower() for k in page.headers.keys()}
    english = client.get(f"{API}/?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "Tokens, scopes and limits" in english


# -- tokens ---------------------------------------------------------------------------------


def test_admins_make_and_revoke_tokens_in_the_console(
    api: Flask, database: Database, clock: Clock
) -> None:
    vault = api.extensions["shomei"].vault
    admin = add_staff(database, vault, clock.now, kind=AccountKind.ADMIN)
    console = api.test_client()
    sign_in(console, admin, clock.now)
    page = console.get("/console/tokens/")
    assert page.status_code == 200 and "API トークン" in page.get_data(as_text=True)
    made = console.post(
        "/console/tokens/",
        data={
            "name": "請求受付システム",
            "scopes": ["read_applications", "verify_claims"],
            "csrf_token": token(console, "/console/tokens/"),
        },
    )
    assert made.status_code == 200
    shown = re.search(r'id="new-token">(shomei_[A-Za-z0-9_-]+)<', made.get_data(as_text=True))
    assert shown, made.get_data(as_text=True)
    secret = shown.group(1)
    with database.factory() as s:
        row = s.execute(select(ApiToken)).scalar_one()
        assert row.token_sha256 == api_tokens.digest(secret) and secret not in str(row.__dict__)
        assert row.scopes == ["read_applications", "verify_claims"]
        assert row.created_by == admin.user_id
        created = s.execute(
            select(AuditRecord).where(AuditRecord.action == "api_token_created")
        ).scalar_one()
        assert created.actor_id == admin.user_id and created.object_id == "請求受付システム"
    listing = console.get("/console/tokens/").get_data(as_text=True)
    assert secret not in listing and secret[:12] in listing  # shown once, then its beginning

    caller = api.test_client()
    assert caller.get(f"{API}/applications", headers=bearer(secret)).status_code == 200
    revoked = console.post(
        f"/console/tokens/{row.id}/revoke", data={"csrf_token": token(console, "/console/tokens/")}
    )
    assert revoked.status_code == 302
    refused = _problem(caller.get(f"{API}/applications", headers=bearer(secret)), 401)
    assert "失効" in str(refused["detail_ja"]) and "revoked" in str(refused["detail"])
    # A name is never reused, revoked or not.
    again = console.post(
        "/console/tokens/",
        data={
            "name": "請求受付システム",
            "scopes": ["verify_claims"],
            "csrf_token": token(console, "/console/tokens/"),
        },
    )
    assert again.status_code == 409 and "既にあります" in again.get_data(as_text=True)
    none_ticked = console.post(
        "/console/tokens/",
        data={"name": "other", "csrf_token": token(console, "/console/tokens/")},
    )
    assert none_ticked.status_code == 400
    assert "一つ以上選んでください" in none_ticked.get_data(as_text=True)


def test_staff_may_not_manage_tokens(api: Flask, database: Database, clock: Clock) -> None:
    vault = api.extensions["shomei"].vault
    staff = add_staff(database, vault, clock.now)
    console = api.test_client()
    home = sign_in(console, staff, clock.now).get_data(as_text=True)
    assert "/console/tokens" not in home  # no menu entry
    assert console.get("/console/tokens/").status_code == 403
    made = console.post(
        "/console/tokens/",
        data={"name": "x", "scopes": ["verify_claims"], "csrf_token": token(console, "/console/")},
    )
    assert made.status_code == 403
    with database.factory() as s:
        assert s.scalar(select(func.count()).select_from(ApiToken)) == 0


def test_a_token_without_the_scope_gets_403(api: Flask, database: Database) -> None:
    client = api.test_client()
    verifier = make_token(database, [Scope.VERIFY_CLAIMS], name="verifier")
    reader = make_token(database, [Scope.READ_APPLICATIONS], name="reader")
    crl_only = make_token(database, [Scope.REGISTER_CRLS], name="crl-loader")
    body = _problem(client.get(f"{API}/applications", headers=bearer(verifier)), 403)
    assert body["code"] == "not_permitted"
    assert "read_applications" in str(body["detail"]) and "申請・証明書の閲覧" in str(
        body["detail_ja"]
    )
    _problem(client.get(f"{API}/certificates/1a", headers=bearer(verifier)), 403)
    claim = {"claim": base64.b64encode(b"x").decode(), "signature": base64.b64encode(b"y").decode()}
    _problem(client.post(f"{API}/verify", json=claim, headers=bearer(reader)), 403)
    _problem(
        client.post(f"{API}/verify/batch", json={"items": [claim]}, headers=bearer(reader)), 403
    )
    crl = {"crl": base64.b64encode(b"not a crl").decode()}
    _problem(client.post(f"{API}/crl", json=crl, headers=bearer(reader)), 403)
    _problem(client.get(f"{API}/applications/1", headers=bearer(crl_only)), 403)
    # The refusals are audited under the token's name.
    assert [r.details["status"] for r in _calls(database, "reader")] == [403, 403, 403]


def test_a_revoked_token_gets_401_at_once(api: Flask, database: Database, clock: Clock) -> None:
    client = api.test_client()
    secret = make_token(database, name="reception")
    assert client.get(f"{API}/applications", headers=bearer(secret)).status_code == 200
    with database.factory() as s, s.begin():
        row = s.execute(select(ApiToken).where(ApiToken.name == "reception")).scalar_one()
        api_tokens.revoke_token(s, Party.operator("test"), row.id, now=clock.now)
    # The very next call, on the same application (no cache outlives the revocation).
    body = _problem(client.get(f"{API}/applications", headers=bearer(secret)), 401)
    assert body["code"] == "authentication"
    answer = client.get(f"{API}/crl", headers=bearer(secret))
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert [r.details["status"] for r in _calls(database, "reception")] == [200, 401, 401]


def test_no_token_or_an_unknown_one_gets_401(api: Flask, database: Database) -> None:
    client = api.test_client()
    make_token(database)
    _problem(client.get(f"{API}/applications"), 401)
    _problem(client.get(f"{API}/applications", headers=bearer("shomei_not-a-token")), 401)
    _problem(client.get(f"{API}/applications", headers={"Authorization": "Basic eDp5"}), 401)
    # Checked before the input: a bad query without a token is still 401.
    _problem(client.get(f"{API}/applications?page_size=0"), 401)
    with database.factory() as s:
        assert s.scalar(select(func.count()).where(AuditRecord.action == "api_call")) == 0


def test_the_rate_limit_gives_429_with_retry_after(
    ca_home: CaHome, database: Database, tmp_path: Path, clock: Clock
) -> None:
    app = api_app(ca_home, database, tmp_path, clock, api=ApiSettings(rate_limit="3 per minute"))
    client = app.test_client()
    first = make_token(database, name="first")
    second = make_token(database, name="second")
    for _ in range(3):
        assert client.get(f"{API}/applications", headers=bearer(first)).status_code == 200
    limited = client.get(f"{API}/applications", headers=bearer(first))
    body = _problem(limited, 429)
    assert body["code"] == "rate_limited" and "Retry-After" in str(body["detail"])
    retry = int(limited.headers["Retry-After"])
    assert 1 <= retry <= 60
    # Per token: another token still gets through.
    assert client.get(f"{API}/applications", headers=bearer(second)).status_code == 200


# -- resources ------------------------------------------------------------------------------


def test_applications_list_pages_with_a_cursor_and_filters(
    api: Flask, database: Database, now: dt.datetime
) -> None:
    ids = []
    with database.factory() as s, s.begin():
        for i, status in enumerate([*Status][:7]):
            app = factories.application(
                s,
                applicant=Applicant.OFFICE,
                status=status,
                now=now + dt.timedelta(minutes=i),
            )
            ids.append(app.id)
    client = api.test_client()
    headers = bearer(make_token(database, [Scope.READ_APPLICATIONS]))
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        query = "page_size=3" + (f"&cursor={cursor}" if cursor else "")
        answer = client.get(f"{API}/applications?{query}", headers=headers)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        page = answer.get_json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True) and pages == 3  # newest first, 3 + 3 + 1
    first = client.get(f"{API}/applications?page_size=1", headers=headers).get_json()["items"][0]
    assert (first["status_label_ja"] and first["applied_at"].endswith("Z")) or "+00:00" in first[
        "applied_at"
    ]
    issued = client.get(
        f"{API}/applications?status=issued&status=revoked", headers=headers
    ).get_json()
    assert {i["status"] for i in issued["items"]} == {"issued"}
    bad = _problem(client.get(f"{API}/applications?page_size=0", headers=headers), 400)
    assert bad["code"] == "malformed"
    assert [e["field"] for e in bad["errors"]] == ["query.page_size"]  # type: ignore[index,union-attr]
    _problem(client.get(f"{API}/applications?cursor=99999999999999999999-1", headers=headers), 400)
    _problem(client.get(f"{API}/applications?status=nonsense", headers=headers), 400)
    _problem(client.get(f"{API}/applications?surprise=1", headers=headers), 400)


def test_an_application_with_its_history_and_its_certificate(
    api: Flask, database: Database, clock: Clock
) -> None:
    now = clock.now
    with database.factory() as s, s.begin():
        app_id = requested(s, now=now)
    settings = api.extensions["shomei"].settings
    link.dispatch(database.factory, settings, now=now)  # inline CA: issued and imported
    with database.factory() as s:
        serial = s.execute(
            select(Certificate.serial_hex).where(Certificate.application_id == app_id)
        ).scalar_one()
    client = api.test_client()
    headers = bearer(make_token(database, [Scope.READ_APPLICATIONS]))
    detail = client.get(f"{API}/applications/{app_id}", headers=headers).get_json()
    assert detail["status"] == "issued" and detail["certificate_serial"] == serial
    moves = [(h["status_before"], h["status_after"]) for h in detail["history"]]
    assert ("issue_requested", "awaiting_issuance") in moves
    assert moves[-1] == ("awaiting_issuance", "issued")
    assert all(h["action_ja"] for h in detail["history"])
    _problem(client.get(f"{API}/applications/999999", headers=headers), 404)

    cert = client.get(f"{API}/certificates/{serial.upper()}", headers=headers).get_json()
    assert cert["serial"] == serial and cert["application_id"] == app_id
    assert cert["state"] == "valid" and cert["revoked_at"] is None
    assert cert["certificate_pem"].startswith("-----BEGIN CERTIFICATE-----")
    colons = ":".join(
        serial.zfill(len(serial) + len(serial) % 2)[i : i + 2]
        for i in range(0, len(serial) + len(serial) % 2, 2)
    )
    assert client.get(f"{API}/certificates/{colons}", headers=headers).status_code == 200
    _problem(client.get(f"{API}/certificates/abc123", headers=headers), 404)
    _problem(client.get(f"{API}/certificates/not-hex", headers=headers), 400)

    later = now + dt.timedelta(minutes=5)
    with database.factory() as s, s.begin():
        request_revocation(s, app_id, now=later)
    link.dispatch(database.factory, settings, now=later)  # revoked, CRL registered
    cert = client.get(f"{API}/certificates/{serial}", headers=headers).get_json()
    assert cert["state"] == "revoked" and cert["revoked_at"] is not None
    assert cert["application_status"] == "revoked" and cert["revocation_reason"] == "keyCompromise"
    audited = _calls(database, "reception")
    assert {r.details.get("serial") for r in audited} >= {serial}


def test_the_current_crl_and_registering_one(
    api: Flask, ca_home: CaHome, database: Database, clock: Clock
) -> None:
    client = api.test_client()
    reader = bearer(make_token(database, [Scope.VERIFY_CLAIMS], name="verifier"))
    loader = bearer(make_token(database, [Scope.REGISTER_CRLS], name="crl-loader"))
    none_yet = _problem(client.get(f"{API}/crl", headers=reader), 404)
    assert "まだ登録されていません" in str(none_yet["detail_ja"])

    with open_test_ca(ca_home) as ca:
        older = issue_crl(ca, now=clock.now - dt.timedelta(hours=1))
        newer = issue_crl(ca, now=clock.now)
    done = client.post(f"{API}/crl", json={"crl": base64.b64encode(newer).decode()}, headers=loader)
    assert done.status_code == 200, done.get_data(as_text=True)
    registered = done.get_json()
    assert registered["registered"] is True and registered["revoked_applications"] == []
    again = client.post(
        f"{API}/crl", json={"crl": base64.b64encode(newer).decode()}, headers=loader
    )
    assert again.status_code == 200 and again.get_json()["registered"] is False
    backwards = client.post(
        f"{API}/crl", json={"crl": base64.b64encode(older).decode()}, headers=loader
    )
    assert _problem(backwards, 409)["code"] == "conflict"
    garbage = client.post(
        f"{API}/crl", json={"crl": base64.b64encode(b"not a crl").decode()}, headers=loader
    )
    assert _problem(garbage, 400)["code"] == "malformed"
    _problem(client.post(f"{API}/crl", json={"crl": "***"}, headers=loader), 400)
    _problem(client.post(f"{API}/crl", data="crl=x", headers=loader), 400)

    current = client.get(f"{API}/crl", headers=reader).get_json()
    assert current["number"] == registered["number"] and current["sha256"] == registered["sha256"]
    assert current["current"] is True and current["issuer"].startswith("CN=")
    with database.factory() as s:
        assert s.scalar(select(func.count()).select_from(CrlRecord)) == 1
        upload = (
            s.execute(select(AuditRecord).where(AuditRecord.action == "upload_crl")).scalars().all()
        )
        assert {r.actor_id for r in upload} == {"api:crl-loader"}
    assert [r.details["status"] for r in _calls(database, "crl-loader")] == [
        200,
        200,
        409,
        400,
        400,
        400,
    ]


def test_every_call_is_audited_with_the_tokens_name(api: Flask, database: Database) -> None:
    client = api.test_client()
    headers = bearer(make_token(database, name="受付-1"))
    client.get(f"{API}/applications", headers=headers)
    client.get(f"{API}/applications/12345", headers=headers)
    client.get(f"{API}/crl", headers=headers)
    calls = _calls(database, "受付-1")
    assert [(c.details["method"], c.details["path"], c.details["status"]) for c in calls] == [
        ("GET", f"{API}/applications", 200),
        ("GET", f"{API}/applications/12345", 404),
        ("GET", f"{API}/crl", 404),
    ]
    assert all(c.actor == "system" and c.object_type == "api_token" for c in calls)
    with database.factory() as s:
        row = s.execute(select(ApiToken)).scalar_one()
        assert row.last_used_at is not None
        assert s.scalar(select(func.count()).select_from(Application)) == 0  # nothing changed
