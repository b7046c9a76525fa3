"""CRL registration in the RA (A6/B10): verify, store, publish, and move 失効待ち to 失効済み.

A CRL reaches the RA inside a result batch (B10) or as a file an operator uploads (A6,
:func:`register_crl_file`).  :func:`register_crl` checks it with :func:`crl.reader.load_crl`
(DER structure, issuer name and key identifier, signature by the issuing CA, RFC 5280 §5.1
and §5.2), then requires its cRLNumber (§5.2.3, "monotonically increasing") to be greater
than the last one registered for that issuer: the same CRL again is a no-op, an older or
equal number with other contents is refused.  The CRL is stored (:class:`ra.store.models.CrlRecord`)
and, in the same transaction, exactly the applications in 失効待ち (7) whose serial it lists
move to 失効済み (8) through :func:`ra.lifecycle.apply` (REGISTER_CRL), with the revocation
date of the CRL entry on their certificate.  Nothing else changes status here.

A revocation is never lost (:func:`missing_revocations`): a CRL that leaves out a serial the
RA knows was revoked is refused (:class:`LostRevocation`, nothing registered or published),
unless the certificate had expired by the CRL's thisUpdate (RFC 5280 §3.3 lets the CA drop
it then).  The RA knows a serial was revoked when the certificate's application is 失効済み or
a registered CRL confirmed it (its ``revoked_at``), and when the last CRL registered for the
issuer listed a certificate the RA holds.  Such a CRL comes from a CA whose ledger is older
than what it revoked (docs/ca-operator-guide.md, "Backing up and restoring the CA").

Publishing (:func:`publish`) puts the DER at ``data_dir/publish/<name>``, where ``name`` is
the last path segment of the CRL distribution point URL (RFC 5280 §4.2.1.13) of the
certificates the CA issued, so a web server serving that folder answers the URL the
certificates carry.  The file is replaced atomically (temporary file, fsync, rename), and
never by an older CRL.  It is done after the commit; registering the same CRL again
publishes it again if a crash came in between.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crl.index import some_serials as some
from crl.reader import LoadedCrl, load_crl
from ra import lifecycle
from ra.lifecycle import Event, Status
from ra.mailing import texts
from ra.mailing.notify import notify
from ra.party import Party
from ra.settings import RASettings
from ra.store.models import Account, Application, Certificate, CrlRecord
from shomei.errors import Conflict, MalformedInput, ShomeiError, VerificationFailed
from shomei.files import read_bytes, replace_file

ACTOR_ID = "crl-registration"
# The party the audit log names for this work (ra.party: system / ACTOR_ID).
JOB = Party.job(ACTOR_ID)
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")
MAX_CRL_BYTES = 512 * 1024 * 1024


class LostRevocation(VerificationFailed):
    """A CRL leaves out serials the RA knows were revoked and have not expired (exit 1).

    ``fields["serials"]`` holds the missing serials (hex).
    """

    code = "crl_lost_revocation"


@dataclass(frozen=True)
class CrlRegistration:
    """What :func:`register_crl` did."""

    number: int
    sha256: str
    entries: int
    registered: bool  # False: this very CRL was registered before (no-op)
    revoked: tuple[int, ...]  # application ids moved 7 -> 8
    skipped_older: bool = False  # an older CRL met while importing a result (not registered)


def issuer_digest(certificate: x509.Certificate) -> str:
    """The key CRLs are numbered under: SHA-256 of the issuer name (RFC 5280 §5.1.2.3)."""
    return hashlib.sha256(certificate.subject.public_bytes()).hexdigest()


def last_number(session: Session, issuer_sha256: str) -> int | None:
    """The highest cRLNumber registered for the issuer, or None before the first CRL."""
    numbers = session.execute(
        select(CrlRecord.number).where(CrlRecord.issuer_sha256 == issuer_sha256)
    ).scalars()
    return max((int(n) for n in numbers), default=None)


def register_crl(
    session: Session,
    data: bytes,
    *,
    ca_certificate: x509.Certificate,
    now: dt.datetime,
    older: str = "refuse",
    settings: RASettings | None = None,
) -> CrlRegistration:
    """Verify and register the CRL ``data`` (DER or PEM) in ``session``'s transaction.

    With ``settings``, each holder whose certificate the CRL revokes gets the 失効 notice and
    its mail (:mod:`ra.mailing.texts`) in the same transaction; every path of the product
    passes them (tests of the CRL alone may leave them out).

    ``older="skip"`` (used by the result import) returns ``skipped_older=True`` for a CRL
    whose number is not greater than the last one instead of refusing it.  Raises
    :class:`MalformedInput` (not a CRL, no cRLNumber), :class:`VerificationFailed` (not signed
    by ``ca_certificate``, another issuer) and :class:`Refused` (number going backwards); in
    every case nothing was written.
    """
    if len(data) > MAX_CRL_BYTES:
        raise MalformedInput(
            f"the CRL is {len(data)} bytes, over the limit of {MAX_CRL_BYTES}",
            message_ja=f"CRL が大きすぎます({len(data)} バイト)",
        )
    loaded = load_crl(data, issuer=ca_certificate)
    if loaded.number is None:
        raise MalformedInput(
            "the CRL has no cRLNumber (RFC 5280 §5.2.3 requires one)",
            message_ja="CRL に CRL 番号がありません",
        )
    sha256 = loaded.sha256.hex()
    issuer = issuer_digest(ca_certificate)
    known = session.execute(
        select(CrlRecord).where(CrlRecord.sha256 == sha256)
    ).scalar_one_or_none()
    if known is not None:
        return CrlRegistration(loaded.number, sha256, known.entries, False, ())
    last = last_number(session, issuer)
    if last is not None and loaded.number <= last:
        if older == "skip":
            return CrlRegistration(loaded.number, sha256, len(loaded.index), False, (), True)
        raise Conflict(
            f"CRL number {loaded.number} is not greater than the last registered CRL number "
            f"{last}; an older CRL is never registered",
            message_ja=f"CRL 番号 {loaded.number} は登録済みの最新番号 {last} 以下です。"
            "古い CRL は登録できません",
            number=loaded.number,
            last=last,
        )
    missing = missing_revocations(session, loaded, ca_certificate=ca_certificate)
    if missing:
        raise LostRevocation(
            f"CRL number {loaded.number} leaves out {len(missing)} revoked serial(s) whose "
            f"certificates have not expired ({some(missing)}); it is neither registered nor "
            "published: the CA must restore its newest ledger backup and issue a new CRL",
            message_ja=f"CRL 番号 {loaded.number} には失効済みで有効期限内の {len(missing)} 件"
            f"({some(missing)})が載っていません。登録も公開もしません。CA は最新の台帳"
            "バックアップを復元して CRL を発行し直してください",
            number=loaded.number,
            serials=[format(s, "x") for s in missing],
        )
    der = _der(data)
    session.add(
        CrlRecord(
            issuer_sha256=issuer,
            number=str(loaded.number),
            this_update=loaded.this_update,
            next_update=loaded.next_update,
            der=der,
            sha256=sha256,
            entries=len(loaded.index),
            registered_at=now,
        )
    )
    session.flush()
    revoked = _revoke_listed(session, loaded, now=now, settings=settings)
    return CrlRegistration(loaded.number, sha256, len(loaded.index), True, tuple(revoked))


def missing_revocations(
    session: Session, loaded: LoadedCrl, *, ca_certificate: x509.Certificate
) -> list[int]:
    """The serials ``loaded`` should list but does not (see the module docstring), sorted."""
    unexpired = Certificate.not_after > loaded.this_update
    known = session.execute(
        select(Certificate.serial_hex, Certificate.der)
        .join(Application, Application.id == Certificate.application_id)
        .where(unexpired)
        .where(Certificate.revoked_at.is_not(None) | (Application.status == Status.REVOKED))
    ).all()
    required = {int(h, 16) for h, der in known if _issued_by(der, ca_certificate)}
    previous = _last_registered(session, issuer_digest(ca_certificate))
    if previous is not None:
        try:
            listed = load_crl(previous, issuer=ca_certificate).index
        except ShomeiError:
            listed = None  # signed by an earlier key under the same name: not this CA's list
        if listed is not None:
            held = session.execute(select(Certificate.serial_hex).where(unexpired)).scalars()
            required.update(s for s in (int(h, 16) for h in held) if s in listed)
    return sorted(serial for serial in required if serial not in loaded.index)


def _issued_by(der: bytes, ca_certificate: x509.Certificate) -> bool:
    """Whether the certificate ``der`` was issued by ``ca_certificate`` (name and key id).

    A row that cannot be read counts as this CA's: a revocation is never dropped on a doubt.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
        if cert.issuer != ca_certificate.subject:
            return False
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        ski = ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return True
    except ValueError:
        return True
    return aki.key_identifier is None or aki.key_identifier == ski.value.digest


def _last_registered(session: Session, issuer_sha256: str) -> bytes | None:
    rows = session.execute(
        select(CrlRecord.number, CrlRecord.id).where(CrlRecord.issuer_sha256 == issuer_sha256)
    ).all()
    if not rows:
        return None
    _, best = max((int(n), i) for n, i in rows)
    return session.execute(select(CrlRecord.der).where(CrlRecord.id == best)).scalar_one()


def _der(data: bytes) -> bytes:
    if data[:1] == b"\x30":
        return data
    return x509.load_pem_x509_crl(data).public_bytes(Encoding.DER)


def _revoke_listed(
    session: Session, loaded: LoadedCrl, *, now: dt.datetime, settings: RASettings | None
) -> list[int]:
    rows = session.execute(
        select(Application, Certificate)
        .join(Certificate, Certificate.application_id == Application.id)
        .where(Application.status == Status.AWAITING_REVOCATION)
        .order_by(Application.id)
    ).all()
    moved: list[int] = []
    for app, cert in rows:
        entry = loaded.index.lookup(int(cert.serial_hex, 16))
        if entry is None:
            continue  # not yet on this CRL: stays 失効待ち
        lifecycle.apply(
            session,
            app,
            Event.REGISTER_CRL,
            actor=JOB.actor,
            actor_id=JOB.audit_id,
            now=now,
            details={"crl_number": str(loaded.number), "serial": cert.serial_hex},
        )
        cert.revoked_at = entry.revoked_at
        cert.revocation_crl_number = str(loaded.number)
        moved.append(app.id)
        if settings is not None:
            _tell_holder(session, app, cert, settings, now=now)
    session.flush()
    return moved


def _tell_holder(
    session: Session, app: Application, cert: Certificate, settings: RASettings, *, now: dt.datetime
) -> None:
    account = session.get(Account, app.account_id)
    assert account is not None
    text = texts.certificate_revoked(
        name=account.name,
        application_id=app.id,
        serial_hex=cert.serial_hex,
        revoked_at=cert.revoked_at or now,
    )
    notify(
        session,
        account,
        kind="certificate_revoked",
        title=text.title,
        body=text.body,
        now=now,
        message_id_domain=settings.mail.message_id_domain,
        application_id=app.id,
        footer=texts.signature(settings),
    )


# -- publishing ------------------------------------------------------------------------------


def publish_name(session: Session, issuer_sha256: str) -> str:
    """The file name of the CRL distribution point URL of the newest issued certificate.

    Before any certificate was issued there is no URL to follow; the CRL is then published
    as ``<first 16 hex digits of the issuer hash>.crl``.
    """
    ders = session.execute(
        select(Certificate.der).order_by(Certificate.id.desc()).limit(20)
    ).scalars()
    for der in ders:
        try:
            name = _cdp_name(x509.load_der_x509_certificate(der))
        except ValueError:
            continue  # not a certificate we can read: look at the next one
        if name is not None:
            return name
    return f"{issuer_sha256[:16]}.crl"


def _cdp_name(certificate: x509.Certificate) -> str | None:
    try:
        cdp = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return None
    for point in cdp:
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier):
                last = urlparse(name.value).path.rsplit("/", 1)[-1]
                if _SAFE_NAME.fullmatch(last):
                    return last
    return None


def publish(
    data_dir: Path, name: str, der: bytes, *, ca_certificate: x509.Certificate
) -> Path | None:
    """Atomically put ``der`` at ``data_dir/publish/name`` unless a newer CRL is there.

    Returns the path, or None when the published CRL already has this or a higher number.
    """
    if not _SAFE_NAME.fullmatch(name):
        raise MalformedInput(
            f"not a safe file name for a CRL: {name!r}",
            message_ja=f"CRL のファイル名として使えません: {name!r}",
        )
    folder = data_dir / "publish"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    new = load_crl(der, issuer=ca_certificate)
    if target.exists():
        try:
            current = load_crl(target.read_bytes(), issuer=ca_certificate)
        except ShomeiError:
            current = None  # a damaged or foreign file is replaced
        if current is not None and current.sha256 == new.sha256:
            return None
        if current is not None and (current.number or 0) > (new.number or 0):
            return None
    replace_file(target, der)
    return target


def publish_latest(
    factory: sessionmaker[Session], settings: RASettings, *, ca_certificate: x509.Certificate
) -> Path | None:
    """Publish the highest-numbered registered CRL of the issuer (after a commit)."""
    issuer = issuer_digest(ca_certificate)
    with factory() as session:
        der = _last_registered(session, issuer)
        if der is None:
            return None
        name = publish_name(session, issuer)
    publish_ca_certificate(settings, ca_certificate)
    return publish(settings.data_dir, name, der, ca_certificate=ca_certificate)


def publish_ca_certificate(settings: RASettings, ca_certificate: x509.Certificate) -> list[Path]:
    """Put the issuing CA certificate (DER) in ``data_dir/publish`` under the last path segment
    of each profile's caIssuers URL, beside the CRL, so a plain web server serving that folder
    answers every URL the certificates carry.  Written only when missing or different."""
    der = ca_certificate.public_bytes(Encoding.DER)
    folder = settings.data_dir / "publish"
    written: list[Path] = []
    for profile in settings.profiles:
        name = urlparse(profile.extensions.ca_issuers).path.rsplit("/", 1)[-1]
        if not _SAFE_NAME.fullmatch(name):
            continue  # no file name a web server could answer the URL with
        target = folder / name
        if target.is_file() and target.read_bytes() == der:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        replace_file(target, der)
        written.append(target)
    return written


def register_crl_file(
    factory: sessionmaker[Session],
    settings: RASettings,
    path: Path,
    *,
    now: dt.datetime,
) -> CrlRegistration:
    """A6: register a CRL file an operator uploads by hand (``shomei ra register-crl``)."""
    from ra.ca_link.identity import load_ca_certificate

    ca_certificate = load_ca_certificate(settings.link)
    data = read_bytes(path, what="CRL file", what_ja="CRL ファイル")
    with factory() as session, session.begin():
        result = register_crl(
            session, data, ca_certificate=ca_certificate, now=now, settings=settings
        )
    publish_latest(factory, settings, ca_certificate=ca_certificate)
    return result
