"""The RA scheduler: APScheduler 3 in one process, a database lease so jobs run exactly once.

``shomei ra scheduler`` starts a :class:`~apscheduler.schedulers.blocking.BlockingScheduler`
with the jobs of :mod:`ra.tasks.jobs` on the timetable of :class:`ra.settings.ScheduleSettings`
(the link and mail jobs every few minutes, the daily jobs at ``daily_at`` Japan time).  Web
workers never run jobs.

Several scheduler processes may be started (for example one per machine, for fail-over);
only the holder of the lease, a :class:`~ra.store.models.SchedulerLock` row, runs jobs.  Every job
run first takes or renews the lease (a row lock, ``SELECT ... FOR UPDATE``; SQLite serialises
writers) and is skipped by a scheduler that does not hold it; a heartbeat renews it every
third of ``lock_lease``.  When the holder dies its lease expires and the first stand-by to
ask takes over.  The jobs are idempotent besides, so a job cut short by a crash is finished
by the next run; work a job cannot finish by itself (:mod:`ra.ca_link.stuck`) is logged as an error
on every run until an operator has brought it back.

Every scheduler process is also the worker of the console's CSV imports of accounts
(:mod:`ra.people.import_runs`): every ``import_poll_seconds`` it takes a queued run, if any, and
carries it out.  That work is not gated by the scheduler's lease: each import run has a lease of
its own, so a stand-by scheduler helps, and no run is carried out twice.

The log (logger ``shomei.ra.scheduler``) says what happened at INFO, one line an event: the
scheduler started (with its timetable) or stopped, the lease taken or lost, a job started and
finished with its summary and duration; a failed job or an unreachable database is one ERROR
line (the traceback of an unexpected error only at DEBUG).  Repeated failures of the lease's
heartbeat are logged once, and again when the database answers.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ra.ca_link.stuck import attention_of
from ra.people import import_runs
from ra.settings import RASettings
from ra.store.models import SchedulerLock
from ra.store.vault import load_vault
from ra.tasks import jobs
from ra.tasks.jobs import JOBS, JobFunction, RunBy, describe
from shomei.clock import JST, utcnow
from shomei.errors import ConfigError, ShomeiError

log = logging.getLogger("shomei.ra.scheduler")

LOCK_NAME = "ra-scheduler"
SHORTEST = 0.05  # minutes between runs of a job at the least (3 s: drills and their tests)
Clock = Callable[[], dt.datetime]


def acquire_lease(
    factory: sessionmaker[Session],
    *,
    holder: str,
    now: dt.datetime,
    lease: dt.timedelta,
    name: str = LOCK_NAME,
) -> bool:
    """Take or renew the lease ``name`` for ``holder``; False while another holds it."""
    try:
        with factory() as session, session.begin():
            row = session.execute(
                select(SchedulerLock).where(SchedulerLock.name == name).with_for_update()
            ).scalar_one_or_none()
            if row is None:
                session.add(SchedulerLock(name=name, holder=holder, expires_at=now + lease))
                session.flush()
                return True
            if row.holder != holder and row.expires_at > now:
                return False
            if row.holder != holder:
                log.warning("lease %s taken over from %s by %s", name, row.holder, holder)
            row.holder = holder
            row.expires_at = now + lease
            return True
    except IntegrityError:
        return False  # another scheduler inserted the row first


def release_lease(factory: sessionmaker[Session], *, holder: str, name: str = LOCK_NAME) -> None:
    """Give the lease up at a clean shutdown, so a stand-by takes over at once."""
    with factory() as session, session.begin():
        session.execute(
            delete(SchedulerLock).where(SchedulerLock.name == name, SchedulerLock.holder == holder)
        )


@dataclass(frozen=True)
class JobSpec:
    name: str
    function: JobFunction
    trigger: BaseTrigger


def _daily(at: str) -> CronTrigger:
    try:
        hour, minute = (int(p) for p in at.split(":"))
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError(at)
    except ValueError as exc:
        raise ConfigError(
            f"ra.schedule.daily_at must be HH:MM, not {at!r}",
            message_ja=f"ra.schedule.daily_at は HH:MM 形式です({at!r})",
        ) from exc
    return CronTrigger(hour=hour, minute=minute, timezone=JST)


def timetable(settings: RASettings) -> list[JobSpec]:
    """When each job of :data:`ra.tasks.jobs.JOBS` runs, from ``settings.schedule``."""
    s = settings.schedule

    def every(minutes: float) -> IntervalTrigger:
        if minutes < SHORTEST:
            raise ConfigError(
                f"ra.schedule intervals must be at least {SHORTEST} minutes (3 seconds)",
                message_ja=f"ra.schedule の間隔は {SHORTEST} 分(3 秒)以上です",
            )
        return IntervalTrigger(seconds=round(minutes * 60, 3), timezone=dt.UTC)

    daily = _daily(s.daily_at)
    plan = {
        "dispatch": every(s.dispatch_minutes),
        "import-results": every(s.import_minutes),
        "process-rejections": every(s.rejection_minutes),
        "send-mail": every(s.mail_minutes),
        "expiry-notices": daily,
        "deletion": daily,
        "fee-export": daily,
        "audit-anchor": daily,
    }
    return [JobSpec(name, JOBS[name], trigger) for name, trigger in plan.items()]


def run_job(
    name: str,
    factory: sessionmaker[Session],
    settings: RASettings,
    *,
    now: dt.datetime,
    by: RunBy,
) -> object:
    """Run the job ``name`` once (``shomei ra run-job``, "run now"), recorded in ``job_runs``."""
    return jobs.run_job(name, factory, settings, now=now, by=by)


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Gate:
    """Runs a job only while this scheduler holds the lease; logs each change of the lease."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        holder: str,
        lease: dt.timedelta,
        clock: Clock = utcnow,
    ) -> None:
        self.factory = factory
        self.holder = holder
        self.lease = lease
        self.clock = clock
        self.holding: bool | None = None  # None: not asked yet
        self.unreachable = False

    def holds(self) -> bool:
        try:
            held = acquire_lease(
                self.factory, holder=self.holder, now=self.clock(), lease=self.lease
            )
        except Exception as exc:  # the database is down: do not run jobs, try again next time
            if not self.unreachable:
                log.error("cannot reach the database to renew the lease: %s", _message(exc))
                log.debug("lease failure details", exc_info=exc)
            self.unreachable = True
            held = False
        else:
            if self.unreachable:
                log.info("the database answers again")
            self.unreachable = False
        if held and not self.holding:
            log.info("lease %s taken by %s: this scheduler runs the jobs", LOCK_NAME, self.holder)
        elif not held and self.holding is not False:
            what = "lost" if self.holding else "held elsewhere"
            log.info("lease %s %s: %s stands by", LOCK_NAME, what, self.holder)
        self.holding = held
        return held

    def wrap(self, spec: JobSpec, settings: RASettings) -> Callable[[], None]:
        def run() -> None:
            if not self.holds():
                log.debug("%s: stand-by, %s skipped", self.holder, spec.name)
                return
            log.info("job %s started", spec.name)
            started = time.monotonic()
            try:
                summary = jobs.run_job(
                    spec.name,
                    self.factory,
                    settings,
                    now=self.clock(),
                    by=RunBy.scheduler(self.holder),
                    function=spec.function,
                )
            except ShomeiError as exc:
                log.error("job %s failed: %s", spec.name, exc.message)
                log.debug("job %s failure details", spec.name, exc_info=exc)
                return
            except Exception as exc:
                log.error("job %s failed: %s", spec.name, _message(exc))
                log.debug("job %s failure details", spec.name, exc_info=exc)
                return
            seconds = time.monotonic() - started
            log.info("job %s finished in %.1f s: %s", spec.name, seconds, describe(summary))
            for item in attention_of(summary):
                # Work the job could not finish: said as an error every run until it is.
                log.error("job %s left work stuck: %s", spec.name, item.message)

        return run


class ImportWorker:
    """Carries out the console's queued CSV imports (:mod:`ra.people.import_runs`)."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: RASettings,
        *,
        holder: str,
        clock: Clock = utcnow,
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.holder = holder
        self.clock = clock
        self.failing = False

    def __call__(self) -> None:
        try:
            if not import_runs.waiting(self.factory, now=self.clock()):
                self._ok()
                return
            vault = load_vault(self.settings.secrets_key_file)
            for run_id, status in import_runs.work(
                self.factory,
                holder=self.holder,
                vault=vault,
                data_dir=self.settings.data_dir,
                clock=self.clock,
                lease=self.settings.schedule.lock_lease,
            ):
                log.info("account import %s: %s", run_id, status.value)
        except Exception as exc:  # the database is down, the secrets key is missing...
            if not self.failing:
                log.error("account imports cannot run: %s", _message(exc))
                log.debug("account import failure details", exc_info=exc)
            self.failing = True
            return
        self._ok()

    def _ok(self) -> None:
        if self.failing:
            log.info("account imports run again")
        self.failing = False


def _message(exc: BaseException) -> str:
    return jobs.error_text(exc)[0]


def _when(trigger: BaseTrigger) -> str:
    if isinstance(trigger, IntervalTrigger):
        return f"every {trigger.interval.total_seconds() / 60:g} min"
    if isinstance(trigger, CronTrigger):
        fields = {f.name: str(f) for f in trigger.fields}
        return f"daily at {int(fields['hour']):02d}:{int(fields['minute']):02d} JST"
    return str(trigger)


def build_scheduler(
    scheduler: BaseScheduler,
    factory: sessionmaker[Session],
    settings: RASettings,
    *,
    holder: str,
    clock: Clock = utcnow,
    jobs: list[JobSpec] | None = None,
    heartbeat: dt.timedelta | None = None,
) -> Gate:
    """Add ``jobs`` (default: :func:`timetable`) and the lease heartbeat to ``scheduler``."""
    lease = settings.schedule.lock_lease
    gate = Gate(factory, holder=holder, lease=lease, clock=clock)
    for spec in jobs if jobs is not None else timetable(settings):
        scheduler.add_job(
            gate.wrap(spec, settings),
            trigger=spec.trigger,
            id=spec.name,
            name=spec.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=60,
        )
    seconds = settings.schedule.import_poll_seconds
    if seconds < 1:
        raise ConfigError(
            "ra.schedule.import_poll_seconds must be at least 1",
            message_ja="ra.schedule.import_poll_seconds は 1 以上です",
        )
    scheduler.add_job(
        ImportWorker(factory, settings, holder=holder, clock=clock),
        trigger=IntervalTrigger(seconds=seconds, timezone=dt.UTC),
        id="account-imports",
        name="account-imports",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=60,
    )
    beat = heartbeat or lease / 3
    scheduler.add_job(
        gate.holds,
        trigger=IntervalTrigger(seconds=beat.total_seconds(), timezone=dt.UTC),
        id="lease-heartbeat",
        max_instances=1,
        coalesce=True,
        next_run_time=clock(),
    )
    return gate


def run_scheduler(settings: RASettings, *, holder: str | None = None) -> None:
    """``shomei ra scheduler``: run until SIGINT or SIGTERM; give the lease up when stopped."""
    import signal

    from apscheduler.schedulers.blocking import BlockingScheduler

    from ra.store.db import open_database, session_factory

    engine = open_database(settings.database_url)
    factory = session_factory(engine)
    holder = holder or default_holder()
    scheduler = BlockingScheduler(timezone=dt.UTC)
    build_scheduler(scheduler, factory, settings, holder=holder)

    def stop(signum: int, _frame: object) -> None:
        log.info("scheduler %s stopping (signal %s)", holder, signum)
        scheduler.shutdown(wait=False)

    # A service manager stops with SIGTERM: leave cleanly so a stand-by takes over at once.
    signal.signal(signal.SIGTERM, stop)
    plan = ", ".join(f"{spec.name} {_when(spec.trigger)}" for spec in timetable(settings))
    plan += f"; account imports every {settings.schedule.import_poll_seconds} s"
    log.info("scheduler %s starting: %s", holder, plan)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        if scheduler.running:
            scheduler.shutdown(wait=False)
    finally:
        try:
            release_lease(factory, holder=holder)
            log.info("scheduler %s stopped; lease released", holder)
        except ShomeiError as exc:
            log.error("scheduler %s stopped; the lease could not be released: %s", holder, exc)
        engine.dispose()


__all__: list[str] = [
    "Gate",
    "ImportWorker",
    "JobSpec",
    "acquire_lease",
    "build_scheduler",
    "describe",
    "release_lease",
    "run_job",
    "run_scheduler",
    "timetable",
]
