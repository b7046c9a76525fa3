"""The RA's scheduled jobs, each ``job(session_factory, settings, now) -> summary``.

The scheduler (:mod:`ra.tasks.scheduler`) runs them in one process under a database lease,
``shomei ra run-job NAME`` runs one by hand and admins press "run now" on the console's 連携
screen; all three go through :func:`run_job`, which records every run in table ``job_runs``
(started, finished, outcome ok / attention / failed, a short summary, and who ran it: the
scheduler, the operator at the command line or the staff user).  Each
job opens its own transactions (one per item where items are independent, so one failure or
one lost race does not undo the others) and changes a status only through
:func:`ra.lifecycle.apply`.

- ``dispatch`` (B7/B8) and ``import-results`` (B9/B10, offline inbox): :mod:`ra.ca_link.link`.
- ``process-rejections``: 却下待ち (9) → 却下 (10), with a notice and a mail giving the reason.
- ``expiry-notices`` (B5): for each configured day count, once per certificate, a notice and
  a mail before the certificate expires, with the portal page that renews it
  (:mod:`ra.workflow.renewals`).
- ``deletion`` (B6): for revoked or expired certificates older than the retention, the wrapped
  private key is destroyed and the certificate archived; the rows and the audit log stay.  It
  also keeps ``job_runs`` and ``import_runs`` bounded: runs older than :data:`RUNS_KEPT` (90
  days) are deleted.
- ``fee-export`` (B11): the fee-offset balance of every office not yet exported, as a CSV
  file for the payment system (UTF-8 with BOM, CRLF, so Excel and the payment system both
  read it; text cells made inert for spreadsheets by :mod:`shomei.spreadsheet`), written
  atomically and never over a file.
- ``send-mail``: the outbox over SMTP (:mod:`ra.mailing.mail`).
- ``audit-anchor``: a signed anchor of the audit chain's head (:func:`ra.store.audit.anchor`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ra import lifecycle
from ra.ca_link import link
from ra.ca_link.identity import load_link_identity
from ra.ca_link.stuck import attention_of
from ra.lifecycle import Event, Status
from ra.mailing import mail, texts
from ra.mailing.notify import notify
from ra.party import Party
from ra.settings import RASettings
from ra.store import audit
from ra.store.models import (
    Account,
    Application,
    Certificate,
    FeeEntry,
    ImportRun,
    ImportStatus,
    JobOutcome,
    JobRun,
    JobTrigger,
)
from shomei.errors import AlreadyExists, ConfigError, Conflict, NotFound, ShomeiError
from shomei.spreadsheet import excel_writer

log = logging.getLogger("shomei.ra.jobs")

Factory = sessionmaker[Session]
JobFunction = Callable[[Factory, RASettings, dt.datetime], object]
ACTOR_ID = "scheduler"
# The party the audit log names for this work (ra.party: system / ACTOR_ID).
JOB = Party.job(ACTOR_ID)


# -- rejections ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RejectionSummary:
    processed: int
    lost_races: int  # an admin's undo (却下取消) came first


def process_rejections(
    factory: Factory, settings: RASettings, now: dt.datetime
) -> RejectionSummary:
    """却下待ち → 却下, each with a notice and mail giving the reason, one transaction each."""
    with factory() as session:
        ids = list(
            session.execute(
                select(Application.id)
                .where(Application.status == Status.REJECTION_PENDING)
                .order_by(Application.id)
            ).scalars()
        )
    processed = lost = 0
    for app_id in ids:
        try:
            with factory() as session, session.begin():
                app = session.get(Application, app_id)
                assert app is not None
                reason = app.status_reason or "(理由の記載なし)"
                lifecycle.apply(
                    session,
                    app,
                    Event.PROCESS_REJECTION,
                    actor=JOB.actor,
                    actor_id=JOB.audit_id,
                    now=now,
                )
                account = session.get(Account, app.account_id)
                assert account is not None
                text = texts.application_rejected(
                    name=account.name, application_id=app.id, reason=reason
                )
                notify(
                    session,
                    account,
                    kind="application_rejected",
                    title=text.title,
                    body=text.body,
                    now=now,
                    message_id_domain=settings.mail.message_id_domain,
                    application_id=app.id,
                    footer=texts.signature(settings),
                )
        except Conflict:  # changed meanwhile, or no longer in the status read
            lost += 1
            continue
        processed += 1
    return RejectionSummary(processed, lost)


# -- expiry pre-notices (B5) -----------------------------------------------------------------


@dataclass(frozen=True)
class ExpirySummary:
    notices: int


def renewal_url(settings: RASettings, application_id: int) -> str:
    """The portal page where the holder applies for its next certificate (renewal)."""
    return f"{settings.web.base_url.rstrip('/')}/portal/applications/{application_id}/renew"


def expiry_notices(factory: Factory, settings: RASettings, now: dt.datetime) -> ExpirySummary:
    """B5: one notice (and mail) per certificate and configured day count before expiry.

    When several day counts passed since the last run (the job did not run for a while),
    one notice is sent, for the nearest, and all of them are counted as done.
    """
    days = sorted(set(settings.schedule.expiry_notice_days))
    if not days:
        return ExpirySummary(0)
    horizon = now + dt.timedelta(days=days[-1])
    with factory() as session:
        ids = list(
            session.execute(
                select(Certificate.id)
                .join(Application, Application.id == Certificate.application_id)
                .where(
                    Application.status == Status.ISSUED,
                    Certificate.not_after > now,
                    Certificate.not_after <= horizon,
                )
                .order_by(Certificate.id)
            ).scalars()
        )
    sent = 0
    for cert_id in ids:
        with factory() as session, session.begin():
            cert = session.execute(
                select(Certificate).where(Certificate.id == cert_id).with_for_update()
            ).scalar_one()
            left = cert.not_after - now
            passed = [d for d in days if left <= dt.timedelta(days=d)]
            done = set(cert.expiry_notices_sent or [])
            if not passed or set(passed) <= done:
                continue
            nearest = passed[0]
            app = session.get(Application, cert.application_id)
            assert app is not None
            account = session.get(Account, app.account_id)
            assert account is not None
            text = texts.certificate_expiring(
                name=account.name,
                serial_hex=cert.serial_hex,
                not_after=cert.not_after,
                days=nearest,
                application_id=app.id,
                renewal_url=renewal_url(settings, app.id),
            )
            notify(
                session,
                account,
                kind="certificate_expiring",
                title=text.title,
                body=text.body,
                now=now,
                message_id_domain=settings.mail.message_id_domain,
                application_id=app.id,
                footer=texts.signature(settings),
            )
            cert.expiry_notices_sent = sorted(done | set(passed))
            sent += 1
    return ExpirySummary(sent)


# -- deletion (B6) ---------------------------------------------------------------------------


RUNS_KEPT = dt.timedelta(days=90)  # job_runs and finished import_runs older than this go


@dataclass(frozen=True)
class DeletionSummary:
    archived: int
    keys_destroyed: int
    job_runs_deleted: int = 0
    import_runs_deleted: int = 0


def delete_expired(factory: Factory, settings: RASettings, now: dt.datetime) -> DeletionSummary:
    """B6: destroy the wrapped key and archive certificates revoked or expired before
    ``now - retention``; the rows stay, an audit record says what was done."""
    cutoff = now - settings.schedule.retention
    with factory() as session:
        ids = list(
            session.execute(
                select(Certificate.id)
                .where(
                    Certificate.archived_at.is_(None),
                    or_(Certificate.revoked_at <= cutoff, Certificate.not_after <= cutoff),
                )
                .order_by(Certificate.id)
            ).scalars()
        )
    archived = destroyed = 0
    for cert_id in ids:
        with factory() as session, session.begin():
            cert = session.execute(
                select(Certificate).where(Certificate.id == cert_id).with_for_update()
            ).scalar_one()
            if cert.archived_at is not None:
                continue
            app = session.get(Application, cert.application_id)
            assert app is not None
            had_key = app.wrapped_key is not None
            app.wrapped_key = None
            cert.key_destroyed_at = now
            cert.archived_at = now
            audit.record(
                session,
                actor=JOB.actor,
                actor_id=JOB.audit_id,
                action="archive_certificate",
                object_type="certificate",
                object_id=str(cert.id),
                now=now,
                details={
                    "application": app.id,
                    "serial": cert.serial_hex,
                    "wrapped_key_destroyed": had_key,
                    "why": "revoked"
                    if cert.revoked_at and cert.revoked_at <= cutoff
                    else "expired",
                },
            )
            archived += 1
            destroyed += had_key
    job_runs, import_runs = prune_runs(factory, now)
    return DeletionSummary(archived, destroyed, job_runs, import_runs)


def prune_runs(factory: Factory, now: dt.datetime) -> tuple[int, int]:
    """Delete job runs started, and import runs finished, more than :data:`RUNS_KEPT` ago."""
    cutoff = now - RUNS_KEPT
    with factory() as session, session.begin():
        jobs = session.execute(
            delete(JobRun)
            .where(JobRun.started_at < cutoff)
            .execution_options(synchronize_session=False)
        )
        imports = session.execute(
            delete(ImportRun)
            .where(
                ImportRun.status.in_((ImportStatus.DONE, ImportStatus.FAILED)),
                ImportRun.finished_at < cutoff,
            )
            .execution_options(synchronize_session=False)
        )
        return int(jobs.rowcount), int(imports.rowcount)  # type: ignore[attr-defined]


# -- fee-offset balance export (B11) ---------------------------------------------------------

FEE_HEADER = ("事業所番号", "事業所名", "利用者ID", "相殺額(円)", "件数", "出力ID")


@dataclass(frozen=True)
class FeeExportSummary:
    path: Path | None  # None: nothing to export
    offices: int
    total_yen: int


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _finalize(partial: Path) -> Path:
    final = partial.with_name(partial.name.removesuffix(".partial"))
    try:
        os.link(partial, final)  # fails rather than replace an existing export
    except FileExistsError as exc:
        raise AlreadyExists(
            f"{final} already exists; an export is never overwritten",
            message_ja=f"{final} は既にあります。出力ファイルは上書きしません",
        ) from exc
    partial.unlink()
    _fsync_dir(final.parent)
    return final


def _cannot_write(folder: Path, exc: OSError) -> ConfigError:
    return ConfigError(
        f"cannot write the fee export in {folder}: {exc.strerror}; nothing was marked exported",
        message_ja=f"{folder} に手数料相殺の出力を書き込めません({exc.strerror})。"
        "出力済みの記録はしていません",
        path=str(folder),
    )


def _recover_partials(session: Session, folder: Path) -> None:
    """Finish exports committed before a crash; drop files of exports that never committed."""
    for partial in sorted(folder.glob("*.csv.partial")):
        export_id = partial.name.removesuffix(".csv.partial")
        committed = session.execute(
            select(func.count()).select_from(FeeEntry).where(FeeEntry.exported_in == export_id)
        ).scalar_one()
        if committed:
            _finalize(partial)
        else:
            partial.unlink()


def export_fee_balances(
    factory: Factory, settings: RASettings, now: dt.datetime
) -> FeeExportSummary:
    """B11: one CSV line per office with its unexported balance; entries marked exported.

    The file is first written as ``ID.csv.partial`` (fsync) inside the transaction that marks
    the entries, and renamed to ``ID.csv`` after the commit; a crash in between is finished
    (or undone, if the commit never happened) by the next run, so the payment system never
    sees an export twice or misses one.
    """
    folder = settings.data_dir / "exports"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot_write(folder, exc) from exc
    with factory() as session:
        _recover_partials(session, folder)
    export_id = f"fee-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    partial = folder / f"{export_id}.csv.partial"
    try:
        with factory() as session, session.begin():
            entries = list(
                session.execute(
                    select(FeeEntry)
                    .where(FeeEntry.exported_in.is_(None))
                    .order_by(FeeEntry.id)
                    .with_for_update()
                ).scalars()
            )
            if not entries:
                return FeeExportSummary(None, 0, 0)
            sums: dict[int, list[int]] = {}
            for entry in entries:
                line = sums.setdefault(entry.account_id, [0, 0])
                line[0] += entry.amount_yen
                line[1] += 1
            accounts = {
                a.id: a
                for a in session.execute(select(Account).where(Account.id.in_(sums))).scalars()
            }
            buffer = io.StringIO()
            writer = excel_writer(buffer)
            writer.writerow(FEE_HEADER)
            for account_id in sorted(sums, key=lambda i: accounts[i].office_number or ""):
                acct = accounts[account_id]
                amount, count = sums[account_id]
                writer.writerow(
                    (acct.office_number or "", acct.name, acct.user_id, amount, count, export_id)
                )
            marked = session.execute(
                update(FeeEntry)
                .where(FeeEntry.id.in_([e.id for e in entries]), FeeEntry.exported_in.is_(None))
                .values(exported_in=export_id)
                .execution_options(synchronize_session=False)
            )
            assert marked.rowcount == len(entries)  # type: ignore[attr-defined]
            try:
                with partial.open("x", encoding="utf-8-sig", newline="") as out:
                    out.write(buffer.getvalue())
                    out.flush()
                    os.fsync(out.fileno())
            except OSError as exc:  # disk full, read-only: the marks roll back with it
                raise _cannot_write(folder, exc) from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    final = _finalize(partial)
    return FeeExportSummary(final, len(sums), sum(v[0] for v in sums.values()))


# -- mail, anchor, link ----------------------------------------------------------------------


def send_mail(factory: Factory, settings: RASettings, now: dt.datetime) -> mail.MailSummary:
    return mail.send_outbox(factory, settings, now=now)


@dataclass(frozen=True)
class AnchorSummary:
    seq: int
    head_hash: str


def anchor_audit(factory: Factory, settings: RASettings, now: dt.datetime) -> AnchorSummary:
    """Sign the audit chain's head with the RA link key (daily)."""
    identity = load_link_identity(settings.link)
    with factory() as session, session.begin():
        row = audit.anchor(session, key=identity.key, certificate=identity.certificate, now=now)
        return AnchorSummary(row.seq, row.head_hash)


def dispatch(factory: Factory, settings: RASettings, now: dt.datetime) -> link.DispatchSummary:
    return link.dispatch(factory, settings, now=now)


def import_results(factory: Factory, settings: RASettings, now: dt.datetime) -> object:
    """Offline mode: import the inbox.  Inline mode: finish batches a crash left undelivered."""
    if settings.link.mode == "offline":
        return link.import_inbox(factory, settings, now=now)
    return link.deliver_pending(factory, settings, now=now)


JOBS: Mapping[str, JobFunction] = MappingProxyType(
    {
        "dispatch": dispatch,
        "import-results": import_results,
        "process-rejections": process_rejections,
        "expiry-notices": expiry_notices,
        "deletion": delete_expired,
        "fee-export": export_fee_balances,
        "send-mail": send_mail,
        "audit-anchor": anchor_audit,
    }
)


# -- running a job, recorded -----------------------------------------------------------------

SUMMARY_LIMIT = 2000  # characters of a run's summary kept in job_runs


@dataclass(frozen=True)
class RunBy:
    """Who or what runs a job: recorded with the run."""

    trigger: JobTrigger
    who: str  # the scheduler's lease holder, the operator's login name or the staff user ID

    @classmethod
    def scheduler(cls, holder: str) -> RunBy:
        return cls(JobTrigger.SCHEDULER, holder)

    @classmethod
    def cli(cls, login: str) -> RunBy:
        return cls(JobTrigger.CLI, login)

    @classmethod
    def console(cls, user_id: str) -> RunBy:
        return cls(JobTrigger.CONSOLE, user_id)


def describe(summary: object) -> str:
    """A one-line account of a job's summary, for logs, the CLI and ``job_runs``."""
    if dataclasses.is_dataclass(summary) and not isinstance(summary, type):
        parts = []
        for f in dataclasses.fields(summary):
            value = getattr(summary, f.name)
            if isinstance(value, tuple):
                value = len(value)
            parts.append(f"{f.name}={value}")
        return ", ".join(parts)
    return str(summary)


def error_text(exc: BaseException) -> tuple[str, str]:
    """One line saying what went wrong, in English and Japanese."""
    if isinstance(exc, ShomeiError):
        return exc.message, exc.message_ja
    text = " ".join(str(exc).split())[:300]
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line, line


def _record_start(factory: Factory, name: str, now: dt.datetime, by: RunBy) -> int:
    with factory() as session, session.begin():
        row = JobRun(
            job=name,
            started_at=now,
            trigger=by.trigger,
            ran_by=by.who[:128],
            summary="",
            summary_ja="",
        )
        session.add(row)
        session.flush()
        return row.id


def _record_end(
    factory: Factory,
    run_id: int,
    *,
    finished_at: dt.datetime,
    outcome: JobOutcome,
    summary: str,
    summary_ja: str,
) -> None:
    try:
        with factory() as session, session.begin():
            session.execute(
                update(JobRun)
                .where(JobRun.id == run_id)
                .values(
                    finished_at=finished_at,
                    outcome=outcome,
                    summary=summary[:SUMMARY_LIMIT],
                    summary_ja=summary_ja[:SUMMARY_LIMIT],
                )
            )
    except Exception as exc:  # the job's own outcome matters more than its record
        log.error("the outcome of job run %s could not be recorded: %s", run_id, error_text(exc)[0])


def run_job(
    name: str,
    factory: Factory,
    settings: RASettings,
    *,
    now: dt.datetime,
    by: RunBy,
    function: JobFunction | None = None,
) -> object:
    """Run the job ``name`` once (``function``, default ``JOBS[name]``) and record the run.

    The one way jobs are run: the scheduler, ``shomei ra run-job`` and the console's "run
    now" all call it.  A ``job_runs`` row is written before the job starts (a run whose
    process died stays without outcome) and completed when it ends: ``ok``, ``attention``
    (finished, but left work an operator must bring back: :mod:`ra.ca_link.stuck`) or
    ``failed`` (the error's message).  Returns the job's summary; an error is recorded, then
    raised again.
    """
    if function is None:
        function = JOBS.get(name)
        if function is None:
            raise NotFound(
                f"no job called {name!r} (jobs: {', '.join(sorted(JOBS))})",
                message_ja=f"ジョブ {name!r} はありません({', '.join(sorted(JOBS))})",
                job=name,
            )
    run_id = _record_start(factory, name, now, by)
    began = time.monotonic()

    def finished() -> dt.datetime:
        return now + dt.timedelta(seconds=time.monotonic() - began)

    try:
        summary = function(factory, settings, now)
    except Exception as exc:
        english, japanese = error_text(exc)
        _record_end(
            factory,
            run_id,
            finished_at=finished(),
            outcome=JobOutcome.FAILED,
            summary=english,
            summary_ja=japanese,
        )
        raise
    attention = attention_of(summary)
    text = describe(summary)
    _record_end(
        factory,
        run_id,
        finished_at=finished(),
        outcome=JobOutcome.ATTENTION if attention else JobOutcome.OK,
        summary="; ".join([text, *(a.message for a in attention)]),
        summary_ja="; ".join([text, *(a.message_ja for a in attention)]),
    )
    return summary
