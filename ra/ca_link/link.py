"""The RA's side of the batch link (docs/product.md §10): dispatch (B7, B8) and import (B9, B10).

**Dispatch.**  Every application in 発行依頼中 (3) and 失効依頼中 (6) goes into one request
batch, signed with the RA link key (:func:`contract.batch.write_request_batch`; the request id is
``Application.request_id``).  In one transaction each application moves 3→4 or 6→7 through
:func:`ra.lifecycle.apply` and the :class:`~ra.store.models.CaBatch` row with the signed bytes is
added, so an undo racing the dispatch either wins first (the application is not in the
batch: its guarded UPDATE made ours match no row) or loses (it finds the application moved).
Only after the commit does the batch leave the RA: inline mode hands it to the in-process CA
(:mod:`ra.ca_link.inline_ca`) and imports the result at once through the same
:func:`import_result`; offline mode writes it to ``link.outbox``, never over a file.  A batch
committed but not delivered (a crash in between) is delivered by the next dispatch: inline
mode hands the batch to the CA again, which answers with the result it kept, finishes a batch
a crash left unfinished (its ledger says exactly what was signed; see
:mod:`ca.signbatch`), or signs it if it never saw it; offline mode writes the missing outbox
file.  What cannot be finished is reported as :class:`~ra.ca_link.stuck.Attention` (the job then
exits non-zero): a batch the CA could not answer, and applications the CA abandoned, which
``shomei ra re-request`` sends again (:mod:`ra.ca_link.recovery`).

**Import** of the result batches is :mod:`ra.ca_link.link_import` (re-exported here).
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

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from contract.batch import (
    MAX_REQUESTS,
    REQUESTERS,
    REVOCATION_REASONS,
    IssueItem,
    RequestItem,
    RevokeItem,
    write_request_batch,
)
from ra import lifecycle
from ra.ca_link.identity import LinkIdentity, load_ca_certificate, load_link_identity
from ra.ca_link.link_import import (
    ACTOR_ID,
    JOB,
    ImportSummary,
    InboxSummary,
    apps_by_request,
    import_inbox,
    import_result,
    link_folder,
)
from ra.ca_link.stuck import Attention, left_out_attention
from ra.lifecycle import Event, Status
from ra.settings import RASettings
from ra.store.models import Application, CaBatch, Certificate
from shomei.errors import AlreadyExists, Conflict, ShomeiError

log = logging.getLogger("shomei.ra.link")

# Inline mode signs small batches in this process: a scheduler has threads, where forking
# workers for a handful of certificates would cost more than it saves.
INLINE_POOL_THRESHOLD = 32

_REASONS: dict[str, str] = {}
for _flag in x509.ReasonFlags:
    _REASONS[_flag.value.lower()] = _flag.value
    _REASONS[_flag.name.lower()] = _flag.value


@dataclass(frozen=True)
class DispatchSummary:
    batch_id: str | None  # the new batch, None when nothing was waiting
    issue: int = 0
    revoke: int = 0
    held: tuple[int, ...] = ()  # applications left in 3 (no office number to send)
    lost_races: int = 0  # applications another operator changed first (e.g. an undo)
    written: tuple[Path, ...] = ()  # offline: batch files written to the outbox
    imported: tuple[ImportSummary, ...] = ()  # inline: results imported
    busy: tuple[str, ...] = field(default=())  # inline: batches another process is signing
    attention: tuple[Attention, ...] = field(default=())  # what an operator must look at


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
                actor=JOB.actor,
                actor_id=JOB.audit_id,
                now=now,
                details={"batch_id": batch_id},
            )
        except Conflict:  # changed meanwhile, or no longer in the status read
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
    if settings.link.mode == "offline":  # before any application moves to 発行待ち
        link_folder(settings.link.outbox, "outbox", "送信フォルダ")
    with factory() as session, session.begin():
        batch, issues, revokes, held, lost = _create_batch(session, settings, identity, now=now)
        batch_id = batch.batch_id if batch is not None else None
    if held:
        log.warning("applications %s have no office number and stay in 発行依頼中", held)
    delivered = deliver_pending(factory, settings, now=now)
    if held:
        delivered = dataclasses.replace(
            delivered,
            attention=(
                *delivered.attention,
                Attention(
                    f"applications {list(held)} have no office number and stay 発行依頼中",
                    f"申請 {list(held)} は事業所番号がないため発行依頼中のままです",
                ),
            ),
        )
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
    summary = DispatchSummary(None)
    if pending and settings.link.mode == "offline":
        paths = (_write_outbox(factory, settings, b) for b in pending)
        summary = DispatchSummary(None, written=tuple(p for p in paths if p is not None))
    elif pending:
        summary = _deliver_inline(factory, settings, pending, now=now)
    with factory() as session:
        abandoned = left_out_attention(session)
    return dataclasses.replace(summary, attention=(*summary.attention, *abandoned))


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
        return [_Pending(*row, items=len(apps_by_request(session, row.batch_id))) for row in rows]


def _request_der(factory: sessionmaker[Session], batch_id: str) -> bytes:
    # Loaded one at a time, and only when needed: offline batches may wait days for their
    # result, and a request batch can be tens of megabytes.
    with factory() as session:
        return session.execute(
            select(CaBatch.request_der).where(CaBatch.batch_id == batch_id)
        ).scalar_one()


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
    outbox = link_folder(settings.link.outbox, "outbox", "送信フォルダ")
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
            raise AlreadyExists(
                f"{target} exists with other contents; it is never overwritten",
                message_ja=f"{target} は内容の異なるファイルとして既にあります。上書きしません",
                path=str(target),
            ) from None
    finally:
        temp.unlink()
    marker.write_text(target.name + "\n", encoding="utf-8")
    return target


def _deliver_inline(
    factory: sessionmaker[Session],
    settings: RASettings,
    pending: list[_Pending],
    *,
    now: dt.datetime,
) -> DispatchSummary:
    """Hand each pending batch to the inline CA and import its answer (see the module).

    The CA answers a batch it finished with the result it kept, and finishes one a crash
    left unfinished: resuming is safe, because only a live process holds the CA's work lock
    (a batch another process is at is skipped, ``busy``) and the ledger says exactly what was
    signed.  A batch that fails is reported and the others still go.
    """
    # Only here does the RA load the CA code (see ra.ca_link.inline_ca).
    from ra.ca_link.inline_ca import Busy, open_inline_ca, sign_batch

    ca_certificate = load_ca_certificate(settings.link)
    imported: list[ImportSummary] = []
    busy: list[str] = []
    attention: list[Attention] = []
    with open_inline_ca(settings) as ca:
        for batch in pending:
            workers = 1 if batch.items <= INLINE_POOL_THRESHOLD else 0
            try:
                request = _request_der(factory, batch.batch_id)
                result = sign_batch(ca, request, now=now, workers=workers)
                imported.append(
                    import_result(factory, settings, result, now=now, ca_certificate=ca_certificate)
                )
            except Busy as exc:
                log.warning("batch %s: %s", batch.batch_id, exc.message)
                busy.append(batch.batch_id)
            except ShomeiError as exc:
                log.error("batch %s could not be finished: %s", batch.batch_id, exc.message)
                attention.append(
                    Attention(
                        f"batch {batch.batch_id} could not be finished: {exc.message} "
                        "(the next run tries again)",
                        f"バッチ {batch.batch_id} を完了できませんでした: {exc.message_ja}"
                        "(次回の実行で再試行します)",
                    )
                )
    return DispatchSummary(
        None, imported=tuple(imported), busy=tuple(busy), attention=tuple(attention)
    )


__all__ = [
    "ACTOR_ID",
    "DispatchSummary",
    "ImportSummary",
    "InboxSummary",
    "deliver_pending",
    "dispatch",
    "import_inbox",
    "import_result",
    "outbox_name",
]
