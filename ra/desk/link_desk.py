"""The console's 連携 desk: the state of the RA↔CA link and the hand operations of offline mode.

What the console shows (:func:`overview`): what waits for the CA (applications still to send
and those sent without an answer), the last request batch out and the last result in, the
CA's recent refusals with their reasons, the current CRL and how long until its nextUpdate
(warned ``link.crl_warning_days`` before, since the CA is offline and signing the next CRL is a
ceremony that must be booked), each job's last runs (table ``job_runs``: by the scheduler, at
the command line or from the console, with the outcome) and the applications the CA abandoned
(docs/product.md §8, §10; operating it: docs/batch-link-operations.md).

The hand operations check the acting :class:`~ra.party.Party` here, never in the view:
:func:`request_file` (the signed request batch, the same bytes the offline outbox holds),
:func:`upload_result` (verified and imported idempotently by
:func:`ra.ca_link.link_import.import_result`:
the same file twice changes nothing and says so), :func:`upload_crl` (A6 through
:func:`ra.ca_link.crls.register_crl`, which refuses a CRL that loses a known revocation and names
the
serials) and :func:`run_job` (a job of :data:`ra.tasks.jobs.JOBS` now, its outcome in the audit
log).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ra.ca_link import crls, link_import, stuck
from ra.ca_link.identity import load_ca_certificate
from ra.ca_link.link import outbox_name
from ra.lifecycle import Event, Status
from ra.party import Party, Permission, require
from ra.settings import RASettings
from ra.store import audit
from ra.store.models import (
    Application,
    AuditRecord,
    CaBatch,
    CrlRecord,
    JobRun,
    JobTrigger,
)
from ra.store.models import JobOutcome as RunOutcome
from ra.tasks import scheduler
from ra.tasks.jobs import JOBS, RunBy
from shomei.errors import MalformedInput, NotFound, ShomeiError

TO_SEND = (Status.ISSUE_REQUESTED, Status.REVOCATION_REQUESTED)
AT_CA = (Status.AWAITING_ISSUANCE, Status.AWAITING_REVOCATION)
REFUSAL_ACTIONS = (Event.CA_REFUSED.value, "ca_refused_revocation")
JOB_RUN_ACTION = "run_job"
RECENT = 20  # refusals shown
RECENT_RUNS = 5  # runs shown for each job


@dataclass(frozen=True)
class BatchRow:
    batch_id: str
    kind: str
    created_at: dt.datetime
    imported_at: dt.datetime | None
    file_name: str  # its name in the offline outbox


@dataclass(frozen=True)
class Refusal:
    at: dt.datetime
    application_id: str
    action: str  # ca_refused (issue) or ca_refused_revocation
    code: str
    message: str
    message_ja: str  # the reason recorded in Japanese (the CA's own words for a revocation)


@dataclass(frozen=True)
class CrlDue:
    number: str
    this_update: dt.datetime
    next_update: dt.datetime | None
    entries: int
    days_left: int | None  # whole days until nextUpdate (negative: overdue)
    warn: bool  # within the warning period, or overdue
    overdue: bool


@dataclass(frozen=True)
class RunRow:
    """One recorded run of a job (``job_runs``)."""

    started_at: dt.datetime
    finished_at: dt.datetime | None
    outcome: RunOutcome | None  # None: still running, or its process died
    summary: str
    summary_ja: str
    trigger: JobTrigger
    ran_by: str


@dataclass(frozen=True)
class JobBoard:
    """A job with its last runs, newest first."""

    name: str
    runs: tuple[RunRow, ...]

    @property
    def last(self) -> RunRow | None:
        return self.runs[0] if self.runs else None


@dataclass(frozen=True)
class LinkOverview:
    mode: str
    counts: tuple[tuple[Status, int], ...]
    pending: tuple[BatchRow, ...]  # sent, not answered yet
    last_out: BatchRow | None
    last_in: BatchRow | None
    refusals: tuple[Refusal, ...]
    crl: CrlDue | None
    warning_days: int
    jobs: tuple[JobBoard, ...]
    left_out: dict[str, list[int]]


def _row(batch: CaBatch) -> BatchRow:
    return BatchRow(
        batch.batch_id,
        batch.kind,
        batch.created_at,
        batch.imported_at,
        outbox_name(batch.batch_id, batch.created_at),
    )


def crl_due(record: CrlRecord | None, now: dt.datetime, warning_days: int) -> CrlDue | None:
    """The current CRL with the time left until its nextUpdate and whether to warn."""
    if record is None:
        return None
    days_left = None
    overdue = warn = False
    if record.next_update is not None:
        left = record.next_update - now
        days_left = left.days  # floor: 0 means less than a day, -1 overdue by up to a day
        overdue = left <= dt.timedelta(0)
        warn = left < dt.timedelta(days=warning_days)
    return CrlDue(
        record.number,
        record.this_update,
        record.next_update,
        record.entries,
        days_left,
        warn,
        overdue,
    )


def _count(session: Session, status: Status) -> int:
    found = session.scalar(
        select(func.count()).select_from(Application).where(Application.status == status)
    )
    return int(found or 0)


def job_boards(session: Session, limit: int = RECENT_RUNS) -> tuple[JobBoard, ...]:
    """Each job of :data:`JOBS` with its last ``limit`` runs, however they were started."""
    boards = []
    for name in JOBS:
        rows = session.execute(
            select(JobRun)
            .where(JobRun.job == name)
            .order_by(JobRun.started_at.desc(), JobRun.id.desc())
            .limit(limit)
        ).scalars()
        boards.append(
            JobBoard(
                name,
                tuple(
                    RunRow(
                        r.started_at,
                        r.finished_at,
                        r.outcome,
                        r.summary,
                        r.summary_ja,
                        r.trigger,
                        r.ran_by,
                    )
                    for r in rows
                ),
            )
        )
    return tuple(boards)


def overview(
    session: Session, party: Party, settings: RASettings, now: dt.datetime
) -> LinkOverview:
    """Everything the 連携 screen shows (any console user may look)."""
    require(party, Permission.VIEW_ALL_APPLICATIONS)
    pending = session.execute(
        select(CaBatch).where(CaBatch.imported_at.is_(None)).order_by(CaBatch.id)
    ).scalars()
    last_out = session.execute(
        select(CaBatch).order_by(CaBatch.id.desc()).limit(1)
    ).scalar_one_or_none()
    last_in = session.execute(
        select(CaBatch)
        .where(CaBatch.imported_at.is_not(None))
        .order_by(CaBatch.imported_at.desc(), CaBatch.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    refusals = tuple(
        Refusal(
            rec.at,
            rec.object_id,
            rec.action,
            str((rec.details or {}).get("code", "")),
            str((rec.details or {}).get("message", "")),
            str((rec.details or {}).get("reason") or (rec.details or {}).get("message", "")),
        )
        for rec in session.execute(
            select(AuditRecord)
            .where(AuditRecord.action.in_(REFUSAL_ACTIONS))
            .order_by(AuditRecord.seq.desc())
            .limit(RECENT)
        ).scalars()
    )
    latest = session.execute(
        select(CrlRecord).order_by(CrlRecord.this_update.desc(), CrlRecord.id.desc()).limit(1)
    ).scalar_one_or_none()
    days = settings.link.crl_warning_days
    return LinkOverview(
        mode=settings.link.mode,
        counts=tuple((s, _count(session, s)) for s in (*TO_SEND, *AT_CA)),
        pending=tuple(_row(b) for b in pending),
        last_out=_row(last_out) if last_out is not None else None,
        last_in=_row(last_in) if last_in is not None else None,
        refusals=refusals,
        crl=crl_due(latest, now, days),
        warning_days=days,
        jobs=job_boards(session),
        left_out=stuck.left_out(session),
    )


def request_file(session: Session, party: Party, batch_id: str) -> tuple[str, bytes]:
    """The file name and the signed bytes of request batch ``batch_id`` (to carry to the CA)."""
    require(party, Permission.MANAGE_LINK)
    batch = session.execute(
        select(CaBatch).where(CaBatch.batch_id == batch_id)
    ).scalar_one_or_none()
    if batch is None:
        raise NotFound(
            f"this RA never sent a batch {batch_id}",
            message_ja=f"バッチ {batch_id} はこの RA が送ったものではありません",
            batch_id=batch_id,
        )
    return outbox_name(batch.batch_id, batch.created_at), batch.request_der


def _nonempty(data: bytes, what: str, what_ja: str) -> bytes:
    if not data:
        raise MalformedInput(f"the {what} is empty", message_ja=f"{what_ja}が空です")
    return data


def upload_result(
    factory: sessionmaker[Session],
    settings: RASettings,
    party: Party,
    data: bytes,
    *,
    now: dt.datetime,
) -> link_import.ImportSummary:
    """Import a result batch the operator uploads (offline mode); the same file again is a no-op."""
    require(party, Permission.MANAGE_LINK)
    _nonempty(data, "result file", "結果ファイル")
    return link_import.import_result(factory, settings, data, now=now)


def upload_crl(
    factory: sessionmaker[Session],
    settings: RASettings,
    party: Party,
    data: bytes,
    *,
    now: dt.datetime,
) -> crls.CrlRegistration:
    """A6: register a CRL uploaded by hand or through the API (verified; one losing a
    revocation is refused).  MANAGE_LINK (admins, the operator) or REGISTER_CRL (an API token
    with the scope register_crls) lets a party in."""
    require(party, Permission.MANAGE_LINK, Permission.REGISTER_CRL)
    _nonempty(data, "CRL file", "CRL ファイル")
    ca_certificate = load_ca_certificate(settings.link)
    with factory() as session, session.begin():
        registered = crls.register_crl(
            session, data, ca_certificate=ca_certificate, now=now, settings=settings
        )
        audit.record(
            session,
            actor=party.actor.value,
            actor_id=party.audit_id,
            action="upload_crl",
            object_type="crl",
            object_id=str(registered.number),
            now=now,
            details={"sha256": registered.sha256, "registered": registered.registered},
        )
    crls.publish_latest(factory, settings, ca_certificate=ca_certificate)
    return registered


@dataclass(frozen=True)
class JobOutcome:
    name: str
    ok: bool
    outcome: str  # the summary, or the error's message in the reader's language pair
    outcome_ja: str


def run_job(
    factory: sessionmaker[Session],
    settings: RASettings,
    party: Party,
    name: str,
    *,
    now: dt.datetime,
) -> JobOutcome:
    """Run job ``name`` now (admins and the operator).

    The run is recorded in ``job_runs`` like the scheduler's (:func:`ra.tasks.jobs.run_job`)
    and its outcome also goes to the audit log.
    """
    require(party, Permission.RUN_JOBS)
    if name not in JOBS:
        raise NotFound(
            f"no job called {name!r}",
            message_ja=f"ジョブ {name!r} はありません",
            job=name,
        )
    try:
        summary = scheduler.run_job(
            name, factory, settings, now=now, by=RunBy.console(party.audit_id)
        )
    except ShomeiError as exc:
        outcome = JobOutcome(name, False, exc.message, exc.message_ja)
    else:
        attention = stuck.attention_of(summary)
        text = scheduler.describe(summary)
        outcome = JobOutcome(
            name,
            not attention,
            "; ".join([text, *(a.message for a in attention)]),
            "; ".join([text, *(a.message_ja for a in attention)]),
        )
    with factory() as session, session.begin():
        audit.record(
            session,
            actor=party.actor.value,
            actor_id=party.audit_id,
            action=JOB_RUN_ACTION,
            object_type="job",
            object_id=name,
            now=now,
            details={"ok": outcome.ok, "outcome": outcome.outcome[:2000]},
        )
    return outcome
