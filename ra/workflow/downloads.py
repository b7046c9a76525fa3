"""Downloads of an issued certificate (A5, docs/product.md §7): the PKCS#12 or the certificate.

Only the owner (the office or agent whose application it is) downloads, only in status
発行済み.  The PKCS#12 needs the issuance password, which both unwraps the key the RA kept
(:mod:`ra.crypto.keys`) and protects the file (:mod:`ra.crypto.pkcs12`) in its printed form (upper
case with
hyphens, :mod:`shomei.issuance`), whatever way it was typed: installers (Windows, macOS,
Firefox, openssl) need exactly that form, so the page that offers the download shows it and
says so, as docs/office-guide.md does.  An office that brought its own CSR
holds its key already and downloads the certificate with its chain.  Each download is audited
in the caller's transaction; a wrong password raises before anything is recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy.orm import Session

from ra import lifecycle
from ra.crypto import keys, pkcs12
from ra.lifecycle import Status
from ra.party import Party, Permission, account_of, application_for, require
from ra.people.passwords import WrongPassword, check_issuance_password
from ra.store import audit
from ra.store.models import Application
from shomei.errors import Conflict


def _issued(session: Session, party: Party, application_id: int) -> Application:
    # Only the office or agent that applied: staff have no DOWNLOAD, and application_for
    # gives an office or agent its own applications only.
    require(party, Permission.DOWNLOAD)
    app = application_for(session, party, application_id)
    if app.status is not Status.ISSUED or app.certificate is None:
        raise Conflict(
            "the certificate can be downloaded only once issued "
            f"(now: {lifecycle.LABELS_EN[app.status]})",
            message_ja="発行済みの証明書のみダウンロードできます"
            f"(現在: {lifecycle.LABELS_JA[app.status]})",
            application=app.id,
        )
    return app


def download_pkcs12(
    session: Session,
    party: Party,
    application_id: int,
    *,
    issuance_password: str,
    chain: Sequence[x509.Certificate],
    now: dt.datetime,
    encryption: pkcs12.Encryption = "aes",
    source_address: str | None = None,
) -> bytes:
    """The PKCS#12 of an issued certificate (A5), under the issuance password.

    Only the owner, only in status 発行済み, only with the issuance password, and only when
    the RA generated the key (an office that brought its CSR holds its key already).  The
    download is audited; a wrong password raises :class:`WrongPassword` and records nothing.
    """
    app = _issued(session, party, application_id)
    if app.wrapped_key is None:
        raise Conflict(
            "this application used the office's own CSR, so the RA holds no key to put in a "
            "PKCS#12; download the certificate instead",
            message_ja="自社で作成した CSR による申請のため、PKCS#12 は作成できません。"
            "証明書のみをダウンロードしてください",
            application=app.id,
        )
    canonical = check_issuance_password(
        account_of(session, party).issuance_password_hash, issuance_password
    )
    try:
        key = keys.unwrap_key(app.wrapped_key, canonical)
    except WrongPassword as exc:
        raise WrongPassword(
            "the key of this application was protected with the issuance password valid when "
            "you applied (before it was reissued); use that password or apply again",
            message_ja="この申請の鍵は申請時の証明書発行用パスワード(再発行前)で保護されています。"
            "そのパスワードを使うか、再度お申し込みください",
            application=app.id,
        ) from exc
    assert app.certificate is not None  # checked by _issued
    certificate = x509.load_der_x509_certificate(app.certificate.der)
    data = pkcs12.build(
        key=key,
        certificate=certificate,
        chain=chain,
        password=canonical,
        friendly_name=app.office_name,
        encryption=encryption,
    )
    _audit_download(session, party, app, "download_pkcs12", now, source_address, encryption)
    return data


def download_certificate(
    session: Session,
    party: Party,
    application_id: int,
    *,
    chain: Sequence[x509.Certificate],
    now: dt.datetime,
    source_address: str | None = None,
) -> bytes:
    """The issued certificate and its chain as PEM (for an office that brought its CSR)."""
    app = _issued(session, party, application_id)
    assert app.certificate is not None
    pem = x509.load_der_x509_certificate(app.certificate.der).public_bytes(
        serialization.Encoding.PEM
    )
    pem += b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    _audit_download(session, party, app, "download_certificate", now, source_address, None)
    return pem


def _audit_download(
    session: Session,
    party: Party,
    app: Application,
    action: str,
    now: dt.datetime,
    source_address: str | None,
    encryption: str | None,
) -> None:
    audit.record(
        session,
        actor=party.actor.value,
        actor_id=party.audit_id,
        action=action,
        object_type="application",
        object_id=str(app.id),
        status_before=app.status.value,
        status_after=app.status.value,
        now=now,
        source_address=source_address,
        details={
            "serial": app.certificate.serial_hex if app.certificate else None,
            "encryption": encryption,
        },
    )
