"""The ways back of docs/batch-link-operations.md, on SQLite and PostgreSQL.

- inline: the CA crashed while signing; the next dispatch finishes the batch (before, it was
  reported "stuck" for ever and the job exited 0);
- the CA operator abandons a batch: the certificates already signed reach the RA, the job
  names the abandoned applications and exits 2, ``shomei ra re-request`` (audited) sends them
  again, and each request ends with exactly one certificate;
- offline: a crashed ``sign-batch`` is finished by ``shomei ca resume-batch``; a lost outbox
  file is written again by ``shomei ra resend-batch``;
- the scheduler logs work left stuck as an error.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from click.testing import CliRunner
from sqlalchemy import select

import ca.issuebatch
from ca.recovery import abandon_batch
from cli.main import main
from ra.ca_link import link
from ra.ca_link.recovery import rerequest_batch
from ra.lifecycle import Applicant, Status
from ra.party import Party, party_of
from ra.store.models import AccountKind, Application, AuditRecord, CaBatch
from ra.tasks import jobs
from ra.tasks.scheduler import Gate, JobSpec
from shomei.errors import NotFound, Refused
from tests.ra import factories
from tests.ra.ca_fixture import CaHome, ca_home_fixture, open_test_ca, ra_settings  # noqa: F401
from tests.ra.ca_link.test_link import requested, status_of
from tests.ra.ca_link.test_link_offline import carry
from tests.ra.conftest import Database
from tests.ra.recovery_fixture import (
    check_ca_and_ra,
    ledger_facts,
    private_ca_home,
    write_ra_toml,
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class _Crash(BaseException):
    """The CA process "dies" here (what a kill leaves: what was recorded, nothing else)."""


def _crash_after(monkeypatch: pytest.MonkeyPatch, signatures: int) -> None:
    real = ca.issuebatch.sign_prepared
    done = [0]

    def sign_prepared(*args: Any, **kwargs: Any) -> Any:
        if done[0] >= signatures:
            raise _Crash("the CA process died")
        done[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(ca.issuebatch, "sign_prepared", sign_prepared)


def _apps(database: Database, n: int) -> list[int]:
    now = _now()
    with database.factory() as s, s.begin():
        return [requested(s, now=now, email=f"r{i}@example.jp") for i in range(n)]


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def test_inline_crash_while_signing_is_finished_by_the_next_dispatch(
    database: Database, ca_home: CaHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = private_ca_home(ca_home, tmp_path / "ca")
    settings = ra_settings(ca, database.url, tmp_path / "data")
    ids = _apps(database, 4)
    with monkeypatch.context() as patch:
        _crash_after(patch, 2)
        with pytest.raises(_Crash):
            link.dispatch(database.factory, settings, now=_now())
    with database.factory() as s:
        assert {status_of(s, i) for i in ids} == {Status.AWAITING_ISSUANCE}
    facts = ledger_facts(ca)
    assert facts.unfinished == 1 and sum(len(v) for v in facts.signed.values()) == 2
    again = link.dispatch(database.factory, settings, now=_now())
    assert again.batch_id is None and not again.attention
    (imported,) = again.imported
    assert imported.issued == 4
    check_ca_and_ra(database, settings, ca, ids)


def test_an_abandoned_batch_is_named_by_the_job_and_re_requested(
    database: Database, ca_home: CaHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = private_ca_home(ca_home, tmp_path / "ca")
    settings = ra_settings(ca, database.url, tmp_path / "data")
    toml = str(write_ra_toml(settings, tmp_path / "ra.toml"))
    ids = _apps(database, 3)
    with monkeypatch.context() as patch:
        _crash_after(patch, 1)
        with pytest.raises(_Crash):
            link.dispatch(database.factory, settings, now=_now())
    with database.factory() as s:
        (batch_id,) = s.execute(select(CaBatch.batch_id)).scalars()
    # The CA operator abandons the batch (inline: the result stays in the CA's results/).
    with open_test_ca(ca) as opened:
        answer = abandon_batch(opened, batch_id, now=_now())
    assert answer.how == "abandoned"
    job = _run("ra", "run-job", "dispatch", "--settings", toml)
    assert job.exit_code == 2, job.output
    (line,) = job.stderr.strip().splitlines()
    assert "left work stuck" in line and f"shomei ra re-request {batch_id}" in line
    with database.factory() as s:
        statuses = sorted(status_of(s, i) for i in ids)
    assert statuses.count(Status.ISSUED) == 1  # signed before the crash: delivered
    assert statuses.count(Status.AWAITING_ISSUANCE) == 2
    status = _run("ra", "link-status", "--settings", toml)
    assert status.exit_code == 1 and f"abandoned by the CA: batch {batch_id}" in status.output
    # Still stuck on the next run, and said so again.
    assert _run("ra", "run-job", "dispatch", "--settings", toml).exit_code == 2
    moved = _run("ra", "re-request", batch_id, "--settings", toml)
    assert moved.exit_code == 0, moved.output
    assert "2 application(s)" in moved.output
    with database.factory() as s:
        records = s.execute(
            select(AuditRecord).where(AuditRecord.action == "rerequest_issuance")
        ).scalars()
        assert (
            sorted((r.actor, r.actor_id, r.status_before, r.status_after) for r in records)
            == [("system", "cli:re-request", "awaiting_issuance", "issue_requested")] * 2
        )
    again = _run("ra", "run-job", "dispatch", "--settings", toml)
    assert again.exit_code == 0, again.output
    check_ca_and_ra(database, settings, ca, ids)
    assert _run("ra", "link-status", "--settings", toml).exit_code == 0
    # Nothing is left to re-request now.
    assert _run("ra", "re-request", batch_id, "--settings", toml).exit_code == 2


def test_re_request_refuses_what_it_must(
    database: Database, ca_home: CaHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = private_ca_home(ca_home, tmp_path / "ca")
    settings = ra_settings(ca, database.url, tmp_path / "data", mode="offline")
    ids = _apps(database, 1)
    written = link.dispatch(database.factory, settings, now=_now())
    assert written.batch_id is not None
    admin = Party.operator("test")
    with pytest.raises(NotFound):
        rerequest_batch(database.factory, admin, "no-such-batch", now=_now())
    # The CA has not answered: it may still sign the batch, so it is not re-requested.
    with pytest.raises(Refused, match="resume-batch"):
        rerequest_batch(database.factory, admin, written.batch_id, now=_now())
    with database.factory() as s, s.begin():
        staff = factories.account(s, kind=AccountKind.STAFF, now=_now())
    with database.factory() as s:
        staff = s.get(type(staff), staff.id)
        with pytest.raises(Refused):
            rerequest_batch(database.factory, party_of(staff), written.batch_id, now=_now())
    with database.factory() as s:
        assert status_of(s, ids[0]) is Status.AWAITING_ISSUANCE


def test_offline_crashed_sign_batch_is_finished_by_resume_batch(
    database: Database, ca_home: CaHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = private_ca_home(ca_home, tmp_path / "ca")
    settings = ra_settings(ca, database.url, tmp_path / "data", mode="offline")
    ids = _apps(database, 3)
    (request,) = jobs.dispatch(database.factory, settings, _now()).written
    shares = [arg for p in ca.shares for arg in ("--share-file", str(p))]
    out = tmp_path / "result.p7m"
    with monkeypatch.context() as patch:
        _crash_after(patch, 1)
        with pytest.raises(_Crash):
            CliRunner().invoke(
                main,
                ["ca", "sign-batch", str(request), str(out), "--ca-home", str(ca.home), *shares],
                catch_exceptions=False,
            )
    with database.factory() as s:
        (batch_id,) = s.execute(select(CaBatch.batch_id)).scalars()
    status = _run("ca", "status", "--ca-home", str(ca.home))
    assert status.exit_code == 1 and f"shomei ca resume-batch {batch_id}" in status.output
    # The operator follows the guide: no need for the request file, the CA kept a copy.
    assert settings.link.inbox is not None
    settings.link.inbox.mkdir(parents=True, exist_ok=True)
    result = settings.link.inbox / "result.p7m"
    resumed = _run("ca", "resume-batch", batch_id, str(result), "--ca-home", str(ca.home), *shares)
    assert resumed.exit_code == 0, resumed.output
    assert "1 certificate(s) were already signed" in resumed.stderr
    imported = jobs.import_results(database.factory, settings, _now())
    assert not imported.attention  # type: ignore[attr-defined]
    check_ca_and_ra(database, settings, ca, ids)


def test_an_abandoned_offline_batch_goes_round_again(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    ca = private_ca_home(ca_home, tmp_path / "ca")
    settings = ra_settings(ca, database.url, tmp_path / "data", mode="offline")
    toml = str(write_ra_toml(settings, tmp_path / "ra.toml"))
    ids = _apps(database, 2)
    (request,) = jobs.dispatch(database.factory, settings, _now()).written
    with database.factory() as s:
        (batch_id,) = s.execute(select(CaBatch.batch_id)).scalars()
    # The CA operator decides not to sign this batch at all, from the carried file.
    shares = [arg for p in ca.shares for arg in ("--share-file", str(p))]
    assert settings.link.inbox is not None
    settings.link.inbox.mkdir(parents=True, exist_ok=True)
    abandoned = _run(
        "ca",
        "abandon-batch",
        batch_id,
        str(settings.link.inbox / "abandoned.p7m"),
        "--ca-home",
        str(ca.home),
        "--request",
        str(request),
        "--yes",
        *shares,
    )
    assert abandoned.exit_code == 0, abandoned.output
    assert "2 abandoned" in abandoned.output
    job = _run("ra", "run-job", "import-results", "--settings", toml)
    assert job.exit_code == 2 and f"shomei ra re-request {batch_id}" in job.stderr
    assert _run("ra", "re-request", batch_id, "--settings", toml).exit_code == 0
    (again,) = jobs.dispatch(database.factory, settings, _now()).written
    carry(ca, settings, again)
    assert _run("ra", "run-job", "import-results", "--settings", toml).exit_code == 0
    check_ca_and_ra(database, settings, ca, ids)


def test_a_lost_outbox_file_is_written_again(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    ca = private_ca_home(ca_home, tmp_path / "ca")
    settings = ra_settings(ca, database.url, tmp_path / "data", mode="offline")
    toml = str(write_ra_toml(settings, tmp_path / "ra.toml"))
    ids = _apps(database, 1)
    (request,) = jobs.dispatch(database.factory, settings, _now()).written
    original = request.read_bytes()
    request.unlink()  # the operator lost the file (or the stick)
    assert not jobs.dispatch(database.factory, settings, _now()).written  # the marker says sent
    with database.factory() as s:
        (batch_id,) = s.execute(select(CaBatch.batch_id)).scalars()
    listed = _run("ra", "link-status", "--settings", toml)
    assert listed.exit_code == 0 and f"batch {batch_id}" in listed.output
    assert request.name in listed.output
    resent = _run("ra", "resend-batch", batch_id, "--settings", toml)
    assert resent.exit_code == 0, resent.output
    assert request.read_bytes() == original
    carry(ca, settings, request)
    jobs.import_results(database.factory, settings, _now())
    check_ca_and_ra(database, settings, ca, ids)
    refused = _run("ra", "resend-batch", batch_id, "--settings", toml)
    assert refused.exit_code == 2 and "nothing to resend" in refused.stderr


def test_the_scheduler_logs_work_left_stuck_as_an_error(
    database: Database, ca_home: CaHome, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = ra_settings(ca_home, database.url, tmp_path / "data", mode="offline")
    now = _now()
    with database.factory() as s, s.begin():
        app = factories.application(
            s, applicant=Applicant.OFFICE, status=Status.AWAITING_ISSUANCE, now=now
        )
        app.issue_batch_id = "0f0f0f0f-0000-4000-8000-000000000000"
        s.add(
            CaBatch(
                batch_id=app.issue_batch_id,
                kind="issue",
                request_der=b"x",
                request_sha256="0" * 64,
                created_at=now,
                result_sha256="1" * 64,
                imported_at=now,
            )
        )
    gate = Gate(database.factory, holder="solo", lease=dt.timedelta(minutes=2))
    spec = JobSpec("dispatch", jobs.dispatch, IntervalTrigger(minutes=1))
    with caplog.at_level(logging.INFO, logger="shomei.ra.scheduler"):
        gate.wrap(spec, settings)()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "job dispatch left work stuck" in errors[0].getMessage()
    assert "shomei ra re-request 0f0f0f0f-" in errors[0].getMessage()
    with database.factory() as s:
        assert s.get(Application, app.id).status is Status.AWAITING_ISSUANCE  # type: ignore[union-attr]


def test_a_batch_the_inline_ca_cannot_answer_makes_the_job_exit_2_until_fixed(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    ca = private_ca_home(ca_home, tmp_path / "ca")
    settings = ra_settings(ca, database.url, tmp_path / "data")
    toml = str(write_ra_toml(settings, tmp_path / "ra.toml"))
    ids = _apps(database, 2)
    ca_toml = ca.home / "ca.toml"
    pinned = ca_toml.read_text(encoding="utf-8")
    ca_toml.write_text(re.sub(r"(?m)^trusted_ra = .*$", "trusted_ra = []", pinned), "utf-8")
    job = _run("ra", "run-job", "dispatch", "--settings", toml)
    assert job.exit_code == 2, job.output
    (line,) = job.stderr.strip().splitlines()
    assert "could not be finished" in line and "trusted_ra" in line
    with database.factory() as s:
        assert {status_of(s, i) for i in ids} == {Status.AWAITING_ISSUANCE}
    ca_toml.write_text(pinned, encoding="utf-8")  # the operator fixes the cause
    assert _run("ra", "run-job", "dispatch", "--settings", toml).exit_code == 0
    check_ca_and_ra(database, settings, ca, ids)
