"""/healthz and /readyz: the process, the database, the schema and the CRL's nextUpdate."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from crl.reader import load_crl
from ra.store.db import head_revision, upgrade
from ra.web import create_app
from tests.ra.ca_fixture import CaHome, ca_home_fixture  # noqa: F401
from tests.ra.conftest import Database
from tests.ra.web.helpers import Clock
from tests.ra.web.test_publish import _register, _settings


def test_healthz_needs_no_database(tmp_path: Path, ca_home: CaHome, database: Database) -> None:
    settings = _settings(ca_home, database, tmp_path)
    dead = sessionmaker(create_engine(f"sqlite:///{tmp_path / 'gone' / 'no.sqlite'}"))
    client = create_app(settings, session_factory=dead).test_client()
    assert client.get("/healthz").status_code == 200
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json == {
        "ready": False,
        "checks": {"database": {"ok": False, "detail": "OperationalError"}},
    }


def test_ready_then_not_once_the_crl_passes_its_next_update(
    tmp_path: Path, ca_home: CaHome, database: Database, clock: Clock
) -> None:
    settings = _settings(ca_home, database, tmp_path)
    client = create_app(settings, session_factory=database.factory, now=clock).test_client()
    answer = client.get("/readyz")
    assert answer.status_code == 200 and answer.json is not None
    assert answer.json["checks"]["crl"]["detail"] == "no CRL registered yet"
    der = _register(ca_home, database, clock.now)
    next_update = load_crl(der, issuer=ca_home.ca_certificate).next_update
    assert next_update is not None
    assert client.get("/readyz").status_code == 200
    clock.now = next_update + dt.timedelta(seconds=1)
    answer = client.get("/readyz")
    assert answer.status_code == 503 and answer.json is not None
    assert answer.json["checks"]["crl"]["ok"] is False
    assert answer.json["checks"]["schema"]["ok"] is True


def test_not_ready_on_an_old_schema(tmp_path: Path, ca_home: CaHome, database: Database) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    upgrade(url, "0007")
    settings = _settings(ca_home, database, tmp_path)
    client = create_app(settings, session_factory=sessionmaker(create_engine(url))).test_client()
    answer = client.get("/readyz")
    assert answer.status_code == 503 and answer.json is not None
    assert answer.json["checks"]["schema"] == {
        "ok": False,
        "current": "0007",
        "needed": head_revision(),
    }


def test_metrics_show_the_state_of_the_ra(
    tmp_path: Path, ca_home: CaHome, database: Database, clock: Clock
) -> None:
    """/metrics reads the database at the scrape: job runs, the CRL's time left."""
    from ra.store.models import JobOutcome, JobRun, JobTrigger

    settings = _settings(ca_home, database, tmp_path)
    client = create_app(settings, session_factory=database.factory, now=clock).test_client()
    der = _register(ca_home, database, clock.now)
    next_update = load_crl(der, issuer=ca_home.ca_certificate).next_update
    assert next_update is not None
    with database.factory() as s, s.begin():
        for minutes, outcome in ((30, JobOutcome.OK), (20, JobOutcome.FAILED), (10, None)):
            s.add(
                JobRun(
                    job="dispatch",
                    started_at=clock.now - dt.timedelta(minutes=minutes),
                    finished_at=None
                    if outcome is None
                    else clock.now - dt.timedelta(minutes=minutes - 1),
                    outcome=outcome,
                    trigger=JobTrigger.SCHEDULER,
                    ran_by="sched-a",
                )
            )
        s.add(
            JobRun(
                job="send-mail",
                started_at=clock.now - dt.timedelta(days=2),
                finished_at=clock.now - dt.timedelta(days=2),
                outcome=JobOutcome.OK,
                trigger=JobTrigger.CLI,
                ran_by="operator",
            )
        )
    text = client.get("/metrics").get_data(as_text=True)
    assert 'shomei_job_runs_24h{job="dispatch",outcome="ok"} 1.0' in text
    assert 'shomei_job_runs_24h{job="dispatch",outcome="failed"} 1.0' in text
    assert 'shomei_job_runs_24h{job="dispatch",outcome="running"} 1.0' in text
    assert 'job="send-mail",outcome' not in text  # older than a day
    finished = (clock.now - dt.timedelta(minutes=29)).timestamp()
    last = re.search(r'shomei_job_last_success_timestamp_seconds\{job="dispatch"\} (\S+)', text)
    assert last is not None and float(last.group(1)) == pytest.approx(finished)
    left = (next_update - clock.now).total_seconds()
    assert f"shomei_crl_next_update_seconds {left}" in text
    assert 'shomei_applications{status="issued"} 0.0' in text
