"""Downloads of an issued certificate (A5, docs/product.md §7): the PKCS#12 or the certificate.

Only the owner (the office or agent whose application it is) downloads, only in status
発行済み.  The PKCS#12 needs the issuance password, which both unwraps the key the RA kept
(:mod:`ra.crypto.keys`) and protects the file (:mod:`ra.crypto.pkcs12`) in its printed form (upper
case with
hyphens, :mod:`shomei.issuance`), whatever way it was typed: installers (Windows, macOS,
Firefox, openssl) need exactly that form, so the page that offers the download shows it and
says so, as docs/office-guide.md does.  An office that brought its own CSR
holds its key already and downloads the certificate with its chain, as PEM or as a PKCS#7
``.p7b`` (what Windows imports).  Each download is audited in the caller's transaction; a wrong
password raises before anything is recorded.

A certificate that is revoked, on its way to revocation, or past its expiry is never handed
out: :class:`CertificateUnavailable` (a :class:`~shomei.errors.Conflict`) says why in one line.
:func:`download_names` gives the file's name twice: the office's own (Japanese) name for
browsers that read RFC 6266/5987 ``filename*``, and an ASCII one for those that do not, both
free of the characters Windows and macOS refuse in a file name.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from sqlalchemy.orm import Session

from ra import lifecycle
from ra.crypto import keys, pkcs12
from ra.lifecycle import Status
from ra.party import Party, Permission, account_of, application_for, require
from ra.people.passwords import WrongPassword, check_issuance_password, normalize
from ra.store import audit
from ra.store.models import Application
from shomei.clock import to_japan
from shomei.errors import Conflict, MalformedInput

FORMATS = ("pem", "p7b")  # the certificate alone: PEM, or a certs-only PKCS#7 (.p7b)

# Statuses in which the certificate is revoked or being revoked: never handed out again.
REVOKING = frozenset({Status.REVOCATION_REQUESTED, Status.AWAITING_REVOCATION, Status.REVOKED})


class CertificateUnavailable(Conflict):
    """The certificate cannot be downloaded: not issued (yet), revoked, or expired."""

    code = "certificate_unavailable"


def unavailable(app: Application, now: dt.datetime) -> CertificateUnavailable | None:
    """Why ``app``'s certificate cannot be downloaded now, or None when it can.

    The one rule of A5 (the download page shows the same line the download would raise).
    """
    status = Status(app.status)
    if status in REVOKING:
        done = status is Status.REVOKED
        return CertificateUnavailable(
            "this certificate has been revoked, so it can no longer be downloaded"
            if done
            else "this certificate is being revoked, so it can no longer be downloaded",
            message_ja="この証明書は失効しているため、ダウンロードできません"
            if done
            else "この証明書は失効の手続き中のため、ダウンロードできません",
            application=app.id,
        )
    if status is not Status.ISSUED or app.certificate is None:
        return CertificateUnavailable(
            "the certificate can be downloaded only once issued "
            f"(now: {lifecycle.LABELS_EN[status]})",
            message_ja="証明書は発行されてからダウンロードできます"
            f"(現在の状況: {lifecycle.LABELS_JA[status]})",
            application=app.id,
        )
    if app.certificate.not_after <= now:
        until = to_japan(app.certificate.not_after)
        return CertificateUnavailable(
            f"this certificate expired on {until:%Y-%m-%d}, so it can no longer be downloaded; "
            "apply for a new certificate",
            message_ja=f"この証明書は有効期限({until:%Y/%m/%d})が過ぎているため、"
            "ダウンロードできません。新しい証明書をお申し込みください",
            application=app.id,
        )
    return None


def _issued(session: Session, party: Party, application_id: int, now: dt.datetime) -> Application:
    # Only the office or agent that applied: staff have no DOWNLOAD, and application_for
    # gives an office or agent its own applications only.
    require(party, Permission.DOWNLOAD)
    app = application_for(session, party, application_id)
    refused = unavailable(app, now)
    if refused is not None:
        raise refused
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
    app = _issued(session, party, application_id, now)
    account = account_of(session, party)  # a disabled account downloads nothing
    if app.wrapped_key is None:
        raise Conflict(
            "this application used the office's own CSR, so the RA holds no key to put in a "
            "PKCS#12; download the certificate instead",
            message_ja="自社で作成した CSR による申請のため、PKCS#12 は作成できません。"
            "証明書のみをダウンロードしてください",
            application=app.id,
        )
    # The key was wrapped under the issuance password valid when the office applied, and
    # opening it is the password check: after a reissue (A7) the password of the letter the
    # office applied with still opens it, as docs/office-guide.md §1 says.
    canonical = normalize(issuance_password)
    try:
        key = keys.unwrap_key(app.wrapped_key, canonical)
    except WrongPassword as exc:
        try:
            check_issuance_password(account.issuance_password_hash, issuance_password)
        except WrongPassword:
            raise WrongPassword(
                "the issuance password is not correct",
                message_ja="証明書発行用パスワードが正しくありません",
                application=app.id,
            ) from exc
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
    form: str = "pem",
    source_address: str | None = None,
) -> bytes:
    """The issued certificate and its chain (for an office that brought its CSR).

    ``form`` ``"pem"``: the certificate then the CA certificates, PEM; ``"p7b"``: the same
    as a certs-only PKCS#7 (DER), which Windows' certificate import reads.
    """
    app = _issued(session, party, application_id, now)
    if form not in FORMATS:
        raise MalformedInput(
            f"unknown certificate format {form[:20]!r} (use pem or p7b)",
            message_ja="証明書の形式は PEM か P7B を選んでください",
            column="format",
        )
    assert app.certificate is not None
    certificates = [x509.load_der_x509_certificate(app.certificate.der), *chain]
    if form == "pem":
        data = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)
    else:
        data = pkcs7.serialize_certificates(certificates, serialization.Encoding.DER)
    _audit_download(
        session, party, app, "download_certificate", now, source_address, None, form=form
    )
    return data


# Characters Windows refuses in a file name (':' and '/' macOS refuses too) and control
# characters; each becomes "_".  (Windows' reserved names, CON and the like, cannot occur:
# the office number and the application number always follow the name.)
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]')
_ASCII_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
NAME_LIMIT = 80  # characters of the office name kept in a file name


def file_names(session: Session, party: Party, application_id: int, suffix: str) -> tuple[str, str]:
    """:func:`download_names` of ``party``'s application ``application_id``."""
    return download_names(application_for(session, party, application_id), suffix)


def download_names(app: Application, suffix: str) -> tuple[str, str]:
    """The download's file name: (the office's own name, an ASCII fallback).

    ``証明ケアサービス_1310000001_12.p12`` and ``shomei-1310000001-12.p12``: both name the
    office number and the application, so two downloads never overwrite each other, and
    neither holds a character Windows or macOS refuses (nor ends with a dot or a space).
    """
    name = unicodedata.normalize("NFC", app.office_name or "")
    name = _UNSAFE.sub("_", name).strip(" .")[:NAME_LIMIT].strip(" .")
    number = _ASCII_SAFE.sub("", app.office_number or "") or "office"
    ascii_name = f"shomei-{number}-{app.id}.{suffix}"
    own = f"{name}_{number}_{app.id}.{suffix}" if name else ascii_name
    return own, ascii_name


def _audit_download(
    session: Session,
    party: Party,
    app: Application,
    action: str,
    now: dt.datetime,
    source_address: str | None,
    encryption: str | None,
    *,
    form: str | None = None,
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
            **({"format": form} if form else {}),
        },
    )
