"""The scheduler's lease: two schedulers, only one runs the jobs; a stand-by takes over."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, select

from ra.settings import RASettings
from ra.store.db import make_engine, session_factory
from ra.store.models import SchedulerLock
from ra.tasks.jobs import JOBS
from ra.tasks.scheduler import (
    Gate,
    JobSpec,
    acquire_lease,
    build_scheduler,
    release_lease,
    timetable,
)
from shomei.errors import ConfigError, Refused
from tests.ra.ca_fixture import CaHome, ca_home_fixture, ra_settings  # noqa: F401
from tests.ra.conftest import Database
from tests.ra_profile import RA_REQUIRED

LEASE = dt.timedelta(seconds=1.5)


def test_the_lease_is_held_renewed_and_taken_over_only_after_expiry(
    database: Database, now: dt.datetime
) -> None:
    f = database.factory
    assert acquire_lease(f, holder="a", now=now, lease=LEASE)
    assert not acquire_lease(f, holder="b", now=now + dt.timedelta(seconds=1), lease=LEASE)
    assert acquire_lease(f, holder="a", now=now + dt.timedelta(seconds=1), lease=LEASE)  # renew
    assert not acquire_lease(f, holder="b", now=now + dt.timedelta(seconds=2), lease=LEASE)
    later = now + dt.timedelta(seconds=3)  # a's renewed lease ran out at now + 2.5 s
    assert acquire_lease(f, holder="b", now=later, lease=LEASE)
    assert not acquire_lease(f, holder="a", now=later, lease=LEASE)
    release_lease(f, holder="a")  # not the holder: changes nothing
    assert not acquire_lease(f, holder="a", now=later, lease=LEASE)
    release_lease(f, holder="b")
    assert acquire_lease(f, holder="a", now=later, lease=LEASE)


def _scheduler(
    database: Database, settings: RASettings, holder: str, runs: list[tuple[str, float]]
) -> tuple[BackgroundScheduler, Engine]:
    lock = threading.Lock()

    def tick(factory: object, settings: object, now: dt.datetime) -> str:
        with lock:
            runs.append((holder, time.monotonic()))
        return holder

    engine = make_engine(database.url)
    factory = session_factory(engine)
    scheduler = BackgroundScheduler(timezone=dt.UTC)
    spec = JobSpec("tick", tick, IntervalTrigger(seconds=0.2, timezone=dt.UTC))
    build_scheduler(
        scheduler,
        factory,
        settings,
        holder=holder,
        clock=lambda: dt.datetime.now(dt.UTC),
        jobs=[spec],
        heartbeat=dt.timedelta(seconds=0.3),
    )
    return scheduler, engine


def test_two_schedulers_only_one_runs_the_jobs_and_the_other_takes_over(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    settings = ra_settings(ca_home, database.url, tmp_path / "d", lock_lease=LEASE)
    runs: list[tuple[str, float]] = []
    first, first_engine = _scheduler(database, settings, "first", runs)
    second, second_engine = _scheduler(database, settings, "second", runs)
    first.start()
    time.sleep(0.3)
    second.start()
    try:
        time.sleep(1.5)
        assert {h for h, _ in runs} == {"first"} and len(runs) >= 4
        first.shutdown(wait=True)  # it dies without giving the lease up
        died = time.monotonic()
        deadline = died + 5
        while time.monotonic() < deadline and not any(h == "second" for h, _ in runs):
            time.sleep(0.1)
    finally:
        if first.running:
            first.shutdown(wait=True)
        second.shutdown(wait=True)
        first_engine.dispose()
        second_engine.dispose()
    taken_over = [t for h, t in runs if h == "second"]
    assert taken_over, "the stand-by never took over"
    assert min(taken_over) - died >= 0.5  # only after the lease ran out
    assert all(t <= died for h, t in runs if h == "first")


def test_a_failing_job_is_logged_and_the_scheduler_goes_on(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(factory: object, settings: object, now: dt.datetime) -> None:
        raise Refused("nothing to do today", message_ja="本日は処理なし")

    gate = Gate(database.factory, holder="solo", lease=LEASE)
    spec = JobSpec("broken", broken, IntervalTrigger(minutes=1))
    with caplog.at_level(logging.ERROR, logger="shomei.ra.scheduler"):
        gate.wrap(spec, None)()  # type: ignore[arg-type]
    assert "job broken failed: nothing to do today" in caplog.text
    other = Gate(database.factory, holder="other", lease=LEASE)
    ran: list[int] = []
    other.wrap(JobSpec("x", lambda *_: ran.append(1), IntervalTrigger(minutes=1)), None)()  # type: ignore[arg-type]
    assert ran == []  # "solo" holds the lease


def test_timetable_covers_every_job(ca_home: CaHome, tmp_path: Path) -> None:
    settings = ra_settings(ca_home, "sqlite://", tmp_path)
    specs = timetable(settings)
    assert sorted(s.name for s in specs) == sorted(JOBS)
    daily = next(s for s in specs if s.name == "fee-export").trigger
    assert "hour='2'" in str(daily) and "minute='0'" in str(daily)
    with pytest.raises(ConfigError):
        timetable(ra_settings(ca_home, "sqlite://", tmp_path, daily_at="25:00"))
    with pytest.raises(ConfigError):
        timetable(ra_settings(ca_home, "sqlite://", tmp_path, mail_minutes=0))


def test_the_scheduler_command_holds_the_lease_and_gives_it_up_on_sigterm(
    database: Database, tmp_path: Path
) -> None:
    toml = tmp_path / "ra.toml"
    toml.write_text(
        f'[ra]\ndatabase_url = "{database.url}"\ndata_dir = "{tmp_path / "data"}"\n{RA_REQUIRED}\n',
        encoding="utf-8",
    )
    repo = Path(__file__).resolve().parents[3]
    code = "from cli.ra_jobs_commands import scheduler_command; scheduler_command()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--settings", str(toml), "--holder", "proc-1"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        holder = None
        while time.monotonic() < deadline and holder is None:
            time.sleep(0.2)
            with database.factory() as s:
                holder = s.execute(select(SchedulerLock.holder)).scalar_one_or_none()
        assert holder == "proc-1"
        now = dt.datetime.now(dt.UTC)
        assert not acquire_lease(database.factory, holder="other", now=now, lease=LEASE)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output
    with database.factory() as s:
        assert s.execute(select(SchedulerLock)).scalar_one_or_none() is None


def test_the_gate_logs_each_event_once_at_info(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    @dataclasses.dataclass(frozen=True)
    class Summary:
        processed: int
        items: tuple[str, ...]

    def job(factory: object, settings: object, now: dt.datetime) -> Summary:
        return Summary(2, ("a", "b"))

    def crash(factory: object, settings: object, now: dt.datetime) -> None:
        raise KeyError("boom")

    gate = Gate(database.factory, holder="solo", lease=LEASE)
    other = Gate(database.factory, holder="other", lease=LEASE)
    with caplog.at_level(logging.INFO, logger="shomei.ra.scheduler"):
        gate.wrap(JobSpec("tick", job, IntervalTrigger(minutes=1)), None)()  # type: ignore[arg-type]
        gate.wrap(JobSpec("tick", job, IntervalTrigger(minutes=1)), None)()  # type: ignore[arg-type]
        gate.wrap(JobSpec("crash", crash, IntervalTrigger(minutes=1)), None)()  # type: ignore[arg-type]
        other.holds()
        other.holds()
    lines = [f"{r.levelname} {r.getMessage()}" for r in caplog.records]
    assert lines.count("INFO lease ra-scheduler taken by solo: this scheduler runs the jobs") == 1
    assert lines.count("INFO job tick started") == 2
    finished = [line for line in lines if line.startswith("INFO job tick finished in ")]
    assert len(finished) == 2 and finished[0].endswith(" s: processed=2, items=2")
    assert "ERROR job crash failed: KeyError: 'boom'" in lines
    assert lines.count("INFO lease ra-scheduler held elsewhere: other stands by") == 1
    assert all(r.exc_info is None for r in caplog.records if r.levelno >= logging.INFO)


def test_an_unreachable_database_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'gone.sqlite'}")
    gate = Gate(session_factory(engine), holder="solo", lease=LEASE)
    with caplog.at_level(logging.INFO, logger="shomei.ra.scheduler"):
        assert not gate.holds() and not gate.holds() and not gate.holds()
    engine.dispose()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "cannot reach the database to renew the lease: there is no RA database" in (
        errors[0].getMessage()
    )


@pytest.mark.parametrize("verbose", [False, True])
def test_the_scheduler_logs_events_without_third_party_noise(
    database: Database, tmp_path: Path, verbose: bool
) -> None:
    toml = tmp_path / "ra.toml"
    toml.write_text(
        f'[ra]\ndatabase_url = "{database.url}"\ndata_dir = "{tmp_path / "data"}"\n{RA_REQUIRED}\n',
        encoding="utf-8",
    )
    repo = Path(__file__).resolve().parents[3]
    args = ["-v"] if verbose else []
    holder_args = ("--holder", "logged")
    code = "import sys; from cli.main import main; main(sys.argv[1:])"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            *args,
            "ra",
            "scheduler",
            "--settings",
            str(toml),
            *holder_args,
        ],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        holder = None
        while time.monotonic() < deadline and holder is None:
            time.sleep(0.2)
            with database.factory() as s:
                holder = s.execute(select(SchedulerLock.holder)).scalar_one_or_none()
        assert holder == "logged"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    # One JSON object a line after the first (the start line for a person at the terminal).
    events = [json.loads(line) for line in err.splitlines()[1:]]
    said = [(e["level"], e["logger"], e["message"]) for e in events]
    starting = [
        m for _l, _n, m in said if m.startswith("scheduler logged starting: dispatch every 10 min")
    ]
    assert starting and "daily at 02:00 JST" in starting[0], err
    taken = "lease ra-scheduler taken by logged: this scheduler runs the jobs"
    assert ("INFO", "shomei.ra.scheduler", taken) in said
    assert ("INFO", "shomei.ra.scheduler", "scheduler logged stopped; lease released") in said
    for noise in ("apscheduler", "sqlalchemy", "DEBUG psycopg", "Traceback"):
        assert noise not in err, err
    assert all(e["time"][:4].isdigit() for e in events), err  # each line timed
