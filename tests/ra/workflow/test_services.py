"""The RA's service layer end to end, on SQLite and PostgreSQL.

The office path (apply → issue request → issued → PKCS#12 download that openssl opens →
revocation), the agent path with its payment, rejection, every undo, role and ownership
checks, and bad input that changes nothing.  The services never talk to the CA; to reach
発行済み the tests sign the application's CSR with the test PKI's issuing key and register
the certificate through :mod:`ra.lifecycle` as the import job would (:func:`issue`).
"""

from __future__ import annotations

import datetime as dt
import random
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contract.profile import Profile, load_profiles
from ra import lifecycle
from ra.crypto import keys, pkcs12
from ra.lifecycle import Actor, Applicant, Event, Status, TransitionRefused
from ra.party import Party, party_of
from ra.people import accounts
from ra.people.accounts import AccountInput
from ra.people.passwords import WrongPassword
from ra.settings import RASettings
from ra.store import audit
from ra.store.models import (
    Account,
    AccountKind,
    Application,
    AuditRecord,
    Certificate,
    FeeEntry,
    Notice,
    OutboxMail,
    Payment,
)
from ra.workflow import applications, billing, downloads, revocations
from shomei.errors import AlreadyExists, Conflict, MalformedInput, NotFound, NotPermitted, Refused
from tests.pki import Pki
from tests.ra.conftest import VAULT, Database
from tests.ra_profile import FEES

REPO = Path(__file__).resolve().parents[3]


@contextmanager
def tx(database: Database) -> Iterator[Session]:
    """One unit of work, as a web request or a command would open it."""
    with database.factory() as session, session.begin():
        yield session


def issue(session: Session, app: Application, pki: Pki, now: dt.datetime) -> x509.Certificate:
    """Play the dispatch and import jobs: 3 → 4 → 5 with a certificate from the test PKI."""
    lifecycle.apply(
        session, app, Event.DISPATCH_ISSUANCE, actor=Actor.SYSTEM, actor_id="test", now=now
    )
    csr = x509.load_der_x509_csr(app.csr_der)
    serial = x509.random_serial_number()
    issuing = pki.certs["issuing"]
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                    x509.NameAttribute(
                        NameOID.ORGANIZATIONAL_UNIT_NAME, app.account.office_number or ""
                    ),
                    x509.NameAttribute(NameOID.COMMON_NAME, app.account.name),
                ]
            )
        )
        .issuer_name(issuing.subject)
        .public_key(csr.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1095))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(pki.keys["issuing"], hashes.SHA256())
    )
    session.add(
        Certificate(
            application_id=app.id,
            serial_hex=f"{serial:x}",
            der=cert.public_bytes(serialization.Encoding.DER),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            registered_at=now,
            expiry_notices_sent=[],
        )
    )
    session.flush()
    lifecycle.apply(
        session, app, Event.REGISTER_CERTIFICATE, actor=Actor.SYSTEM, actor_id="test", now=now
    )
    return cert


@dataclass
class People:
    staff: Account
    admin: Account
    office_a: Account
    office_b: Account
    agent: Account
    passwords: dict[str, str]  # user_id -> issuance password


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profiles(REPO / "conf" / "profiles")["office"]


@pytest.fixture
def settings(tmp_path: Path) -> RASettings:
    return RASettings(fees=FEES, database_url="sqlite://", data_dir=tmp_path)


@pytest.fixture
def rng() -> Callable[[int], bytes]:
    return random.Random(20261102).randbytes


def portal(kind: AccountKind, number: str, name: str) -> AccountInput:
    return AccountInput(
        kind=kind,
        number=number,
        name=name,
        address="東京都新宿区西新宿2-8-1",
        phone="03-5321-1111",
        email=f"{number}@example.jp",
    )


@pytest.fixture
def people(database: Database, now: dt.datetime, rng: Callable[[int], bytes]) -> People:
    op = Party.operator("test")
    with tx(database) as s:
        staff = accounts.add_console_user(
            s,
            op,
            kind=AccountKind.STAFF,
            name="職員",
            email="st@fed.example",
            now=now,
            vault=VAULT,
            rng=rng,
        )
        admin = accounts.add_console_user(
            s,
            op,
            kind=AccountKind.ADMIN,
            name="管理者",
            email="ad@fed.example",
            now=now,
            vault=VAULT,
            rng=rng,
        )
        made = [
            accounts.add_portal_account(s, op, portal(k, n, name), now=now, rng=rng)
            for k, n, name in (
                (AccountKind.OFFICE, "1310000001", "中央ケア事業所"),
                (AccountKind.OFFICE, "1310000002", "西ケア事業所"),
                (AccountKind.AGENT, "9900000001", "請求代行株式会社"),
            )
        ]
    return People(
        staff.account,
        admin.account,
        made[0].account,
        made[1].account,
        made[2].account,
        {m.user_id: m.issuance_password or "" for m in made},
    )


def _count(session: Session, model: type) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def _office_apply(
    database: Database,
    people: People,
    settings: RASettings,
    profile: Profile,
    now,
    rng,  # type: ignore[no-untyped-def]
) -> int:
    with tx(database) as s:
        app = applications.apply(
            s,
            party_of(people.office_a),
            settings=settings,
            profile=profile,
            now=now,
            issuance_password=people.passwords[people.office_a.user_id],
            consent_fee_offset=True,
            rng=rng,
            source_address="192.0.2.10",
        )
        return app.id


def openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    # errors="replace": openssl 3.0 prints a BMPString friendly name byte by byte.
    return subprocess.run(
        ["openssl", *map(str, args)], capture_output=True, text=True, errors="replace", check=False
    )


def test_office_path_to_download_and_revocation(  # type: ignore[no-untyped-def]
    database: Database, people: People, settings, profile, now, rng, pki: Pki, tmp_path: Path
) -> None:
    password = people.passwords[people.office_a.user_id]
    app_id = _office_apply(database, people, settings, profile, now, rng)
    with tx(database) as s:
        app = s.get(Application, app_id)
        assert app is not None
        assert app.status is Status.AWAITING_ISSUE_REQUEST and app.entered_by == "office"
        assert app.fee_offset_consent_at == now and app.fee_yen == settings.fees.office_fee_yen
        # The RA generated the profile's default key and keeps it only wrapped.
        assert app.wrapped_key is not None
        key = keys.unwrap_key(app.wrapped_key, password)
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
        csr = x509.load_der_x509_csr(app.csr_der)
        assert csr.is_signature_valid and csr.public_key() == key.public_key()
        assert applications.fee_balance(s, people.office_a) == settings.fees.office_fee_yen
        first = s.execute(
            select(AuditRecord).where(AuditRecord.object_id == str(app_id))
        ).scalar_one()
        assert (first.action, first.actor, first.source_address) == (
            "apply",
            "office",
            "192.0.2.10",
        )

    with tx(database) as s:
        applications.register_issue_request(s, party_of(people.staff), app_id, now=now)
    with tx(database) as s:
        app = s.get(Application, app_id)
        assert app is not None and app.status is Status.ISSUE_REQUESTED
        cert = issue(s, app, pki, now)
    chain = [pki.certs["issuing"], pki.certs["root"]]
    with tx(database) as s:
        data = downloads.download_pkcs12(
            s,
            party_of(people.office_a),
            app_id,
            issuance_password=password.lower(),
            chain=chain,
            now=now,
        )
    p12 = tmp_path / "office.p12"
    p12.write_bytes(data)
    out = openssl("pkcs12", "-in", p12, "-passin", f"pass:{password}", "-nodes", "-info")
    assert out.returncode == 0, out.stderr
    assert "PBKDF2" in out.stderr and "AES-256-CBC" in out.stderr
    opened = pkcs12.read(data, password)
    assert opened.cert is not None and opened.cert.friendly_name == "中央ケア事業所".encode()
    assert out.stdout.count("BEGIN CERTIFICATE") == 3 and "BEGIN PRIVATE KEY" in out.stdout
    leaf = x509.load_pem_x509_certificates(out.stdout.encode())[0]
    assert leaf == cert
    assert openssl("pkcs12", "-in", p12, "-passin", "pass:WRONG-PASS-WORD", "-nodes").returncode

    with tx(database) as s:
        last = s.execute(select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(1)).scalar_one()
        assert (last.action, last.actor_id) == ("download_pkcs12", people.office_a.user_id)
        assert last.details["encryption"] == "aes"
        revocations.register_revocation(
            s,
            party_of(people.staff),
            app_id,
            reason="cessationOfOperation",
            requested_by="prefecture",
            requested_at=now - dt.timedelta(days=1),
            now=now,
        )
    with tx(database) as s:
        app = s.get(Application, app_id)
        assert app is not None and app.status is Status.REVOCATION_REQUESTED
        assert (app.revocation_reason, app.revocation_requested_by) == (
            "cessationOfOperation",
            "prefecture",
        )
        assert app.revocation_requested_at == now - dt.timedelta(days=1)
        report = audit.verify(s, trusted=[])
        assert report.records == 2 + 3 + 1 + 3 + 1 + 1  # accounts, app events, download, revoke


def test_agent_path_with_payment_and_its_undo(  # type: ignore[no-untyped-def]
    database: Database, people: People, settings, profile, now, rng
) -> None:
    with tx(database) as s:
        app = applications.apply(
            s,
            party_of(people.agent),
            settings=settings,
            profile=profile,
            now=now,
            issuance_password=people.passwords[people.agent.user_id],
            for_office=people.office_a.office_number,
            rng=rng,
        )
        app_id = app.id
        assert app.status is Status.AWAITING_PAYMENT and app.fee_offset_consent_at is None
        # On behalf of office A (docs/product.md §1): the certificate will name office A.
        assert (app.office_number, app.office_name) == (
            people.office_a.office_number,
            people.office_a.name,
        )
        # The invoice becomes available: a notice and a mail tell the agent.
        notice = s.execute(select(Notice).where(Notice.application_id == app_id)).scalar_one()
        assert notice.kind == "invoice" and people.agent.user_id in notice.body
        assert _count(s, OutboxMail) == 1 and _count(s, FeeEntry) == 0
        bill = billing.invoice(s, party_of(people.agent), app_id, settings=settings, now=now)
        assert bill.payer_user_id == people.agent.user_id and bill.total_yen == app.fee_yen
        assert any(people.office_a.office_number in note for note in bill.notes)

    paid_on = dt.date(2026, 11, 1)
    fee = settings.fees.agent_fee_yen
    with tx(database) as s, pytest.raises(NotPermitted):  # an agent cannot register a payment
        applications.register_payment(
            s,
            party_of(people.agent),
            app_id,
            paid_on=paid_on,
            amount_yen=fee,
            payer_name="x",
            now=now,
        )
    for bad in (
        {"amount_yen": fee - 1, "payer_name": people.agent.user_id, "paid_on": paid_on},
        {"amount_yen": fee, "payer_name": "  ", "paid_on": paid_on},
        {"amount_yen": fee, "payer_name": "x", "paid_on": dt.date(2026, 11, 30)},
    ):
        with tx(database) as s, pytest.raises(MalformedInput) as info:
            applications.register_payment(s, party_of(people.staff), app_id, now=now, **bad)  # type: ignore[arg-type]
        assert info.value.message_ja
    with tx(database) as s:
        assert s.get(Application, app_id).status is Status.AWAITING_PAYMENT  # type: ignore[union-attr]
        assert _count(s, Payment) == 0
        payment = applications.register_payment(
            s,
            party_of(people.staff),
            app_id,
            paid_on=paid_on,
            amount_yen=fee,
            payer_name=people.agent.user_id,
            now=now,
        )
        assert payment.registered_by == people.staff.user_id
    with tx(database) as s:
        assert s.get(Application, app_id).status is Status.ISSUE_REQUESTED  # type: ignore[union-attr]
        with pytest.raises(Conflict):  # the invoice is gone once paid
            billing.invoice(s, party_of(people.agent), app_id, settings=settings, now=now)
    with tx(database) as s, pytest.raises(NotPermitted):  # staff cannot undo
        applications.undo_approval(s, party_of(people.staff), app_id, now=now)
    with tx(database) as s:
        applications.undo_approval(s, party_of(people.admin), app_id, now=now)
    with tx(database) as s:
        assert s.get(Application, app_id).status is Status.AWAITING_PAYMENT  # type: ignore[union-attr]
        assert s.execute(select(Payment.undone_at)).scalar_one() == now
        # Paid again: a second payment row, the first stays undone.
        applications.register_payment(
            s,
            party_of(people.staff),
            app_id,
            paid_on=paid_on,
            amount_yen=fee,
            payer_name="再入金",
            now=now,
        )
        live = s.execute(select(Payment).where(Payment.undone_at.is_(None))).scalars().all()
        assert [p.payer_name for p in live] == ["再入金"]


def test_rejection_edit_undo_and_reapply(  # type: ignore[no-untyped-def]
    database: Database, people: People, settings, profile, now, rng
) -> None:
    app_id = _office_apply(database, people, settings, profile, now, rng)
    fee = settings.fees.office_fee_yen
    with tx(database) as s, pytest.raises(MalformedInput):
        applications.reject(s, party_of(people.staff), app_id, reason="   ", now=now)
    with tx(database) as s:
        applications.reject(s, party_of(people.staff), app_id, reason="書類不備", now=now)
    with tx(database) as s:
        app = s.get(Application, app_id)
        assert app is not None and app.status is Status.REJECTION_PENDING
        assert app.status_reason == "書類不備"
        assert applications.fee_balance(s, people.office_a) == 0  # the charge was cancelled
        applications.edit_rejection_reason(
            s, party_of(people.staff), app_id, reason="押印漏れ", now=now
        )
    with tx(database) as s, pytest.raises(NotPermitted):
        applications.undo_rejection(s, party_of(people.staff), app_id, now=now)
    with tx(database) as s:
        assert s.get(Application, app_id).status_reason == "押印漏れ"  # type: ignore[union-attr]
        applications.undo_rejection(s, party_of(people.admin), app_id, now=now)
    with tx(database) as s:
        app = s.get(Application, app_id)
        assert app is not None and app.status is Status.AWAITING_ISSUE_REQUEST
        assert app.status_reason is None
        assert applications.fee_balance(s, people.office_a) == fee
        applications.reject(s, party_of(people.staff), app_id, reason="重複申請", now=now)
    with tx(database) as s:  # the rejection job processes it: 9 → 10
        app = s.get(Application, app_id)
        assert app is not None
        lifecycle.apply(
            s, app, Event.PROCESS_REJECTION, actor=Actor.SYSTEM, actor_id="job", now=now
        )
    with tx(database) as s, pytest.raises(TransitionRefused):  # never reopened
        applications.undo_rejection(s, party_of(people.admin), app_id, now=now)
    with tx(database) as s, pytest.raises(TransitionRefused):
        applications.register_issue_request(s, party_of(people.staff), app_id, now=now)
    new_id = _office_apply(database, people, settings, profile, now, rng)
    assert new_id != app_id
    with tx(database) as s:
        assert s.get(Application, app_id).status is Status.REJECTED  # type: ignore[union-attr]
        assert applications.fee_balance(s, people.office_a) == fee  # only the live one counts


def test_undo_issue_request_keeps_the_office_fee(  # type: ignore[no-untyped-def]
    database: Database, people: People, settings, profile, now, rng
) -> None:
    app_id = _office_apply(database, people, settings, profile, now, rng)
    with tx(database) as s:
        applications.register_issue_request(s, party_of(people.staff), app_id, now=now)
    with tx(database) as s, pytest.raises(TransitionRefused):  # a second approval is refused
        applications.register_issue_request(s, party_of(people.admin), app_id, now=now)
    with tx(database) as s:
        applications.undo_approval(s, party_of(people.admin), app_id, now=now)
    with tx(database) as s:
        assert s.get(Application, app_id).status is Status.AWAITING_ISSUE_REQUEST  # type: ignore[union-attr]
        assert applications.fee_balance(s, people.office_a) == settings.fees.office_fee_yen
        actions = s.execute(
            select(AuditRecord.action, AuditRecord.actor)
            .where(AuditRecord.object_id == str(app_id))
            .order_by(AuditRecord.seq)
        ).all()
        assert [tuple(a) for a in actions] == [
            ("apply", "office"),
            ("register_issue_request", "staff"),
            ("undo_approval", "admin"),
        ]


def test_register_and_undo_revocation(  # type: ignore[no-untyped-def]
    database: Database, people: People, settings, profile, now, rng, pki: Pki
) -> None:
    app_id = _office_apply(database, people, settings, profile, now, rng)
    with tx(database) as s:
        applications.register_issue_request(s, party_of(people.staff), app_id, now=now)
    with tx(database) as s:
        issue(s, s.get(Application, app_id), pki, now)  # type: ignore[arg-type]
    for bad in (
        {"reason": "certificateHold", "requested_by": "office", "requested_at": now},
        {"reason": "keyCompromise", "requested_by": "police", "requested_at": now},
        {
            "reason": "keyCompromise",
            "requested_by": "office",
            "requested_at": now + dt.timedelta(hours=1),
        },
        {
            "reason": "keyCompromise",
            "requested_by": "office",
            "requested_at": now.replace(tzinfo=None),
        },
    ):
        with tx(database) as s, pytest.raises(MalformedInput):
            revocations.register_revocation(s, party_of(people.staff), app_id, now=now, **bad)  # type: ignore[arg-type]
    with tx(database) as s, pytest.raises(NotPermitted):  # an office cannot register it itself
        revocations.register_revocation(
            s,
            party_of(people.office_a),
            app_id,
            reason="keyCompromise",
            requested_by="office",
            requested_at=now,
            now=now,
        )
    with tx(database) as s:
        assert s.get(Application, app_id).status is Status.ISSUED  # type: ignore[union-attr]
        revocations.register_revocation(
            s,
            party_of(people.staff),
            app_id,
            reason="keyCompromise",
            requested_by="office",
            requested_at=now,
            now=now,
        )
    with tx(database) as s, pytest.raises(NotPermitted):
        revocations.undo_revocation(s, party_of(people.staff), app_id, now=now)
    with tx(database) as s:
        revocations.undo_revocation(s, party_of(people.admin), app_id, now=now)
    with tx(database) as s:
        app = s.get(Application, app_id)
        assert app is not None and app.status is Status.ISSUED
        assert app.revocation_reason is None and app.revocation_requested_at is None
        undo = s.execute(select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(1)).scalar_one()
        assert undo.action == "undo_revocation"
        assert undo.details["undone"]["reason_code"] == "keyCompromise"
        # Dispatched: undo is no longer possible.
        revocations.register_revocation(
            s,
            party_of(people.staff),
            app_id,
            reason="superseded",
            requested_by="agent",
            requested_at=now,
            now=now,
        )
        lifecycle.apply(
            s, app, Event.DISPATCH_REVOCATION, actor=Actor.SYSTEM, actor_id="job", now=now
        )
        with pytest.raises(TransitionRefused):
            revocations.undo_revocation(s, party_of(people.admin), app_id, now=now)


def test_offices_and_agents_see_only_their_own(  # type: ignore[no-untyped-def]
    database: Database, people: People, settings, profile, now, rng, pki: Pki
) -> None:
    app_id = _office_apply(database, people, settings, profile, now, rng)
    with tx(database) as s:
        applications.register_issue_request(s, party_of(people.staff), app_id, now=now)
    with tx(database) as s:
        issue(s, s.get(Application, app_id), pki, now)  # type: ignore[arg-type]
    password_b = people.passwords[people.office_b.user_id]
    for stranger in (people.office_b, people.agent):
        with tx(database) as s, pytest.raises(NotFound) as info:
            applications.get_application(s, party_of(stranger), app_id)
        assert info.value.message_ja == f"申請 {app_id} は見つかりません"
        with tx(database) as s, pytest.raises(NotFound):
            downloads.download_pkcs12(
                s, party_of(stranger), app_id, issuance_password=password_b, chain=[], now=now
            )
        with tx(database) as s, pytest.raises(NotFound):
            downloads.download_certificate(s, party_of(stranger), app_id, chain=[], now=now)
    with tx(database) as s, pytest.raises(NotFound):  # an id that does not exist looks the same
        applications.get_application(s, party_of(people.office_b), app_id + 1000)
    with tx(database) as s, pytest.raises(NotPermitted):  # staff never get an office's key
        downloads.download_pkcs12(
            s, party_of(people.staff), app_id, issuance_password=password_b, chain=[], now=now
        )
    with tx(database) as s, pytest.raises(NotPermitted):  # an office is not staff
        applications.register_issue_request(s, party_of(people.office_a), app_id, now=now)
    with tx(database) as s:
        assert applications.get_application(s, party_of(people.staff), app_id).id == app_id
        assert applications.get_application(s, party_of(people.office_a), app_id).id == app_id
        # A disabled office can do nothing at all.
        s.get(Account, people.office_a.id).active = False  # type: ignore[union-attr]
    with tx(database) as s:
        disabled = s.get(Account, people.office_a.id)
        assert disabled is not None
        with pytest.raises(NotPermitted):
            applications.get_application(s, party_of(disabled), app_id)


def test_wrong_password_on_download_records_nothing(  # type: ignore[no-untyped-def]
    database: Database, people: People, settings, profile, now, rng, pki: Pki
) -> None:
    app_id = _office_apply(database, people, settings, profile, now, rng)
    password = people.passwords[people.office_a.user_id]
    with tx(database) as s, pytest.raises(Conflict):  # not issued yet
        downloads.download_pkcs12(
            s, party_of(people.office_a), app_id, issuance_password=password, chain=[], now=now
        )
    with tx(database) as s:
        applications.register_issue_request(s, party_of(people.staff), app_id, now=now)
    with tx(database) as s:
        issue(s, s.get(Application, app_id), pki, now)  # type: ignore[arg-type]
        before = _count(s, AuditRecord)
    with tx(database) as s, pytest.raises(WrongPassword) as info:
        downloads.download_pkcs12(
            s,
            party_of(people.office_a),
            app_id,
            issuance_password="AAAA-BBBB-CCCC",
            chain=[],
            now=now,
        )
    assert info.value.message_ja == "証明書発行用パスワードが正しくありません"
    with tx(database) as s:
        assert _count(s, AuditRecord) == before
    # After a reissue the key stays under the password it was wrapped with: clear message.
    with tx(database) as s:
        new = accounts.reset_issuance_password(
            s,
            party_of(people.staff),
            people.office_a.user_id,
            now=now,
            federation_name="連合会",
            rng=rng,
        )
    with tx(database) as s:
        office = s.get(Account, people.office_a.id)
        assert office is not None
        with pytest.raises(WrongPassword) as info:
            downloads.download_pkcs12(
                s,
                party_of(office),
                app_id,
                issuance_password=new.issuance_password,
                chain=[],
                now=now,
            )
        assert "申請時" in info.value.message_ja


def test_bad_applications_change_nothing(  # type: ignore[no-untyped-def]
    database: Database, people: People, settings, profile, now, rng
) -> None:
    password = people.passwords[people.office_a.user_id]
    ec_key = ec.generate_private_key(ec.SECP384R1())  # p384 is not in the profile's key types
    good_key = ec.generate_private_key(ec.SECP256R1())
    good_csr = keys.make_csr(good_key, office_number="1310000001", office_name="x")
    tampered = bytearray(good_csr)
    tampered[-5] ^= 0xFF
    cases: list[tuple[dict[str, object], type[Exception]]] = [
        ({"issuance_password": "AAAA-BBBB-CCCC", "consent_fee_offset": True}, WrongPassword),
        ({"issuance_password": password, "consent_fee_offset": False}, MalformedInput),
        ({"consent_fee_offset": True}, MalformedInput),
        (
            {"issuance_password": password, "consent_fee_offset": True, "csr": b"garbage"},
            MalformedInput,
        ),
        (
            {"issuance_password": password, "consent_fee_offset": True, "csr": bytes(tampered)},
            MalformedInput,
        ),
        (
            {
                "issuance_password": password,
                "consent_fee_offset": True,
                "csr": keys.make_csr(ec_key, office_number="1310000001", office_name="x"),
            },
            MalformedInput,
        ),
        (
            {"issuance_password": password, "consent_fee_offset": True, "for_user_id": "someone"},
            Refused,
        ),
    ]
    for kwargs, error in cases:
        with tx(database) as s, pytest.raises(error) as info:
            applications.apply(
                s,
                party_of(people.office_a),
                settings=settings,
                profile=profile,
                now=now,
                rng=rng,
                **kwargs,  # type: ignore[arg-type]
            )
        assert info.value.message_ja  # type: ignore[attr-defined]
    with tx(database) as s:
        assert _count(s, Application) == 0 and _count(s, FeeEntry) == 0
        assert (
            s.execute(
                select(func.count())
                .select_from(AuditRecord)
                .where(AuditRecord.object_type == "application")
            ).scalar_one()
            == 0
        )
    # A good CSR of the office's own: no key kept, PKCS#12 refused, certificate downloadable.
    with tx(database) as s:
        app = applications.apply(
            s,
            party_of(people.office_a),
            settings=settings,
            profile=profile,
            now=now,
            rng=rng,
            issuance_password=password,
            consent_fee_offset=True,
            csr=x509.load_der_x509_csr(good_csr).public_bytes(serialization.Encoding.PEM),
        )
        assert app.wrapped_key is None and app.csr_der == good_csr
        with pytest.raises(AlreadyExists):  # still in progress: a second application is refused
            applications.apply(
                s,
                party_of(people.office_a),
                settings=settings,
                profile=profile,
                now=now,
                rng=rng,
                issuance_password=password,
                consent_fee_offset=True,
            )


def test_own_csr_downloads_the_certificate_not_a_pkcs12(  # type: ignore[no-untyped-def]
    database: Database, people: People, settings, profile, now, rng, pki: Pki
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with tx(database) as s:
        app = applications.apply(
            s,
            party_of(people.office_b),
            settings=settings,
            profile=profile,
            now=now,
            rng=rng,
            issuance_password=people.passwords[people.office_b.user_id],
            consent_fee_offset=True,
            csr=keys.make_csr(key, office_number="1310000002", office_name="西ケア事業所"),
        )
        app_id = app.id
    with tx(database) as s:
        applications.register_issue_request(s, party_of(people.staff), app_id, now=now)
    with tx(database) as s:
        cert = issue(s, s.get(Application, app_id), pki, now)  # type: ignore[arg-type]
    with tx(database) as s:
        with pytest.raises(Conflict) as info:
            downloads.download_pkcs12(
                s,
                party_of(people.office_b),
                app_id,
                issuance_password=people.passwords[people.office_b.user_id],
                chain=[],
                now=now,
            )
        assert "CSR" in info.value.message_ja
        pem = downloads.download_certificate(
            s, party_of(people.office_b), app_id, chain=[pki.certs["issuing"]], now=now
        )
    got = x509.load_pem_x509_certificates(pem)
    assert got == [cert, pki.certs["issuing"]]


def test_staff_apply_on_behalf(  # type: ignore[no-untyped-def]
    database: Database, people: People, settings, profile, now, rng
) -> None:
    with tx(database) as s, pytest.raises(MalformedInput):  # for whom?
        applications.apply(
            s, party_of(people.staff), settings=settings, profile=profile, now=now, rng=rng
        )
    with tx(database) as s, pytest.raises(Refused):  # not an office or agent
        applications.apply(
            s,
            party_of(people.staff),
            settings=settings,
            profile=profile,
            now=now,
            rng=rng,
            for_user_id=people.admin.user_id,
            issuance_password="x",
            consent_fee_offset=True,
        )
    with tx(database) as s:
        office_app = applications.apply(
            s,
            party_of(people.staff),
            settings=settings,
            profile=profile,
            now=now,
            rng=rng,
            for_user_id=people.office_b.user_id,
            consent_fee_offset=True,
            issuance_password=people.passwords[people.office_b.user_id],
        )
        agent_app = applications.apply(
            s,
            party_of(people.admin),
            settings=settings,
            profile=profile,
            now=now,
            rng=rng,
            for_user_id=people.agent.user_id,
            for_office=people.office_a.office_number,
            issuance_password=people.passwords[people.agent.user_id],
        )
        assert (office_app.status, office_app.entered_by) == (
            Status.AWAITING_ISSUE_REQUEST,
            "staff",
        )
        assert office_app.account_id == people.office_b.id
        assert (agent_app.status, agent_app.entered_by) == (Status.AWAITING_PAYMENT, "staff")
        # The owner, not the staff member, sees and owns them.
        assert (
            applications.get_application(s, party_of(people.office_b), office_app.id).id
            == office_app.id
        )


def test_two_operators_approving_at_once(  # type: ignore[no-untyped-def]
    database: Database, people: People, settings, profile, now, rng
) -> None:
    """Both read the application; the first commits; the second is told someone was first."""
    if not database.is_postgres:
        pytest.skip("SQLite serialises whole transactions (BEGIN IMMEDIATE): no interleaving")
    app_id = _office_apply(database, people, settings, profile, now, rng)
    with database.factory() as first, database.factory() as second:
        with second.begin():
            seen = applications.get_application(second, party_of(people.admin), app_id)
            assert seen.status is Status.AWAITING_ISSUE_REQUEST
            with first.begin():
                applications.register_issue_request(first, party_of(people.staff), app_id, now=now)
            with pytest.raises(lifecycle.ChangedMeanwhile) as info:
                applications.reject(second, party_of(people.admin), app_id, reason="重複", now=now)
            assert "他の職員が先にこの申請を変更しました" in info.value.message_ja
            second.rollback()
    with tx(database) as s:
        app = s.get(Application, app_id)
        assert app is not None and app.status is Status.ISSUE_REQUESTED and app.version == 2
        assert _count(s, FeeEntry) == 1  # the losing rejection cancelled no fee


def test_two_applies_at_once_make_one_application(  # type: ignore[no-untyped-def]
    database: Database, people: People, settings, profile, now
) -> None:
    """Two browser tabs of one office apply at the same moment: exactly one application."""
    import secrets
    import threading

    from shomei.errors import Refused

    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def tab() -> None:
        barrier.wait(timeout=30)
        try:
            with tx(database) as s:
                office = s.get(Account, people.office_a.id)
                assert office is not None
                applications.apply(
                    s,
                    party_of(office),
                    settings=settings,
                    profile=profile,
                    now=now,
                    issuance_password=people.passwords[office.user_id],
                    consent_fee_offset=True,
                    rng=secrets.token_bytes,
                )
            result = "applied"
        except Refused as exc:  # the service's check, or the index when they truly raced
            result = f"refused:{exc.code}"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=tab) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes)[0] == "applied" and outcomes.count("applied") == 1, outcomes
    with tx(database) as s:
        count = s.execute(
            select(func.count())
            .select_from(Application)
            .where(Application.account_id == people.office_a.id)
        ).scalar_one()
        assert count == 1
        assert _count(s, FeeEntry) == 1


def test_the_database_itself_refuses_a_second_pending_application(  # type: ignore[no-untyped-def]
    database: Database, now
) -> None:
    """The partial unique index holds even if code forgot the check (statuses 1-4 only)."""
    from sqlalchemy.exc import IntegrityError

    from tests.ra import factories

    with tx(database) as s:
        first = factories.application(
            s,
            applicant=Applicant.OFFICE,
            status=Status.REJECTED,
            now=now,
            office_number="1399999999",
        )
        acct = s.get(Account, first.account_id)
        # A rejected one and an issued one may sit beside a pending one.
        factories.application(
            s,
            applicant=Applicant.OFFICE,
            status=Status.ISSUED,
            now=now,
            acct=acct,
            office_number="1399999999",
        )
        factories.application(
            s,
            applicant=Applicant.OFFICE,
            status=Status.AWAITING_ISSUE_REQUEST,
            now=now,
            acct=acct,
            office_number="1399999999",
        )
        with pytest.raises(IntegrityError), s.begin_nested():
            factories.application(
                s,
                applicant=Applicant.OFFICE,
                status=Status.AWAITING_ISSUANCE,
                now=now,
                acct=acct,
                office_number="1399999999",
            )


def test_undo_rejection_refused_while_a_new_application_is_in_progress(  # type: ignore[no-untyped-def]
    database: Database, people: People, settings, profile, now, rng
) -> None:
    """Rejected, re-applied, then the old rejection undone: refused clearly, nothing changes."""
    first = _office_apply(database, people, settings, profile, now, rng)
    with tx(database) as s:
        applications.reject(s, party_of(people.staff), first, reason="記載誤り", now=now)
    second = _office_apply(database, people, settings, profile, now, rng)
    with tx(database) as s, pytest.raises(AlreadyExists) as info:
        applications.undo_rejection(s, party_of(people.admin), first, now=now)
    assert "処理中の別の申請" in info.value.message_ja
    with tx(database) as s:
        a, b = s.get(Application, first), s.get(Application, second)
        assert a is not None and b is not None
        assert a.status is Status.REJECTION_PENDING and b.status is Status.AWAITING_ISSUE_REQUEST


def test_an_agent_applies_for_several_offices(  # type: ignore[no-untyped-def]
    database: Database, people: People, settings, profile, now, rng
) -> None:
    """An agent has one application in progress per office, for as many offices as it serves;
    the office must be registered; an office cannot apply in another office's name."""
    from shomei.errors import NotFound

    with tx(database) as s:
        agent = s.get(Account, people.agent.id)
        assert agent is not None
        password = people.passwords[agent.user_id]
        made = [
            applications.apply(
                s,
                party_of(agent),
                settings=settings,
                profile=profile,
                now=now,
                rng=rng,
                issuance_password=password,
                for_office=office.office_number,
            )
            for office in (people.office_a, people.office_b)
        ]
        assert {a.office_number for a in made} == {
            people.office_a.office_number,
            people.office_b.office_number,
        }
        with pytest.raises(AlreadyExists):  # office A already has one in progress
            applications.apply(
                s,
                party_of(agent),
                settings=settings,
                profile=profile,
                now=now,
                rng=rng,
                issuance_password=password,
                for_office=people.office_a.office_number,
            )
        with pytest.raises(NotFound):
            applications.apply(
                s,
                party_of(agent),
                settings=settings,
                profile=profile,
                now=now,
                rng=rng,
                issuance_password=password,
                for_office="1999999999",
            )
        with pytest.raises(MalformedInput):
            applications.apply(
                s,
                party_of(agent),
                settings=settings,
                profile=profile,
                now=now,
                rng=rng,
                issuance_password=password,
            )
        office_b = s.get(Account, people.office_b.id)
        assert office_b is not None
        with pytest.raises(Refused):
            applications.apply(
                s,
                party_of(office_b),
                settings=settings,
                profile=profile,
                now=now,
                rng=rng,
                issuance_password=people.passwords[office_b.user_id],
                consent_fee_offset=True,
                for_office=people.office_a.office_number,
            )
