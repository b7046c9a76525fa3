"""The RA's audit log: every event, hash-chained, its head anchored by signatures.

Each record holds who (actor and id), when, what (action, object, status before and after),
the source address of web actions and free details, plus the hash of the previous record and
its own hash over all of that (canonical JSON).  Writers lock the single ``audit_head`` row
(``SELECT ... FOR UPDATE``; SQLite serialises writers anyway), so sequence numbers have no
gaps and two transactions cannot fork the chain.  :func:`anchor` signs the current head (CMS,
with the RA's link key); :func:`verify` walks the chain and checks the anchors, so an edited,
deleted, reordered or truncated record is detected and named.  It then checks the data
against the log: every application must be in the status its last audited move left it in,
so a status changed outside :mod:`ra.lifecycle` (an UPDATE typed into the database), an
application without a record or one deleted is found even though the log itself is intact.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.store.models import Application, AuditAnchor, AuditHead, AuditRecord
from shomei.errors import VerificationFailed
from signer import cms
from signer.keys import SigningKey

GENESIS = "0" * 64


def _digest(fields: Mapping[str, Any]) -> str:
    text = json.dumps(
        fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _fields(r: AuditRecord) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "at": r.at.astimezone(dt.UTC).isoformat(),
        "actor": r.actor,
        "actor_id": r.actor_id,
        "action": r.action,
        "object_type": r.object_type,
        "object_id": r.object_id,
        "status_before": r.status_before,
        "status_after": r.status_after,
        "source_address": r.source_address,
        "details": r.details or {},
        "prev_hash": r.prev_hash,
    }


def _lock_head(session: Session) -> AuditHead:
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    return head


def record(
    session: Session,
    *,
    actor: str,
    actor_id: str,
    action: str,
    object_type: str,
    object_id: str,
    now: dt.datetime,
    status_before: str | None = None,
    status_after: str | None = None,
    source_address: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditRecord:
    """Append one audit record in ``session``'s transaction (committed with the change)."""
    head = _lock_head(session)
    rec = AuditRecord(
        seq=head.seq + 1,
        at=now.astimezone(dt.UTC).replace(microsecond=now.microsecond),
        actor=str(actor),
        actor_id=actor_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        status_before=status_before,
        status_after=status_after,
        source_address=source_address,
        details=json.loads(json.dumps(dict(details or {}), default=str)),
        prev_hash=head.hash,
        hash="",
    )
    rec.hash = _digest(_fields(rec))
    session.add(rec)
    head.seq = rec.seq
    head.hash = rec.hash
    session.flush()
    return rec


def _anchor_payload(seq: int, head_hash: str) -> bytes:
    return f"shomei-audit-anchor/1 seq={seq} head={head_hash}".encode()


def anchor(
    session: Session, *, key: SigningKey, certificate: x509.Certificate, now: dt.datetime
) -> AuditAnchor:
    """Sign the current head of the chain (run periodically by the scheduler)."""
    head = _lock_head(session)
    signature = cms.sign(
        _anchor_payload(head.seq, head.hash),
        key=key,
        certificate=certificate,
        detached=True,
        signing_time=now,
    )
    row = AuditAnchor(seq=head.seq, head_hash=head.hash, signed_at=now, signature=signature)
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class AuditReport:
    records: int
    anchors: int
    head_hash: str


def verify(session: Session, *, trusted: list[x509.Certificate]) -> AuditReport:
    """Walk the whole chain and check every anchor; raise on the first problem found."""
    prev = GENESIS
    expected_seq = 1
    hashes: dict[int, str] = {}
    logged_status: dict[str, str] = {}  # application id -> status after its last record
    for rec in session.execute(select(AuditRecord).order_by(AuditRecord.seq)).scalars():
        if rec.seq != expected_seq:
            raise VerificationFailed(
                f"audit record {expected_seq} is missing (next is {rec.seq})",
                message_ja=f"監査記録 {expected_seq} が欠落しています",
                seq=expected_seq,
            )
        if rec.prev_hash != prev:
            raise VerificationFailed(
                f"audit chain broken at record {rec.seq} (records removed or reordered)",
                message_ja=f"監査記録 {rec.seq} で連鎖が途切れています(削除または入替)",
                seq=rec.seq,
            )
        if _digest(_fields(rec)) != rec.hash:
            raise VerificationFailed(
                f"audit record {rec.seq} was altered",
                message_ja=f"監査記録 {rec.seq} が改変されています",
                seq=rec.seq,
            )
        hashes[rec.seq] = rec.hash
        if rec.object_type == "application" and rec.status_after is not None:
            logged_status[rec.object_id] = rec.status_after
        prev = rec.hash
        expected_seq += 1
    last = expected_seq - 1
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != last or head.hash != prev):
        raise VerificationFailed(
            f"the audit log ends at record {last} but its head says {head.seq} (truncated)",
            message_ja=f"監査記録が {last} 件目で切れています(先頭記録は {head.seq} 件)",
        )
    anchors = session.execute(select(AuditAnchor).order_by(AuditAnchor.id)).scalars().all()
    for a in anchors:
        result = cms.verify(a.signature, content=_anchor_payload(a.seq, a.head_hash))
        if result.signer not in trusted:
            raise VerificationFailed(
                "an audit anchor is signed by an unknown key",
                message_ja="監査アンカーの署名者が不明です",
            )
        if a.seq > last:
            raise VerificationFailed(
                f"an anchor vouches for record {a.seq} but the log ends at {last} (truncated)",
                message_ja=f"署名済みの {a.seq} 件目まであるはずが {last} 件目で切れています",
            )
        if a.seq and hashes.get(a.seq) != a.head_hash:
            raise VerificationFailed(
                f"record {a.seq} differs from what the anchor signed",
                message_ja=f"監査記録 {a.seq} が署名時と異なります",
                seq=a.seq,
            )
    _check_statuses(session, logged_status)
    return AuditReport(records=last, anchors=len(anchors), head_hash=prev)


def _check_statuses(session: Session, logged: dict[str, str]) -> None:
    """Raise unless every application is in the status its audit records leave it in."""
    wrong: list[tuple[str, str | None, str | None]] = []  # id, status now, status logged
    rows = session.execute(select(Application.id, Application.status).order_by(Application.id))
    present: set[str] = set()
    for app_id, status in rows:
        key = str(app_id)
        present.add(key)
        if logged.get(key) != status.value:
            wrong.append((key, status.value, logged.get(key)))
    # Applications are never deleted (B6 keeps the rows): one the log knows must be there.
    wrong += [(key, None, was) for key, was in logged.items() if key not in present]
    if not wrong:
        return
    shown = "; ".join(
        f"application {i} is {now or 'missing from the database'} but its log says "
        f"{was or 'nothing (no record)'}"
        for i, now, was in wrong[:5]
    )
    more = f" (and {len(wrong) - 5} more)" if len(wrong) > 5 else ""
    raise VerificationFailed(
        f"{len(wrong)} application(s) are not in the status their audit log says, changed "
        f"outside the lifecycle: {shown}{more}",
        message_ja=f"{len(wrong)} 件の申請の状況が監査記録と一致しません(正規の手続き以外で"
        f"変更されています): "
        + "、".join(
            f"申請 {i}: 現在 {now or '(行がありません)'}、記録 {was or 'なし'}"
            for i, now, was in wrong[:5]
        )
        + (f" ほか {len(wrong) - 5} 件" if len(wrong) > 5 else ""),
        applications=[i for i, _, _ in wrong],
    )
