"""An office never reaches another office's data: every portal route that takes an id, as
office A with office B's ids, answers 404 and shows nothing of office B.

The routes are enumerated from ``app.url_map`` (never listed by hand): every ``/portal`` rule
with an argument named ``…id`` is called with each of office B's objects of that kind, by
every method it accepts (a POST with a valid CSRF token of A's session and B's own issuance
password, so only the ownership check stands in the way).  A new kind of id must be given
office B's objects in :func:`_b_ids`, or the test fails and says so.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.routing import Rule

from contract.profile import Profile
from ra.party import party_of
from ra.settings import LinkSettings, RASettings, WebSettings, load_certificate_profiles
from ra.store.models import (
    Account,
    Application,
    AuditRecord,
    FeeEntry,
    Notice,
    RevocationRequest,
)
from ra.store.vault import Vault, create_key_file
from ra.workflow import applications, revocation_requests
from tests.pki import Pki
from tests.ra.conftest import Database
from tests.ra.web import portal_world as world
from tests.ra.web.helpers import Clock, add_staff, token
from tests.ra.web.test_portal_download import portal_sign_in
from tests.ra_profile import FEES, OFFICE_PROFILE

ARGUMENT = re.compile(r"<(?:(\w+):)?(\w+)>")


@pytest.fixture
def web_settings(tmp_path: Path, database: Database, pki: Pki) -> RASettings:
    create_key_file(tmp_path / "ra-secrets.key")
    issuing, root = world.chain_files(pki, tmp_path / "ca")
    return RASettings(
        fees=FEES,
        database_url=database.url,
        data_dir=tmp_path / "data",
        secrets_key_file=tmp_path / "ra-secrets.key",
        web=WebSettings(secret_key_file=tmp_path / "ra-web.key"),
        profile_files=[OFFICE_PROFILE],
        profiles=load_certificate_profiles([OFFICE_PROFILE], default="office"),
        link=LinkSettings(mode="offline", ca_certificate=issuing, ca_chain=[root]),
    )


def _id_rules(app: Flask) -> list[Rule]:
    """Every portal rule that takes an id, from the URL map."""
    return [
        rule
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/portal")
        and not rule.endpoint.startswith("portal_auth")
        and any(name.endswith("id") for name in rule.arguments)
    ]


def _urls(rule: Rule, ids: dict[str, list[int]]) -> list[str]:
    """The rule's URL for each of office B's objects of the kind its argument names."""
    names = list(rule.arguments)
    missing = [n for n in names if n not in ids]
    assert not missing, (
        f"{rule.rule} takes {missing}: give office B's objects of that kind in _b_ids"
    )
    assert len(names) == 1, f"{rule.rule}: more than one id; pair office B's objects here"
    name = names[0]
    return [ARGUMENT.sub(str(value), rule.rule) for value in ids[name]]


def _b_ids(
    database: Database,
    office_b: world.Holder,
    issued: int,
    rejected: int,
    now: dt.datetime,
) -> dict[str, list[int]]:
    """Office B's objects, by the argument name a route gives their id."""
    with database.factory() as s, s.begin():
        account = s.get(Account, office_b.id)
        assert account is not None
        notice = Notice(
            account_id=account.id,
            application_id=issued,
            kind="certificate_issued",
            title=f"{office_b.name} 様 証明書が発行されました",
            body=f"{office_b.name} 様\n申請番号 {issued}",
            created_at=now,
        )
        s.add(notice)
        s.flush()
        request = revocation_requests.request_revocation(
            s,
            party_of(account),
            issued,
            reason="cessationOfOperation",
            note=f"{office_b.name} は廃業します",
            now=now,
        )
        return {
            "application_id": [issued, rejected],
            "notice_id": [notice.id],
            "request_id": [request.id],
            "revocation_request_id": [request.id],
        }


def _snapshot(database: Database) -> tuple[int, ...]:
    with database.factory() as s:
        return tuple(
            int(s.execute(select(func.count()).select_from(m)).scalar_one())
            for m in (Application, AuditRecord, RevocationRequest, FeeEntry, Notice)
        )


def test_office_a_gets_404_for_every_id_of_office_b(
    app: Flask, database: Database, vault: Vault, clock: Clock, pki: Pki, web_settings: RASettings
) -> None:
    profile: Profile = web_settings.certificate_profile()
    now = clock.now
    office_a = world.add_holder(database.factory, now, name="証明ケア 甲事業所")
    office_b = world.add_holder(database.factory, now, name="乙川訪問看護ステーション")
    staff = add_staff(database, vault, now)
    with database.factory() as s:
        staff_party = party_of(s.get(Account, staff.id))  # type: ignore[arg-type]
    mine = world.issued(
        database.factory,
        office_a,
        now,
        pki,
        settings=web_settings,
        profile=profile,
        staff=staff_party,
    )
    issued = world.issued(
        database.factory,
        office_b,
        now,
        pki,
        settings=web_settings,
        profile=profile,
        staff=staff_party,
    )
    rejected = world.apply(database.factory, office_b, now, settings=web_settings, profile=profile)
    with database.factory() as s, s.begin():
        applications.reject(s, staff_party, rejected, reason="乙川の書類不備", now=now)
        serial = s.get(Application, issued).certificate.serial_hex  # type: ignore[union-attr]
    ids = _b_ids(database, office_b, issued, rejected, now)

    client = app.test_client()
    portal_sign_in(client, office_a)
    own_page = client.get(f"/portal/applications/{mine}")
    assert own_page.status_code == 200  # A's own application opens: the 404s are about B
    csrf = token(client, "/portal/applications/")
    secrets = {
        "name": office_b.name,
        "user ID": office_b.user_id,
        "office number": office_b.number,
        "email": f"{office_b.number}@example.jp",
        "serial": serial,
        "issuance password": office_b.issuance_password,
        "rejection reason": "乙川の書類不備",
    }
    rules = _id_rules(app)
    checked: set[str] = set()
    before = _snapshot(database)
    for rule in rules:
        for url in _urls(rule, ids):
            for method in sorted((rule.methods or set()) & {"GET", "POST"}):
                data = (
                    {
                        "csrf_token": csrf,
                        "issuance_password": office_b.issuance_password,
                        "encryption": "aes",
                        "format": "pem",
                        "reason": "cessationOfOperation",
                        "note": "依頼",
                        "understood": "y",
                        "consent_fee_offset": "y",
                    }
                    if method == "POST"
                    else None
                )
                answer = client.open(url, method=method, data=data)
                assert answer.status_code == 404, f"{method} {url}: {answer.status_code}"
                body = answer.get_data(as_text=True)
                for what, value in secrets.items():
                    assert value not in body, f"{method} {url} shows office B's {what}"
                assert "Content-Disposition" not in answer.headers
                checked.add(rule.endpoint)
    assert _snapshot(database) == before, "a request with office B's id changed something"
    # The test walked the routes this branch has (and will walk those added later).
    assert {
        "portal_status.detail",
        "portal_download.form",
        "portal_download.pkcs12_file",
        "portal_download.certificate_file",
        "portal_renewal.form",
        "portal_renewal.renew",
        "portal_revocation.form",
        "portal_revocation.send",
    } <= checked
    # Office B's own list shows its applications; A's list shows none of B's.
    listing = client.get("/portal/applications/").get_data(as_text=True)
    for value in secrets.values():
        assert value not in listing
