"""Importing the CA's result batches into the RA (docs/product.md §10: B9 certificates, B10 CRLs).

:func:`import_result` verifies a result batch against the issuing CA certificate
(:func:`contract.batch.read_result_batch`; every certificate and the CRL must carry the CA's
signature), checks that it answers a batch this RA sent (same batch id and request hash), and
applies it in ONE transaction: Issued → a :class:`~ra.store.models.Certificate` row,
REGISTER_CERTIFICATE (4→5) and the notice and mail 「証明書が発行されました」; IssueRefused →
CA_REFUSED (4→9) with the CA's reason; Revoked → nothing yet (7 stays until a CRL lists it);
Abandoned (the CA abandoned the batch before signing the request) → an audit record, and the
application stays 発行待ち until an operator re-requests it (:mod:`ra.ca_link.recovery`); then the
batch's CRL is registered (:mod:`ra.ca_link.crls`) and the batch marked imported.  A CRL that would
lose a revocation (:class:`ra.ca_link.crls.LostRevocation`) is not registered and nothing is
published; the certificates and refusals of the batch are still imported (they are genuine, and
the offices wait for them), the refusal is audited and logged, and the summary says so
(``crl_refused``), so the job exits non-zero until the CA sends a CRL that lists every
revocation.  A crash
anywhere rolls all of it back, and importing the same result again is a no-op, so the end
state is the same however often and wherever it is interrupted.  :func:`import_inbox` does it
for every file the operator carried into the offline inbox.  Dispatch is :mod:`ra.ca_link.link`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from contract.batch import (
    Abandoned,
    Issued,
    IssueRefused,
    Revoked,
    RevokeRefused,
    read_result_batch,
)
from ra import lifecycle
from ra.ca_link import crls
from ra.ca_link.identity import load_ca_certificate
from ra.ca_link.stuck import Attention, left_out_attention
from ra.lifecycle import Event, Status
from ra.mailing import texts
from ra.mailing.notify import notify
from ra.party import Party
from ra.settings import RASettings
from ra.store import audit
from ra.store.models import Account, Application, CaBatch, Certificate
from shomei.errors import (
    ConfigError,
    Conflict,
    MalformedInput,
    NotFound,
    Refused,
    VerificationFailed,
)

log = logging.getLogger("shomei.ra.link")

ACTOR_ID = "ca-link"
# The party the audit log names for this work (ra.party: system / ACTOR_ID).
JOB = Party.job(ACTOR_ID)
_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class ImportSummary:
    batch_id: str
    already_imported: bool
    issued: int = 0
    refused: int = 0
    revoked: int = 0  # the CA revoked them; they move to 8 when a CRL lists them
    revoke_refused: int = 0
    abandoned: int = 0  # left at 発行待ち for ``shomei ra re-request``
    crl_number: int | None = None
    crl_registered: bool = False
    moved_to_revoked: int = 0
    published: Path | None = None
    crl_refused: str | None = None  # why the batch's CRL was not registered (LostRevocation)
    crl_refused_ja: str | None = None


def link_folder(path: Path | None, what: str, what_ja: str) -> Path:
    """The offline ``outbox``/``inbox`` folder of the settings, which must exist.

    It is never created here: it is often on the medium carried to the CA, and a folder made
    on the local disk because that medium was not mounted would swallow the batches unseen.
    """
    if path is None:
        raise ConfigError(
            f"offline mode needs ra.link.{what}",
            message_ja=f"オフライン連携には ra.link.{what} ({what_ja}) の設定が必要です",
        )
    if not path.is_dir():
        raise ConfigError(
            f"the offline {what} folder {path} does not exist; mount the medium it is on, or "
            "create it once when setting up the link",
            message_ja=f"{what_ja} {path} がありません。媒体をマウントするか、連携の設定時に"
            "一度だけ作成してください",
            path=str(path),
        )
    return path


# -- import ----------------------------------------------------------------------------------


def _register_issued(
    session: Session, settings: RASettings, app: Application, item: Issued, *, now: dt.datetime
) -> bool:
    cert = item.certificate
    serial_hex = format(cert.serial_number, "x")
    existing = session.execute(
        select(Certificate).where(Certificate.application_id == app.id)
    ).scalar_one_or_none()
    if existing is not None:
        if existing.serial_hex != serial_hex:
            raise VerificationFailed(
                f"application {app.id} already has certificate {existing.serial_hex}, "
                f"the result brings {serial_hex}",
                message_ja=f"申込 {app.id} には別の証明書 {existing.serial_hex} が登録済みです",
            )
        return False  # already registered
    if app.status is not Status.AWAITING_ISSUANCE:
        log.warning("certificate for application %s in status %s ignored", app.id, app.status)
        return False
    try:
        requested_key = x509.load_der_x509_csr(app.csr_der).public_key().public_bytes(*_SPKI)
    except ValueError:
        requested_key = b""  # the CA parsed it to issue; a CSR we cannot read cannot match
    if cert.public_key().public_bytes(*_SPKI) != requested_key:
        raise VerificationFailed(
            f"the certificate for request {app.request_id} is not for the requested key",
            message_ja=f"依頼 {app.request_id} の証明書の公開鍵が申請の鍵と一致しません",
        )
    session.add(
        Certificate(
            application_id=app.id,
            serial_hex=serial_hex,
            der=cert.public_bytes(serialization.Encoding.DER),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            registered_at=now,
            expiry_notices_sent=[],
        )
    )
    session.flush()
    lifecycle.apply(
        session,
        app,
        Event.REGISTER_CERTIFICATE,
        actor=JOB.actor,
        actor_id=JOB.audit_id,
        now=now,
        details={"serial": serial_hex},
    )
    account = session.get(Account, app.account_id)
    assert account is not None
    text = texts.certificate_issued(
        name=account.name,
        application_id=app.id,
        office_number=app.office_number,
        office_name=app.office_name,
        serial_hex=serial_hex,
        not_after=cert.not_valid_after_utc,
    )
    notify(
        session,
        account,
        kind="certificate_issued",
        title=text.title,
        body=text.body,
        now=now,
        message_id_domain=settings.mail.message_id_domain,
        application_id=app.id,
        footer=texts.signature(settings),
    )
    return True


def _refuse(session: Session, app: Application, item: IssueRefused, *, now: dt.datetime) -> bool:
    if app.status is not Status.AWAITING_ISSUANCE:
        return False  # already handled by an earlier import
    lifecycle.apply(
        session,
        app,
        Event.CA_REFUSED,
        actor=JOB.actor,
        actor_id=JOB.audit_id,
        now=now,
        reason=f"認証局が発行を拒否しました: {item.message_ja}",
        details={"code": item.code, "message": item.message},
    )
    return True


def apps_by_request(session: Session, batch_id: str) -> dict[str, Application]:
    """The applications of ``batch_id`` (issue or revoke), by the request id sent to the CA."""
    apps = session.execute(
        select(Application).where(
            (Application.issue_batch_id == batch_id) | (Application.revoke_batch_id == batch_id)
        )
    ).scalars()
    return {a.request_id: a for a in apps}


def import_result(
    factory: sessionmaker[Session],
    settings: RASettings,
    data: bytes,
    *,
    now: dt.datetime,
    ca_certificate: x509.Certificate | None = None,
) -> ImportSummary:
    """B9/B10: verify and import one result batch, idempotently (see the module docstring).

    Raises :class:`VerificationFailed` (not signed by the CA, not an answer to our batch),
    :class:`MalformedInput` (malformed, or listing a request the batch did not contain),
    :class:`NotFound` (a batch this RA never sent) and :class:`Refused` (another result was
    already imported for the batch); in every case nothing changed.
    """
    ca_certificate = ca_certificate or load_ca_certificate(settings.link)
    result = read_result_batch(data, ca_certificate=ca_certificate)
    digest = hashlib.sha256(data).hexdigest()
    counts = {"issued": 0, "refused": 0, "revoked": 0, "revoke_refused": 0, "abandoned": 0}
    with factory() as session, session.begin():
        batch = session.execute(
            select(CaBatch).where(CaBatch.batch_id == result.batch_id).with_for_update()
        ).scalar_one_or_none()
        if batch is None:
            raise NotFound(
                f"the result answers batch {result.batch_id}, which this RA never sent",
                message_ja=f"バッチ {result.batch_id} はこの RA が送ったものではありません",
                batch_id=result.batch_id,
            )
        if result.request_sha256 != batch.request_sha256:
            raise VerificationFailed(
                f"the result for batch {result.batch_id} answers a different request file",
                message_ja=f"バッチ {result.batch_id} の結果が送った依頼と一致しません",
                batch_id=result.batch_id,
            )
        if batch.imported_at is not None:
            if batch.result_sha256 != digest:
                raise Conflict(
                    f"another result for batch {result.batch_id} was imported on "
                    f"{batch.imported_at:%Y-%m-%d %H:%M:%S} UTC",
                    message_ja=f"バッチ {result.batch_id} には別の結果が取込済みです",
                    batch_id=result.batch_id,
                )
            summary = ImportSummary(result.batch_id, already_imported=True)
        else:
            apps = apps_by_request(session, result.batch_id)
            for item in result.results:
                app = apps.get(item.request_id)
                if app is None:
                    raise MalformedInput(
                        f"the result lists request {item.request_id}, "
                        f"which batch {result.batch_id} did not contain",
                        message_ja=f"結果に依頼にない ID {item.request_id} があります",
                    )
                if isinstance(item, Issued):
                    counts["issued"] += _register_issued(session, settings, app, item, now=now)
                elif isinstance(item, IssueRefused):
                    counts["refused"] += _refuse(session, app, item, now=now)
                elif isinstance(item, Revoked):
                    counts["revoked"] += 1
                elif isinstance(item, Abandoned):
                    counts["abandoned"] += 1
                    _note_abandoned(session, app, item, now=now)
                else:
                    counts["revoke_refused"] += 1
                    _note_revoke_refused(session, app, item, now=now)
            refused: crls.LostRevocation | None = None
            try:
                crl = crls.register_crl(
                    session,
                    result.crl_der,
                    ca_certificate=ca_certificate,
                    now=now,
                    older="skip",
                    settings=settings,
                )
            except crls.LostRevocation as exc:
                refused = exc
                crl = _crl_refused(session, result.batch_id, exc, now=now)
            batch.result_sha256 = digest
            batch.imported_at = now
            summary = ImportSummary(
                result.batch_id,
                already_imported=False,
                crl_number=crl.number,
                crl_registered=crl.registered,
                crl_refused=None if refused is None else refused.message,
                crl_refused_ja=None if refused is None else refused.message_ja,
                moved_to_revoked=len(crl.revoked),
                issued=counts["issued"],
                refused=counts["refused"],
                revoked=counts["revoked"],
                revoke_refused=counts["revoke_refused"],
                abandoned=counts["abandoned"],
            )
    published = crls.publish_latest(factory, settings, ca_certificate=ca_certificate)
    return dataclasses.replace(summary, published=published)


def _crl_refused(
    session: Session, batch_id: str, exc: crls.LostRevocation, *, now: dt.datetime
) -> crls.CrlRegistration:
    number = exc.fields.get("number")
    log.error("the CRL of result batch %s was not registered: %s", batch_id, exc.message)
    audit.record(
        session,
        actor=JOB.actor,
        actor_id=JOB.audit_id,
        action="crl_refused",
        object_type="ca_batch",
        object_id=batch_id,
        now=now,
        details={"crl_number": str(number), "missing": exc.fields.get("serials", [])},
    )
    return crls.CrlRegistration(
        number=int(number) if number is not None else 0,
        sha256="",
        entries=0,
        registered=False,
        revoked=(),
    )


def _note_revoke_refused(
    session: Session, app: Application, item: RevokeRefused, *, now: dt.datetime
) -> None:
    # No status changes: "already revoked" moves to 8 with the CRL that lists it; an
    # "unknown serial" stays 失効待ち for the operator to look at, with this record as why.
    audit.record(
        session,
        actor=JOB.actor,
        actor_id=JOB.audit_id,
        action="ca_refused_revocation",
        object_type="application",
        object_id=str(app.id),
        status_before=app.status.value,
        status_after=app.status.value,
        now=now,
        details={"code": item.code, "message": item.message, "serial": format(item.serial, "x")},
    )
    if item.code == "unknown_serial":
        log.error("the CA does not know serial %x of application %s", item.serial, app.id)


def refused_crls(summary: object) -> tuple[tuple[str, str], ...]:
    """Why the CRL of each imported result was refused (English, Japanese), in a job's summary.

    Takes an :class:`ImportSummary`, an :class:`InboxSummary` or any summary with an
    ``imported`` tuple of them (the inline dispatch), so a job can exit non-zero and say why.
    """
    if isinstance(summary, ImportSummary):
        if summary.crl_refused is None:
            return ()
        return ((summary.crl_refused, summary.crl_refused_ja or summary.crl_refused),)
    imported = getattr(summary, "imported", ())
    if not isinstance(imported, tuple):
        return ()
    return tuple(why for item in imported for why in refused_crls(item))


def _note_abandoned(
    session: Session, app: Application, item: Abandoned, *, now: dt.datetime
) -> None:
    # No status change: the operator decides to send the request again (ra.ca_link.recovery).
    audit.record(
        session,
        actor=JOB.actor,
        actor_id=JOB.audit_id,
        action="ca_abandoned_request",
        object_type="application",
        object_id=str(app.id),
        status_before=app.status.value,
        status_after=app.status.value,
        now=now,
        details={"batch_id": app.issue_batch_id, "message": item.message},
    )
    log.warning("the CA abandoned the request of application %s", app.id)


# -- the offline inbox -----------------------------------------------------------------------


@dataclass(frozen=True)
class InboxSummary:
    imported: tuple[ImportSummary, ...]
    failed: tuple[tuple[str, str], ...]  # (file name, reason)
    attention: tuple[Attention, ...] = ()  # refused files, applications the CA abandoned


def import_inbox(
    factory: sessionmaker[Session], settings: RASettings, *, now: dt.datetime
) -> InboxSummary:
    """Import every ``*.p7m`` result file in ``link.inbox`` (offline mode).

    An imported file moves to ``data_dir/link/imported``; a file that is forged, malformed,
    or not an answer to our batches moves to ``data_dir/link/failed`` with a ``.reason.txt``
    beside it.  Other errors (the database is down) leave it in the inbox for the next run.
    """
    inbox = link_folder(settings.link.inbox, "inbox", "受信フォルダ")
    done = settings.data_dir / "link" / "imported"
    failed_dir = settings.data_dir / "link" / "failed"
    ca_certificate = load_ca_certificate(settings.link)
    imported: list[ImportSummary] = []
    failed: list[tuple[str, str]] = []
    for path in sorted(inbox.glob("*.p7m")):
        try:
            summary = import_result(
                factory, settings, path.read_bytes(), now=now, ca_certificate=ca_certificate
            )
        except (VerificationFailed, MalformedInput, NotFound, Refused) as exc:
            failed.append((path.name, exc.message))
            _move(path, failed_dir)
            (failed_dir / f"{path.name}.reason.txt").write_text(
                f"{exc.message}\n{exc.message_ja}\n", encoding="utf-8"
            )
            continue
        imported.append(summary)
        _move(path, done)
    refused = tuple(
        Attention(
            f"result file {name} was refused and moved to {failed_dir}: {reason}",
            f"結果ファイル {name} は取り込めず {failed_dir} に移しました: {reason}",
        )
        for name, reason in failed
    )
    with factory() as session:
        abandoned = left_out_attention(session)
    return InboxSummary(tuple(imported), tuple(failed), (*refused, *abandoned))


def _move(path: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        if target.read_bytes() == path.read_bytes():
            path.unlink()
            return
        stem = f"{path.name}.{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"
        target = folder / stem
    os.replace(path, target)


__all__ = [
    "ACTOR_ID",
    "ImportSummary",
    "InboxSummary",
    "apps_by_request",
    "import_inbox",
    "import_result",
    "link_folder",
    "refused_crls",
]
