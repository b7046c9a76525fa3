"""The portal's entrance: its own sign-in page and policy, its home, and who may enter."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from ra.store.models import AccountKind
from ra.store.vault import Vault
from tests.ra.conftest import Database
from tests.ra.web.helpers import Clock, add_portal_account, assert_no_mojibake, token


def _sign_in(client: FlaskClient, user_id: str, password: str) -> tuple[int, str]:
    answer = client.post(
        "/portal/sign-in",
        data={
            "csrf_token": token(client, "/portal/sign-in"),
            "user_id": user_id,
            "password": password,
        },
    )
    return answer.status_code, answer.headers.get("Location", "")


def test_an_office_signs_in_and_sees_its_certificates_in_japanese(
    app: Flask, database: Database, vault: Vault, clock: Clock
) -> None:
    office = add_portal_account(database, clock.now, kind=AccountKind.OFFICE)
    client = app.test_client()
    status, location = _sign_in(client, office.user_id, office.password)
    assert (status, location) == (302, "/portal/")
    page = client.get("/portal/").get_data(as_text=True)
    assert "証明書" in page and "発行手数料残高" in page and office.user_id in page
    assert_no_mojibake(page)
    assert client.get("/console/").status_code == 403  # the portal's people stay out


def test_the_staff_page_does_not_sign_in_an_office_and_the_portal_not_staff(
    app: Flask, database: Database, vault: Vault, clock: Clock
) -> None:
    office = add_portal_account(database, clock.now, kind=AccountKind.AGENT)
    client = app.test_client()
    answer = client.post(
        "/auth/sign-in",
        data={
            "csrf_token": token(client),
            "user_id": office.user_id,
            "password": office.password,
        },
    )
    assert answer.status_code == 401


def test_three_failures_lock_a_portal_account(
    app: Flask, database: Database, vault: Vault, clock: Clock
) -> None:
    office = add_portal_account(database, clock.now, kind=AccountKind.OFFICE)
    client = app.test_client()
    for _ in range(3):
        assert _sign_in(client, office.user_id, "wrong-password-1")[0] == 401
    status, _location = _sign_in(client, office.user_id, office.password)
    assert status == 423
    page = client.get("/portal/sign-in").get_data(as_text=True)
    assert "サインイン" in page


def test_a_deep_link_survives_the_sign_in_but_never_leaves_the_portal(
    app: Flask, database: Database, vault: Vault, clock: Clock
) -> None:
    office = add_portal_account(database, clock.now, kind=AccountKind.OFFICE)
    client = app.test_client()
    first = client.get("/portal/")
    assert first.status_code == 302 and first.headers["Location"].startswith("/portal/sign-in")
    answer = client.post(
        "/portal/sign-in?next=//evil.example/",
        data={
            "csrf_token": token(client, "/portal/sign-in"),
            "user_id": office.user_id,
            "password": office.password,
        },
    )
    assert answer.headers["Location"] == "/portal/"
