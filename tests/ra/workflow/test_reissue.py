"""A7 (docs/product.md §7) with a certificate: a new issuance password sealed to the certificate."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from ra.party import party_of
from ra.people.passwords import WrongPassword, check_issuance_password
from ra.store.models import Account, Application, AuditRecord, Notice, OutboxMail
from ra.workflow import applications, downloads, reissue
from shomei.errors import NotFound, NotPermitted
from signer.credentials import load_pkcs12
from signer.notices import open_notice
from tests.pki import Pki
from tests.ra.conftest import Database
from tests.ra.workflow import test_services as svc

people = svc.people
settings = svc.settings
profile = svc.profile
rng = svc.rng


def _issued_office(
    database: Database,
    people: svc.People,
    settings,
    profile,
    now,
    rng,  # type: ignore[no-untyped-def]
    pki: Pki,
) -> bytes:
    app_id = svc._office_apply(database, people, settings, profile, now, rng)
    with svc.tx(database) as s:
        applications.register_issue_request(s, party_of(people.staff), app_id, now=now)
    with svc.tx(database) as s:
        app = s.get(Application, app_id)
        assert app is not None
        svc.issue(s, app, pki, now)
    with svc.tx(database) as s:
        return downloads.download_pkcs12(
            s,
            party_of(people.office_a),
            app_id,
            issuance_password=people.passwords[people.office_a.user_id],
            chain=[pki.certs["issuing"], pki.certs["root"]],
            now=now,
        )


def test_sealed_reissue_opens_with_the_certificate_and_replaces_the_password(  # type: ignore[no-untyped-def]
    database: Database, people: svc.People, settings, profile, now, rng, pki: Pki
) -> None:
    old = people.passwords[people.office_a.user_id]
    p12 = _issued_office(database, people, settings, profile, now, rng, pki)
    later = now + dt.timedelta(days=10)
    with svc.tx(database) as s:
        office = s.get(Account, people.office_a.id)
        assert office is not None
        notice = reissue.reissue_sealed(
            s, party_of(office), now=later, message_id_domain="t.example"
        )
        sealed = notice.sealed
        notice_id = notice.id
    assert sealed is not None
    # The office opens it with its PKCS#12 (the decryption tool's library call).
    text = open_notice(sealed, credentials=load_pkcs12(p12, old)).decode()
    new = text.split("新しい証明書発行用パスワード: ")[1].split()[0]
    with svc.tx(database) as s:
        office = s.get(Account, people.office_a.id)
        assert office is not None
        check_issuance_password(office.issuance_password_hash, new)
        with pytest.raises(WrongPassword):
            check_issuance_password(office.issuance_password_hash, old)
        # Neither the portal body, the mail nor the audit log carries the password.
        row = s.get(Notice, notice_id)
        assert row is not None and new not in row.body
        mail = s.execute(
            select(OutboxMail).where(OutboxMail.kind == "password_reissue")
        ).scalar_one()
        assert new not in mail.body and new not in mail.subject
        audited = s.execute(
            select(AuditRecord).where(AuditRecord.action == "reissue_issuance_password_sealed")
        ).scalar_one()
        assert new not in str(audited.details)


def test_without_a_current_certificate_the_phone_path_is_named(  # type: ignore[no-untyped-def]
    database: Database, people: svc.People, now
) -> None:
    with svc.tx(database) as s:
        office = s.get(Account, people.office_b.id)
        assert office is not None
        before = office.issuance_password_hash
        with pytest.raises(NotFound) as info:
            reissue.reissue_sealed(s, party_of(office), now=now, message_id_domain="t.example")
        assert "電話" in info.value.message_ja
        assert office.issuance_password_hash == before
        count = s.execute(select(func.count()).select_from(Notice)).scalar_one()
        assert count == 0


def test_staff_have_no_issuance_password(  # type: ignore[no-untyped-def]
    database: Database, people: svc.People, now
) -> None:
    with svc.tx(database) as s:
        staff = s.get(Account, people.staff.id)
        assert staff is not None
        with pytest.raises(NotPermitted):
            reissue.reissue_sealed(s, party_of(staff), now=now, message_id_domain="t.example")
