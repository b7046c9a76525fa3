"""The RA's side of the RA↔CA batch link (SPEC §5): dispatch (B7, B8) and import (B9, B10).

**Dispatch.**  Every application in 発行依頼中 (3) and 失効依頼中 (6) goes into one request
batch, signed with the RA link key (:func:`ca.batch.write_request_batch`; the request id is
``Application.request_id``).  In one transaction each application moves 3→4 or 6→7 through
:func:`ra.lifecycle.apply` and the :class:`~ra.models.CaBatch` row with the signed bytes is
added, so an undo racing the dispatch either wins first (the application is not in the
batch: its guarded UPDATE made ours match no row) or loses (it finds the application moved).
Only after the commit does the batch leave the RA: inline mode hands it to the in-process CA
(:func:`ca.signbatch.sign_batch`) and imports the result at once through the same
:func:`import_result`; offline mode writes it to ``link.outbox``, never over a file.  A batch
committed but not delivered (a crash in between) is delivered by the next dispatch: inline
mode imports the copy the CA kept, or hands the batch over if the CA never saw it; offline
mode writes the missing outbox file.

**Import.**  :func:`import_result` verifies the result batch against the issuing CA
certificate (:func:`ca.batch.read_result_batch`; every certificate and the CRL must carry
the CA's signature), checks that it answers a batch this RA sent (same batch id and request
hash), and applies it in ONE transaction: Issued → a :class:`~ra.models.Certificate` row,
REGISTER_CERTIFICATE (4→5) and the notice and mail 「証明書が発行されました」; IssueRefused →
CA_REFUSED (4→9) with the CA's reason; Revoked → nothing yet (7 stays until a CRL lists it);
then the batch's CRL is registered (:mod:`ra.crls`) and the batch marked imported.  A crash
anywhere rolls all of it back, and importing the same result again is a no-op, so the end
state is the same however often and wherever it is interrupted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ca.batch import (
    MAX_REQUESTS,
    REQUESTERS,
    REVOCATION_REASONS,
    Issued,
    IssueItem,
    IssueRefused,
    RequestItem,
    Revoked,
    RevokeItem,
    RevokeRefused,
    read_result_batch,
    write_request_batch,
)
from ra import audit, crls, lifecycle
from ra.identity import LinkIdentity, load_ca_certificate, load_link_identity
from ra.lifecycle import Actor, Event, Status
from ra.models import Account, Application, CaBatch, Certificate
from ra.notify import notify
from ra.settings import RASettings
from shomei.clock import to_japan
from shomei.errors import (
    ConfigError,
    MalformedInput,
    NotFound,
    Refused,
    VerificationFailed,
)

if TYPE_CHECKING:
    from ca.context import CA

log = logging.getLogger("shomei.ra.link")

ACTOR_ID = "ca-link"
# Inline mode signs small batches in this process: a scheduler has threads, where forking
# workers for a handful of certificates would cost more than it saves.
INLINE_POOL_THRESHOLD = 32

_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
_REASONS: dict[str, str] = {}
for _flag in x509.ReasonFlags:
    _REASONS[_flag.value.lower()] = _flag.value
    _REASONS[_flag.name.lower()] = _flag.value


@dataclass(frozen=True)
class ImportSummary:
    batch_id: str
    already_imported: bool
    issued: int = 0
    refused: int = 0
    revoked: int = 0  # the CA revoked them; they move to 8 when a CRL lists them
    revoke_refused: int = 0
    crl_number: int | None = None
    crl_registered: bool = False
    moved_to_revoked: int = 0
    published: Path | None = None


@dataclass(frozen=True)
class DispatchSummary:
    batch_id: str | None  # the new batch, None when nothing was waiting
    issue: int = 0
    revoke: int = 0
    held: tuple[int, ...] = ()  # applications left in 3 (no office number to send)
    lost_races: int = 0  # applications another operator changed first (e.g. an undo)
    written: tuple[Path, ...] = ()  # offline: batch files written to the outbox
    imported: tuple[ImportSummary, ...] = ()  # inline: results imported
    stuck: tuple[str, ...] = field(default=())  # inline: batches the CA began but never ended


# -- dispatch --------------------------------------------------------------------------------


def _reason(value: str | None) -> str:
    found = _REASONS.get((value or "").replace(" ", "").lower(), "unspecified")
    return found if found in REVOCATION_REASONS else "unspecified"


def _create_batch(
    session: Session, settings: RASettings, identity: LinkIdentity, *, now: dt.datetime
) -> tuple[CaBatch | None, int, int, list[int], int]:
    apps = (
        session.execute(
            select(Application)
            .where(Application.status.in_([Status.ISSUE_REQUESTED, Status.REVOCATION_REQUESTED]))
            .order_by(Application.id)
            .limit(MAX_REQUESTS)
            # Lock the rows first, as an admin's undo does (its UPDATE) before it takes the
            # audit head: the same order everywhere, so the two never deadlock.
            .with_for_update()
        )
        .scalars()
        .all()
    )
    batch_id = str(uuid.uuid4())
    items: list[RequestItem] = []
    held: list[int] = []
    lost = issues = revokes = 0
    for app in apps:
        cert: Certificate | None = None
        if app.status is Status.ISSUE_REQUESTED:
            if not app.office_number:
                held.append(app.id)
                continue
            event = Event.DISPATCH_ISSUANCE
        else:
            cert = session.execute(
                select(Certificate).where(Certificate.application_id == app.id)
            ).scalar_one_or_none()
            if cert is None:
                held.append(app.id)
                continue
            event = Event.DISPATCH_REVOCATION
        try:
            lifecycle.apply(
                session,
                app,
                event,
                actor=Actor.SYSTEM,
                actor_id=ACTOR_ID,
                now=now,
                details={"batch_id": batch_id},
            )
        except (lifecycle.Conflict, lifecycle.TransitionRefused):
            lost += 1  # the guarded UPDATE changed nothing; someone else was first
            continue
        if event is Event.DISPATCH_ISSUANCE:
            app.issue_batch_id = batch_id
            items.append(
                IssueItem(
                    request_id=app.request_id,
                    csr_der=app.csr_der,
                    office_number=app.office_number,
                    office_name=app.office_name,
                    profile=app.profile,
                )
            )
            issues += 1
        else:
            assert cert is not None  # checked above
            app.revoke_batch_id = batch_id
            items.append(
                RevokeItem(
                    request_id=app.request_id,
                    serial=int(cert.serial_hex, 16),
                    reason=_reason(app.revocation_reason),
                    revoked_at=app.revocation_requested_at or now,
                    requested_by=app.revocation_requested_by
                    if app.revocation_requested_by in REQUESTERS
                    else "federation",
                )
            )
            revokes += 1
    if not items:
        return None, 0, 0, held, lost
    data = write_request_batch(
        items,
        ra_name=settings.link.ra_name,
        key=identity.key,
        certificate=identity.certificate,
        now=now,
        batch_id=batch_id,
    )
    kind = "mixed" if issues and revokes else ("issue" if issues else "revoke")
    batch = CaBatch(
        batch_id=batch_id,
        kind=kind,
        request_der=data,
        request_sha256=hashlib.sha256(data).hexdigest(),
        created_at=now,
    )
    session.add(batch)
    session.flush()
    return batch, issues, revokes, held, lost


def dispatch(
    factory: sessionmaker[Session],
    settings: RASettings,
    *,
    now: dt.datetime,
    identity: LinkIdentity | None = None,
) -> DispatchSummary:
    """B7/B8: put every 3 and 6 into one signed request batch and deliver it (see module)."""
    identity = identity or load_link_identity(settings.link)
    with factory() as session, session.begin():
        batch, issues, revokes, held, lost = _create_batch(session, settings, identity, now=now)
        batch_id = batch.batch_id if batch is not None else None
    if held:
        log.warning("applications %s have no office number and stay in 発行依頼中", held)
    delivered = deliver_pending(factory, settings, now=now)
    return dataclasses.replace(
        delivered,
        batch_id=batch_id,
        issue=issues,
        revoke=revokes,
        held=tuple(held),
        lost_races=lost,
    )


def deliver_pending(
    factory: sessionmaker[Session], settings: RASettings, *, now: dt.datetime
) -> DispatchSummary:
    """Deliver every committed batch not imported yet (after a crash, or just made).

    Offline: write the outbox files not written yet.  Inline: import the result the CA kept,
    or hand the batch to the CA if it never saw it.
    """
    pending = _pending(factory)
    if not pending:
        return DispatchSummary(None)
    if settings.link.mode == "offline":
        paths = (_write_outbox(factory, settings, b) for b in pending)
        written = tuple(p for p in paths if p is not None)
        return DispatchSummary(None, written=written)
    imported, stuck = _deliver_inline(factory, settings, pending, now=now)
    return DispatchSummary(None, imported=imported, stuck=stuck)


@dataclass(frozen=True)
class _Pending:
    batch_id: str
    created_at: dt.datetime
    items: int


def _pending(factory: sessionmaker[Session]) -> list[_Pending]:
    with factory() as session:
        rows = session.execute(
            select(CaBatch.batch_id, CaBatch.created_at)
            .where(CaBatch.imported_at.is_(None))
            .order_by(CaBatch.id)
        ).all()
        return [_Pending(*row, items=len(_apps_by_request(session, row.batch_id))) for row in rows]


def _request_der(factory: sessionmaker[Session], batch_id: str) -> bytes:
    # Loaded one at a time, and only when needed: offline batches may wait days for their
    # result, and a request batch can be tens of megabytes.
    with factory() as session:
        return session.execute(
            select(CaBatch.request_der).where(CaBatch.batch_id == batch_id)
        ).scalar_one()


def _folder(path: Path | None, what: str, what_ja: str) -> Path:
    if path is None:
        raise ConfigError(
            f"offline mode needs ra.link.{what}",
            message_ja=f"オフライン連携には ra.link.{what} ({what_ja}) の設定が必要です",
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def outbox_name(batch_id: str, created_at: dt.datetime) -> str:
    return f"{created_at:%Y%m%dT%H%M%SZ}-{batch_id}.request.p7m"


def _write_outbox(
    factory: sessionmaker[Session], settings: RASettings, batch: _Pending
) -> Path | None:
    """Write a batch file to the outbox once; returns the path, or None if done before.

    The file appears whole or not at all (written under a temporary name, then linked to its
    name, which fails rather than replace a file).  A marker under ``data_dir/link/sent``
    remembers that it was written, so a file the operator already carried away is not
    written again.
    """
    outbox = _folder(settings.link.outbox, "outbox", "送信フォルダ")
    sent = settings.data_dir / "link" / "sent"
    sent.mkdir(parents=True, exist_ok=True)
    marker = sent / batch.batch_id
    if marker.exists():
        return None
    data = _request_der(factory, batch.batch_id)
    target = outbox / outbox_name(batch.batch_id, batch.created_at)
    temp = outbox / f".{target.name}.{os.getpid()}.tmp"
    with temp.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(temp, target)
    except FileExistsError:
        if target.read_bytes() != data:
            raise Refused(
                f"{target} exists with other contents; it is never overwritten",
                message_ja=f"{target} は内容の異なるファイルとして既にあります。上書きしません",
                path=str(target),
            ) from None
    finally:
        temp.unlink()
    marker.write_text(target.name + "\n", encoding="utf-8")
    return target


def _open_inline_ca(settings: RASettings) -> CA:
    from ca.context import open_ca
    from ca.custody.shares import parse_share
    from ca.settings import load_ca_settings

    link = settings.link
    if link.ca_home is None:
        raise ConfigError(
            "inline mode needs ra.link.ca_home", message_ja="インライン連携には ca_home が必要です"
        )
    ca_settings = load_ca_settings(link.ca_home / "ca.toml")
    shares = [parse_share(p.read_text(encoding="utf-8")) for p in link.ca_share_files]
    pin = link.ca_pin_file.read_text(encoding="utf-8").strip() if link.ca_pin_file else None
    return open_ca(ca_settings, shares=shares, pin=pin)


def _deliver_inline(
    factory: sessionmaker[Session],
    settings: RASettings,
    pending: list[_Pending],
    *,
    now: dt.datetime,
) -> tuple[tuple[ImportSummary, ...], tuple[str, ...]]:
    from ca.signbatch import results_dir, sign_batch

    ca_certificate = load_ca_certificate(settings.link)
    imported: list[ImportSummary] = []
    stuck: list[str] = []
    with _open_inline_ca(settings) as ca:
        for batch in pending:
            kept = results_dir(ca) / f"{batch.batch_id}.p7m"
            if kept.exists():
                # Signed before a crash: the CA kept the answer; import that.
                result = kept.read_bytes()
            elif ca.ledger.find_batch(batch.batch_id) is None:
                workers = 1 if batch.items <= INLINE_POOL_THRESHOLD else 0
                request = _request_der(factory, batch.batch_id)
                result = sign_batch(ca, request, now=now, workers=workers)
            else:
                log.error("batch %s was begun by the CA but has no result", batch.batch_id)
                stuck.append(batch.batch_id)
                continue
            imported.append(
                import_result(factory, settings, result, now=now, ca_certificate=ca_certificate)
            )
    return tuple(imported), tuple(stuck)


# -- import ----------------------------------------------------------------------------------


def _issued_notice(app: Application, account: Account, cert: x509.Certificate) -> tuple[str, str]:
    until = to_japan(cert.not_valid_after_utc)
    body = (
        f"{account.name} 様\n\n"
        f"お申し込みの証明書が発行されました(申込番号 {app.id}、"
        f"事業所 {app.office_number} {app.office_name})。\n"
        f"シリアル番号: {cert.serial_number:x}\n"
        f"有効期限: {until:%Y年%m月%d日 %H:%M}(日本時間)\n\n"
        "ポータルにログインし、証明書発行用パスワードを入力してダウンロードしてください。\n"
    )
    return "証明書が発行されました", body


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
        actor=Actor.SYSTEM,
        actor_id=ACTOR_ID,
        now=now,
        details={"serial": serial_hex},
    )
    account = session.get(Account, app.account_id)
    assert account is not None
    title, body = _issued_notice(app, account, cert)
    notify(
        session,
        account,
        kind="certificate_issued",
        title=title,
        body=body,
        now=now,
        message_id_domain=settings.mail.message_id_domain,
        application_id=app.id,
    )
    return True


def _refuse(session: Session, app: Application, item: IssueRefused, *, now: dt.datetime) -> bool:
    if app.status is not Status.AWAITING_ISSUANCE:
        return False  # already handled by an earlier import
    lifecycle.apply(
        session,
        app,
        Event.CA_REFUSED,
        actor=Actor.SYSTEM,
        actor_id=ACTOR_ID,
        now=now,
        reason=f"認証局が発行を拒否しました: {item.message_ja}",
        details={"code": item.code, "message": item.message},
    )
    return True


def _apps_by_request(session: Session, batch_id: str) -> dict[str, Application]:
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
    counts = {"issued": 0, "refused": 0, "revoked": 0, "revoke_refused": 0}
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
                raise Refused(
                    f"another result for batch {result.batch_id} was imported on "
                    f"{batch.imported_at:%Y-%m-%d %H:%M:%S} UTC",
                    message_ja=f"バッチ {result.batch_id} には別の結果が取込済みです",
                    batch_id=result.batch_id,
                )
            summary = ImportSummary(result.batch_id, already_imported=True)
        else:
            apps = _apps_by_request(session, result.batch_id)
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
                else:
                    counts["revoke_refused"] += 1
                    _note_revoke_refused(session, app, item, now=now)
            crl = crls.register_crl(
                session, result.crl_der, ca_certificate=ca_certificate, now=now, older="skip"
            )
            batch.result_sha256 = digest
            batch.imported_at = now
            summary = ImportSummary(
                result.batch_id,
                already_imported=False,
                crl_number=crl.number,
                crl_registered=crl.registered,
                moved_to_revoked=len(crl.revoked),
                issued=counts["issued"],
                refused=counts["refused"],
                revoked=counts["revoked"],
                revoke_refused=counts["revoke_refused"],
            )
    published = crls.publish_latest(factory, settings, ca_certificate=ca_certificate)
    return dataclasses.replace(summary, published=published)


def _note_revoke_refused(
    session: Session, app: Application, item: RevokeRefused, *, now: dt.datetime
) -> None:
    # No status changes: "already revoked" moves to 8 with the CRL that lists it; an
    # "unknown serial" stays 失効待ち for the operator to look at, with this record as why.
    audit.record(
        session,
        actor=Actor.SYSTEM,
        actor_id=ACTOR_ID,
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


# -- the offline inbox -----------------------------------------------------------------------


@dataclass(frozen=True)
class InboxSummary:
    imported: tuple[ImportSummary, ...]
    failed: tuple[tuple[str, str], ...]  # (file name, reason)


def import_inbox(
    factory: sessionmaker[Session], settings: RASettings, *, now: dt.datetime
) -> InboxSummary:
    """Import every ``*.p7m`` result file in ``link.inbox`` (offline mode).

    An imported file moves to ``data_dir/link/imported``; a file that is forged, malformed,
    or not an answer to our batches moves to ``data_dir/link/failed`` with a ``.reason.txt``
    beside it.  Other errors (the database is down) leave it in the inbox for the next run.
    """
    inbox = _folder(settings.link.inbox, "inbox", "受信フォルダ")
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
    return InboxSummary(tuple(imported), tuple(failed))


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
    "DispatchSummary",
    "ImportSummary",
    "InboxSummary",
    "deliver_pending",
    "dispatch",
    "import_inbox",
    "import_result",
    "outbox_name",
]
