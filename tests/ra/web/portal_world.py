"""Offices, agents and issued certificates for the portal's tests, made through the services.

An office applies with its issuance password (the RA makes and wraps its key), staff register
the issue request, and :func:`issue` plays the dispatch and import jobs with a certificate
signed by the test PKI's issuing CA (:mod:`tests.pki`), so a download holds a real key, a real
certificate and the real chain.  Both the client tests and the browser tests use it.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from sqlalchemy.orm import Session, sessionmaker

from contract.profile import Profile
from ra import lifecycle
from ra.lifecycle import Actor, Event
from ra.party import Party, party_of
from ra.people import accounts
from ra.people.accounts import AccountInput
from ra.people.passwords import hash_password
from ra.settings import RASettings
from ra.store.models import Account, AccountKind, Application, Certificate
from ra.workflow import applications
from tests.pki import Pki
from tests.ra.conftest import VAULT
from tests.ra.web.helpers import first_sign_in_finished

LOGIN = "Portal-pass-1"  # the test accounts' login password
_numbers = itertools.count(1)


@dataclass(frozen=True)
class Holder:
    """An office or agent of the portal: its login and its issuance password."""

    id: int
    user_id: str
    password: str
    issuance_password: str
    number: str
    name: str
    kind: AccountKind


def add_holder(
    factory: sessionmaker[Session],
    now: dt.datetime,
    *,
    kind: AccountKind = AccountKind.OFFICE,
    name: str | None = None,
    number: str | None = None,
) -> Holder:
    """A portal account made as staff make one (user ID, issuance password), able to sign in."""
    n = next(_numbers)
    number = number or f"{(1390000000 if kind is AccountKind.OFFICE else 9890000000) + n:010d}"
    name = name or (
        f"証明ケアサービス 第{n}事業所" if kind is AccountKind.OFFICE else f"請求代行{n}"
    )
    with factory() as s, s.begin():
        made = accounts.add_portal_account(
            s,
            Party.operator("test"),
            AccountInput(
                kind=kind,
                number=number,
                name=name,
                address="東京都新宿区西新宿2-8-1",
                phone="03-5321-1111",
                email=f"{number}@example.jp",
            ),
            now=now,
        )
        made.account.password_hash = hash_password(LOGIN)
        first_sign_in_finished(made.account, now)  # the portal opens at once
        assert made.issuance_password is not None
        return Holder(
            made.account.id,
            made.user_id,
            LOGIN,
            made.issuance_password,
            number,
            name,
            kind,
        )


def issue(session: Session, app: Application, pki: Pki, now: dt.datetime, days: int) -> None:
    """Play the dispatch and import jobs: 3 → 4 → 5, certificate valid for ``days`` days."""
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
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, app.office_number),
                    x509.NameAttribute(NameOID.COMMON_NAME, app.office_name),
                ]
            )
        )
        .issuer_name(issuing.subject)
        .public_key(csr.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
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


def staff_party(factory: sessionmaker[Session], now: dt.datetime) -> Party:
    """A member of staff (a console account) to approve applications."""
    with factory() as s, s.begin():
        made = accounts.add_console_user(
            s,
            Party.operator("test"),
            kind=AccountKind.STAFF,
            name="連合 太郎",
            email=f"staff{next(_numbers)}@federation.example",
            now=now,
            vault=VAULT,
        )
        return party_of(made.account)


def apply(
    factory: sessionmaker[Session],
    holder: Holder,
    now: dt.datetime,
    *,
    settings: RASettings,
    profile: Profile,
    for_office: str | None = None,
    csr: bytes | None = None,
) -> int:
    """The holder applies (A1); the application's id."""
    with factory() as s, s.begin():
        account = s.get(Account, holder.id)
        assert account is not None
        app = applications.apply(
            s,
            party_of(account),
            settings=settings,
            profile=profile,
            now=now,
            issuance_password=holder.issuance_password,
            consent_fee_offset=holder.kind is AccountKind.OFFICE,
            for_office=for_office,
            csr=csr,
        )
        return app.id


def issued(
    factory: sessionmaker[Session],
    holder: Holder,
    now: dt.datetime,
    pki: Pki,
    *,
    settings: RASettings,
    profile: Profile,
    for_office: str | None = None,
    csr: bytes | None = None,
    days: int = 1095,
    staff: Party | None = None,
) -> int:
    """An application of ``holder`` taken to 発行済み with a certificate of the test PKI."""
    app_id = apply(
        factory, holder, now, settings=settings, profile=profile, for_office=for_office, csr=csr
    )
    staff = staff or staff_party(factory, now)
    with factory() as s, s.begin():
        app = s.get(Application, app_id)
        assert app is not None
        if app.applicant.value == "office":
            applications.register_issue_request(s, staff, app_id, now=now)
        else:
            applications.register_payment(
                s,
                staff,
                app_id,
                paid_on=now.date(),
                amount_yen=app.fee_yen,
                payer_name=holder.user_id,
                now=now,
            )
    with factory() as s, s.begin():
        app = s.get(Application, app_id)
        assert app is not None
        issue(s, app, pki, now, days)
    return app_id


def chain_files(pki: Pki, folder: Path) -> tuple[Path, Path]:
    """The issuing CA and root certificates as PEM files (``ca_certificate``, ``ca_chain``)."""
    folder.mkdir(parents=True, exist_ok=True)
    issuing, root = folder / "issuing.pem", folder / "root.pem"
    issuing.write_bytes(pki.cert_pem("issuing"))
    root.write_bytes(pki.cert_pem("root"))
    return issuing, root
