"""The RA's way back when a batch to the CA did not go through (docs/batch-link-operations.md).

- :func:`link_status`: every batch not yet answered, with its age and applications, and every
  application the CA abandoned (``shomei ra link-status``).
- :func:`rerequest_batch`: the applications of a batch whose result answered them
  ``abandoned`` (the CA stopped the batch before signing them) go back from 発行待ち (4) to
  発行依頼中 (3) through :func:`ra.lifecycle.apply` (event ``rerequest_issuance``, audited),
  so the next dispatch sends them again in a new batch with the same request ids; the CA
  answers a request id it already signed with that certificate, never a second one.  Only an
  answered batch qualifies: a batch the CA has not answered may still be signed, and is
  finished or abandoned on the CA side first (``shomei ca resume-batch``/``abandon-batch``).
- :func:`resend_batch`: offline mode, the request file of a batch not yet answered is written
  to the outbox again (the operator lost it, or the CA machine's copy was damaged).  The CA
  never signs a batch twice, so a second copy costs nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ra import lifecycle
from ra.ca_link.link import outbox_name
from ra.ca_link.link_import import link_folder
from ra.ca_link.stuck import left_out
from ra.lifecycle import Event, Status
from ra.party import Party, Permission, require
from ra.settings import RASettings
from ra.store.models import Application, CaBatch
from shomei.errors import Conflict, NotFound, Refused
from shomei.files import write_new


@dataclass(frozen=True)
class PendingBatch:
    batch_id: str
    kind: str
    created_at: dt.datetime
    applications: int
    outbox_file: str  # its name in the offline outbox


@dataclass(frozen=True)
class LinkStatus:
    pending: tuple[PendingBatch, ...]  # sent, not answered yet
    left_out: dict[str, list[int]]  # answered "abandoned": batch id -> application ids


def link_status(factory: sessionmaker[Session]) -> LinkStatus:
    """The batches waiting for the CA's answer and the applications waiting for re-request."""
    with factory() as session:
        rows = session.execute(
            select(CaBatch.batch_id, CaBatch.kind, CaBatch.created_at)
            .where(CaBatch.imported_at.is_(None))
            .order_by(CaBatch.id)
        ).all()
        pending = tuple(
            PendingBatch(
                batch_id,
                kind,
                created_at,
                _count(session, batch_id),
                outbox_name(batch_id, created_at),
            )
            for batch_id, kind, created_at in rows
        )
        return LinkStatus(pending, left_out(session))


def _count(session: Session, batch_id: str) -> int:
    return int(
        session.execute(
            select(func.count())
            .select_from(Application)
            .where(
                (Application.issue_batch_id == batch_id) | (Application.revoke_batch_id == batch_id)
            )
        ).scalar_one()
    )


@dataclass(frozen=True)
class Rerequested:
    batch_id: str
    applications: tuple[int, ...]
    lost_races: int  # changed by someone else first


def rerequest_batch(
    factory: sessionmaker[Session], party: Party, batch_id: str, *, now: dt.datetime
) -> Rerequested:
    """Send the applications the CA abandoned in ``batch_id`` again (see the module).

    Raises :class:`NotFound` for a batch this RA never sent, :class:`Conflict` for one the CA
    has not answered yet or that left nothing to send again, and
    :class:`~shomei.errors.NotPermitted` for a party other than an admin or the operator;
    nothing changes then.
    """
    require(party, Permission.REREQUEST_ISSUANCE)
    with factory() as session, session.begin():
        batch = session.execute(
            select(CaBatch).where(CaBatch.batch_id == batch_id).with_for_update()
        ).scalar_one_or_none()
        if batch is None:
            raise NotFound(
                f"this RA never sent a batch {batch_id}",
                message_ja=f"バッチ {batch_id} はこの RA が送ったものではありません",
                batch_id=batch_id,
            )
        if batch.imported_at is None:
            raise Conflict(
                f"the CA has not answered batch {batch_id} yet: finish it on the CA "
                f"(shomei ca resume-batch {batch_id} OUT) or abandon it (shomei ca "
                "abandon-batch), and import the result; then re-request what it abandoned",
                message_ja=f"バッチ {batch_id} の結果はまだ取り込まれていません。認証局で再開"
                "(resume-batch)または中止(abandon-batch)し、結果を取り込んでから再送してください",
                batch_id=batch_id,
            )
        apps = (
            session.execute(
                select(Application)
                .where(
                    Application.issue_batch_id == batch_id,
                    Application.status == Status.AWAITING_ISSUANCE,
                )
                .order_by(Application.id)
                .with_for_update()
            )
            .scalars()
            .all()
        )
        if not apps:
            raise Conflict(
                f"no application of batch {batch_id} waits at 発行待ち; nothing to send again",
                message_ja=f"バッチ {batch_id} に発行待ちの申請はありません",
                batch_id=batch_id,
            )
        moved: list[int] = []
        lost = 0
        for app in apps:
            try:
                lifecycle.apply(
                    session,
                    app,
                    Event.REREQUEST_ISSUANCE,
                    actor=party.actor,
                    actor_id=party.audit_id,
                    now=now,
                    details={"batch_id": batch_id},
                )
            except Conflict:  # changed meanwhile, or no longer in the status read
                lost += 1
                continue
            moved.append(app.id)
    return Rerequested(batch_id, tuple(moved), lost)


def resend_batch(factory: sessionmaker[Session], settings: RASettings, batch_id: str) -> Path:
    """Offline mode: write the request file of unanswered ``batch_id`` to the outbox again."""
    if settings.link.mode != "offline":
        raise Refused(
            "resend-batch is for offline mode; inline mode hands every unanswered batch to the "
            "CA again on each dispatch",
            message_ja="resend-batch はオフライン連携用です"
            "(インラインでは毎回の発行依頼で再送します)",
        )
    with factory() as session:
        batch = session.execute(
            select(CaBatch).where(CaBatch.batch_id == batch_id)
        ).scalar_one_or_none()
        if batch is None:
            raise NotFound(
                f"this RA never sent a batch {batch_id}",
                message_ja=f"バッチ {batch_id} はこの RA が送ったものではありません",
                batch_id=batch_id,
            )
        if batch.imported_at is not None:
            raise Conflict(
                f"batch {batch_id} was answered on {batch.imported_at:%Y-%m-%d %H:%M} UTC; "
                "there is nothing to resend",
                message_ja=f"バッチ {batch_id} は結果を取込済みです。再送するものはありません",
                batch_id=batch_id,
            )
        data, name = batch.request_der, outbox_name(batch.batch_id, batch.created_at)
    outbox = link_folder(settings.link.outbox, "outbox", "送信フォルダ")
    target = outbox / name
    if target.is_file() and target.read_bytes() == data:
        return target  # still there, whole
    if target.exists():
        # A damaged copy: keep it beside, for the record, and write the batch again.
        target.replace(target.with_name(f"{name}.damaged"))
    write_new(target, data)
    return target


__all__ = [
    "LinkStatus",
    "PendingBatch",
    "Rerequested",
    "link_status",
    "rerequest_batch",
    "resend_batch",
]
