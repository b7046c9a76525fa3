"""Fail-over of the scheduler, with real processes on PostgreSQL.

The web application under gunicorn (two workers) and two ``shomei ra scheduler`` processes on
one PostgreSQL database, every job of the link and the mail every 3 seconds, the lease 6
seconds.  After a while the active scheduler is killed with SIGKILL (no clean-up, its lease
left in the table); the stand-by takes over once the lease has run out.  From ``job_runs``
(every run of every job, ra.tasks.jobs.run_job): each job ran exactly once per period while a
scheduler held the lease — never twice, never skipped — the killed one ran nothing after its
death and the stand-by nothing before, the gap is the lease and no more, and the web workers
ran no job at all.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sqlalchemy import select

from ra.store.models import JobRun, JobTrigger, SchedulerLock
from tests.ra.ca_fixture import CaHome, ca_home_fixture, inline_link_toml  # noqa: F401
from tests.ra.web.live import live_server

PERIOD = 3.0  # seconds between runs of each interval job
LEASE = 6.0  # seconds
JOBS = ("dispatch", "import-results", "process-rejections", "send-mail")
SLACK = 2.0  # seconds a run may start late on a loaded two-core machine
SHOMEI = str(Path(sys.executable).with_name("shomei"))


def _scheduler(settings: Path, holder: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [SHOMEI, "ra", "scheduler", "--settings", str(settings), "--holder", holder],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_the_stand_by_takes_over_and_every_job_runs_once_per_period(
    tmp_path: Path, ca_home: CaHome
) -> None:
    minutes = PERIOD / 60
    schedule = (
        "[ra.schedule]\n"
        f"dispatch_minutes = {minutes}\nimport_minutes = {minutes}\n"
        f"rejection_minutes = {minutes}\nmail_minutes = {minutes}\n"
        f'lock_lease = "{int(LEASE)}s"\n'
    )
    with live_server(tmp_path, "postgresql", extra=inline_link_toml(ca_home) + schedule) as live:
        settings = tmp_path / "ra.toml"
        a = _scheduler(settings, "sched-a", tmp_path / "a.log")
        time.sleep(1.0)
        b = _scheduler(settings, "sched-b", tmp_path / "b.log")
        try:
            deadline = time.monotonic() + 4 * PERIOD + 15
            while time.monotonic() < deadline:  # the web answers meanwhile
                with urllib.request.urlopen(live.url + "/healthz", timeout=10) as answer:  # noqa: S310
                    assert answer.status == 200
                time.sleep(0.5)
            with live.database.factory() as s:
                holder = s.execute(select(SchedulerLock.holder)).scalar_one()
            active, standby = (a, b) if holder == "sched-a" else (b, a)
            survivor = "sched-b" if holder == "sched-a" else "sched-a"
            os.killpg(active.pid, signal.SIGKILL)
            active.wait()
            killed_at = dt.datetime.now(dt.UTC)
            time.sleep(LEASE + 5 * PERIOD + 5)
            assert standby.poll() is None, (tmp_path / "b.log").read_text(errors="replace")
        finally:
            _stop(a)
            _stop(b)
        with live.database.factory() as s:
            runs = list(s.execute(select(JobRun).order_by(JobRun.started_at)).scalars())

    assert runs and {r.trigger for r in runs} == {JobTrigger.SCHEDULER}
    assert {r.ran_by for r in runs} == {holder, survivor}  # no web worker ran a job
    for job in JOBS:
        mine = [r for r in runs if r.job == job]
        before = [r for r in mine if r.ran_by == holder]
        after = [r for r in mine if r.ran_by == survivor]
        assert len(before) >= 4 and len(after) >= 4, (job, len(before), len(after))
        # The killed scheduler ran nothing after its death, the stand-by nothing before it.
        assert max(r.started_at for r in before) < killed_at, job
        assert min(r.started_at for r in after) > killed_at, job
        # Every run but one cut short by the kill finished.
        unfinished = [r for r in mine if r.finished_at is None]
        assert len(unfinished) <= 1 and all(r.ran_by == holder for r in unfinished), job
        # Once per period: consecutive runs of one holder are one period apart, never closer
        # (twice in a period) and never a period further (one skipped).
        for series in (before, after):
            gaps = [
                (later.started_at - earlier.started_at).total_seconds()
                for earlier, later in itertools.pairwise(series)
            ]
            assert all(PERIOD - 0.5 <= g <= PERIOD + SLACK for g in gaps), (job, gaps)
        # The take-over: after the lease ran out, and not much later.
        takeover = (after[0].started_at - before[-1].started_at).total_seconds()
        assert LEASE - PERIOD <= takeover <= LEASE + 2 * PERIOD + SLACK, (job, takeover)
