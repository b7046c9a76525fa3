"""What the federation's other systems read through the JSON API (``/api/v1``).

The claims reception system asks about one application (with its history, from the audit
log: :func:`ra.workflow.history.application_history`), one certificate by its serial number
(its validity and whether a registered CRL revoked it) and the RA's current CRL (the newest
registered one, :func:`ra.ca_link.publication.current_crl`).  The list of applications is the
console's own search (:func:`ra.desk.queries.list_applications`, keyset paging).  Every
function checks the acting party first (:mod:`ra.party`); the values returned are frozen, for
the web edge to render.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.ca_link.identity import load_ca_certificate
from ra.ca_link.publication import current_crl
from ra.desk.queries import ListRow, row_of
from ra.lifecycle import Status
from ra.party import Party, Permission, application_for, require
from ra.settings import RASettings
from ra.store.models import Application, Certificate, CrlRecord
from ra.workflow.history import HistoryEntry, application_history
from shomei.errors import ConfigError, MalformedInput, NotFound, StateError

_SERIAL = re.compile(r"(?:0x)?([0-9a-fA-F]{1,40})")

CertificateState = Literal["valid", "not_yet_valid", "expired", "revoked"]


@dataclass(frozen=True)
class ApplicationRecord:
    """One application as the list shows it, its certificate's serial and its history."""

    row: ListRow
    certificate_serial: str | None
    revocation_reason: str | None
    history: tuple[HistoryEntry, ...]


def application_record(session: Session, party: Party, application_id: int) -> ApplicationRecord:
    """The application ``application_id`` with its whole history (NotFound if none)."""
    app = application_for(session, party, application_id)
    history = application_history(session, party, application_id)
    row = row_of(session, app.id)
    if row is None:  # application_for found it in this transaction
        raise NotFound(
            f"no application {application_id}",
            message_ja=f"申請 {application_id} は見つかりません",
            application=application_id,
        )
    cert = session.execute(
        select(Certificate.serial_hex).where(Certificate.application_id == app.id)
    ).scalar_one_or_none()
    return ApplicationRecord(row, cert, app.revocation_reason, history)


@dataclass(frozen=True)
class CertificateRecord:
    """A certificate the CA issued, as the RA knows it now."""

    serial: str  # lowercase hex, no leading zeros (as the RA stores it)
    application_id: int
    office_number: str
    office_name: str
    application_status: Status
    state: CertificateState
    not_before: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None  # the revocation date of the CRL entry
    revocation_crl_number: str | None
    revocation_reason: str | None  # the RFC 5280 reason the federation registered
    pem: str


def normalize_serial(serial: str) -> str:
    """A serial number as hex (``0x``, colons, spaces and case forgiven), or MalformedInput."""
    text = (serial or "").replace(":", "").replace(" ", "").strip()
    match = _SERIAL.fullmatch(text)
    if match is None:
        raise MalformedInput(
            f"not a certificate serial number in hex: {serial[:50]!r}",
            message_ja="証明書のシリアル番号(16 進数)として読めません",
            field="serial",
        )
    return format(int(match.group(1), 16), "x")


def certificate_by_serial(
    session: Session, party: Party, serial: str, *, now: dt.datetime
) -> CertificateRecord:
    """The certificate with ``serial`` (hex): its validity now and its revocation."""
    require(party, Permission.VIEW_ALL_APPLICATIONS)
    wanted = normalize_serial(serial)
    found = session.execute(
        select(Certificate, Application)
        .join(Application, Application.id == Certificate.application_id)
        .where(Certificate.serial_hex == wanted)
    ).first()
    if found is None:
        raise NotFound(
            f"no certificate with serial {wanted}",
            message_ja=f"シリアル番号 {wanted} の証明書はありません",
            serial=wanted,
        )
    cert, app = found
    state: CertificateState
    if cert.revoked_at is not None:
        state = "revoked"
    elif now < cert.not_before:
        state = "not_yet_valid"
    elif now > cert.not_after:
        state = "expired"
    else:
        state = "valid"
    pem = x509.load_der_x509_certificate(cert.der).public_bytes(Encoding.PEM).decode("ascii")
    return CertificateRecord(
        serial=cert.serial_hex,
        application_id=app.id,
        office_number=app.office_number,
        office_name=app.office_name,
        application_status=app.status,
        state=state,
        not_before=cert.not_before,
        not_after=cert.not_after,
        revoked_at=cert.revoked_at,
        revocation_crl_number=cert.revocation_crl_number,
        revocation_reason=app.revocation_reason,
        pem=pem,
    )


@dataclass(frozen=True)
class CrlInfo:
    """The RA's current CRL: the newest one registered for the issuing CA."""

    number: str
    issuer: str
    this_update: dt.datetime
    next_update: dt.datetime | None
    entries: int
    sha256: str
    registered_at: dt.datetime
    current: bool  # nextUpdate has not passed


def current_crl_info(
    session: Session, party: Party, settings: RASettings, *, now: dt.datetime
) -> CrlInfo:
    """Metadata of the current CRL (any API scope may read it); NotFound before the first."""
    require(
        party, Permission.VIEW_ALL_APPLICATIONS, Permission.VERIFY_CLAIMS, Permission.REGISTER_CRL
    )
    try:
        ca = load_ca_certificate(settings.link)
    except ConfigError as exc:
        raise StateError(
            f"the issuing CA certificate is not available: {exc.message}",
            message_ja=f"発行 CA 証明書を読めません: {exc.message_ja}",
        ) from exc
    published = current_crl(session, ca)
    record = (
        session.execute(
            select(CrlRecord).where(CrlRecord.sha256 == published.etag)
        ).scalar_one_or_none()
        if published is not None
        else None
    )
    if record is None:
        raise NotFound(
            "no CRL has been registered yet",
            message_ja="失効リスト(CRL)はまだ登録されていません",
        )
    return CrlInfo(
        number=record.number,
        issuer=ca.subject.rfc4514_string(),
        this_update=record.this_update,
        next_update=record.next_update,
        entries=record.entries,
        sha256=record.sha256,
        registered_at=record.registered_at,
        current=record.next_update is None or now < record.next_update,
    )
