"""The scheduled jobs: rejections, expiry notices (B5), deletion (B6), fee export (B11), anchor,
and ``shomei ra run-job``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cli.ra_jobs_commands import run_job_command
from ra.ca_link.identity import load_link_identity
from ra.lifecycle import Applicant, Status
from ra.settings import RASettings
from ra.store import audit
from ra.store.models import (
    Account,
    AccountKind,
    Application,
    AuditRecord,
    Certificate,
    FeeEntry,
    JobOutcome,
    JobRun,
    JobTrigger,
    Notice,
    OutboxMail,
)
from ra.tasks import jobs
from ra.tasks.jobs import RunBy
from ra.tasks.scheduler import run_job
from shomei.errors import NotFound, Refused
from tests.ra import factories
from tests.ra.ca_fixture import CaHome, ca_home_fixture, make_application, ra_settings  # noqa: F401
from tests.ra.conftest import Database
from tests.ra_profile import RA_REQUIRED


def _settings(ca_home: CaHome, database: Database, tmp_path: Path, **schedule: Any) -> RASettings:
    return ra_settings(ca_home, database.url, tmp_path / "data", mode="offline", **schedule)


def _certificate(
    session: Session, *, status: Status, now: dt.datetime, not_after: dt.datetime, **fields: object
) -> Certificate:
    app = make_application(session, status=status, now=now, email="holder@example.jp")
    app.wrapped_key = b"wrapped"
    cert = Certificate(
        application_id=app.id,
        serial_hex=f"{app.id:x}abc",
        der=b"test-row",
        not_before=not_after - dt.timedelta(days=1095),
        not_after=not_after,
        registered_at=now,
        expiry_notices_sent=[],
        **fields,
    )
    session.add(cert)
    session.flush()
    return cert


def test_process_rejections_notifies_with_the_reason(
    database: Database, ca_home: CaHome, tmp_path: Path, now: dt.datetime
) -> None:
    settings = _settings(ca_home, database, tmp_path)
    with database.factory() as s, s.begin():
        app = make_application(s, status=Status.REJECTION_PENDING, now=now, email="a@example.jp")
        app.status_reason = "事業所番号が確認できません"
        rejected = app.id
        untouched = make_application(s, status=Status.AWAITING_ISSUE_REQUEST, now=now).id
    summary = jobs.process_rejections(database.factory, settings, now)
    assert (summary.processed, summary.lost_races) == (1, 0)
    with database.factory() as s:
        assert s.get(Application, rejected).status is Status.REJECTED  # type: ignore[union-attr]
        assert s.get(Application, untouched).status is Status.AWAITING_ISSUE_REQUEST  # type: ignore[union-attr]
        (mail,) = s.execute(select(OutboxMail)).scalars().all()
        assert "事業所番号が確認できません" in mail.body and mail.to_address == "a@example.jp"
        (notice,) = s.execute(select(Notice)).scalars().all()
        assert notice.kind == "application_rejected" and notice.application_id == rejected
    assert jobs.process_rejections(database.factory, settings, now).processed == 0


def test_expiry_notices_once_per_certificate_and_day_count(
    database: Database, ca_home: CaHome, tmp_path: Path, now: dt.datetime
) -> None:
    settings = _settings(ca_home, database, tmp_path, expiry_notice_days=[60, 30, 7])
    with database.factory() as s, s.begin():
        soon = _certificate(
            s, status=Status.ISSUED, now=now, not_after=now + dt.timedelta(days=20)
        ).id
        far = _certificate(
            s, status=Status.ISSUED, now=now, not_after=now + dt.timedelta(days=200)
        ).id
        _certificate(s, status=Status.REVOKED, now=now, not_after=now + dt.timedelta(days=5))
    assert jobs.expiry_notices(database.factory, settings, now).notices == 1
    assert jobs.expiry_notices(database.factory, settings, now).notices == 0
    with database.factory() as s:
        cert = s.get(Certificate, soon)
        assert cert is not None and cert.expiry_notices_sent == [30, 60]
        (notice,) = s.execute(select(Notice)).scalars().all()
        assert "30 日" in notice.title
        far_cert = s.get(Certificate, far)
        assert far_cert is not None and far_cert.expiry_notices_sent == []
    later = now + dt.timedelta(days=14)  # 6 days left: the 7-day notice
    assert jobs.expiry_notices(database.factory, settings, later).notices == 1
    assert jobs.expiry_notices(database.factory, settings, later).notices == 0
    with database.factory() as s:
        assert s.execute(select(func.count()).select_from(OutboxMail)).scalar_one() == 2


def test_deletion_destroys_keys_after_the_retention_and_keeps_the_rows(
    database: Database, ca_home: CaHome, tmp_path: Path, now: dt.datetime
) -> None:
    settings = _settings(ca_home, database, tmp_path, retention=dt.timedelta(days=365))
    old = now - dt.timedelta(days=400)
    with database.factory() as s, s.begin():
        revoked = _certificate(
            s,
            status=Status.REVOKED,
            now=now,
            not_after=now + dt.timedelta(days=300),
            revoked_at=old,
        ).id
        expired = _certificate(s, status=Status.ISSUED, now=now, not_after=old).id
        recent = _certificate(
            s,
            status=Status.REVOKED,
            now=now,
            not_after=now + dt.timedelta(days=300),
            revoked_at=now - dt.timedelta(days=10),
        ).id
        seq_before = s.execute(select(func.count()).select_from(AuditRecord)).scalar_one()
    summary = jobs.delete_expired(database.factory, settings, now)
    assert (summary.archived, summary.keys_destroyed) == (2, 2)
    assert jobs.delete_expired(database.factory, settings, now).archived == 0
    with database.factory() as s:
        for cert_id, gone in ((revoked, True), (expired, True), (recent, False)):
            cert = s.get(Certificate, cert_id)
            assert cert is not None
            app = s.get(Application, cert.application_id)
            assert app is not None
            assert (app.wrapped_key is None) is gone
            assert (cert.archived_at is not None) is gone
            assert (cert.key_destroyed_at is not None) is gone
        actions = s.execute(select(AuditRecord.action).where(AuditRecord.seq > seq_before)).all()
        assert [a for (a,) in actions] == ["archive_certificate"] * 2


def test_fee_export_writes_each_balance_once(
    database: Database, ca_home: CaHome, tmp_path: Path, now: dt.datetime
) -> None:
    settings = _settings(ca_home, database, tmp_path)
    with database.factory() as s, s.begin():
        a = factories.account(s, kind=AccountKind.OFFICE, now=now)
        b = factories.account(s, kind=AccountKind.OFFICE, now=now)
        for account, amount, kind in (
            (a, 5000, "charge"),
            (a, 5000, "charge"),
            (b, 5000, "charge"),
            (b, -5000, "cancel"),
        ):
            s.add(FeeEntry(account_id=account.id, amount_yen=amount, kind=kind, created_at=now))
        s.add(
            FeeEntry(
                account_id=a.id, amount_yen=999, kind="charge", created_at=now, exported_in="old"
            )
        )
        numbers = {a.id: a.office_number, b.id: b.office_number}
    summary = jobs.export_fee_balances(database.factory, settings, now)
    assert summary.path is not None and summary.offices == 2 and summary.total_yen == 10000
    raw = summary.path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = raw.decode("utf-8-sig").split("\r\n")
    assert lines[0].startswith("事業所番号,事業所名")
    rows = {line.split(",")[0]: line.split(",")[3] for line in lines[1:] if line}
    assert rows == {numbers[a.id]: "10000", numbers[b.id]: "0"}
    with database.factory() as s:
        marked = s.execute(
            select(func.count())
            .select_from(FeeEntry)
            .where(FeeEntry.exported_in == summary.path.stem)
        ).scalar_one()
        assert marked == 4
    again = jobs.export_fee_balances(database.factory, settings, now)
    assert again.path is None and again.offices == 0
    assert [p.name for p in (tmp_path / "data" / "exports").iterdir()] == [summary.path.name]


def test_fee_export_makes_formula_cells_inert(
    database: Database, ca_home: CaHome, tmp_path: Path, now: dt.datetime
) -> None:
    """An office name (or any text) that a spreadsheet would run as a formula is written as
    text; amounts stay numbers, negative ones too."""
    import csv
    import io

    settings = _settings(ca_home, database, tmp_path)
    attack = "=cmd|' /C calc'!A0"
    with database.factory() as s, s.begin():
        a = factories.account(s, kind=AccountKind.OFFICE, now=now)
        a.name = attack
        b = factories.account(s, kind=AccountKind.OFFICE, now=now)
        b.name = "+1+1"
        s.add(FeeEntry(account_id=a.id, amount_yen=5000, kind="charge", created_at=now))
        s.add(FeeEntry(account_id=b.id, amount_yen=-5000, kind="cancel", created_at=now))
    summary = jobs.export_fee_balances(database.factory, settings, now)
    assert summary.path is not None
    rows = list(csv.reader(io.StringIO(summary.path.read_text(encoding="utf-8-sig"))))
    names = {row[1]: row[3] for row in rows[1:]}
    assert names == {"'" + attack: "5000", "'+1+1": "-5000"}
    assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row)


def test_fee_export_finishes_or_drops_a_partial_file_after_a_crash(
    database: Database, ca_home: CaHome, tmp_path: Path, now: dt.datetime
) -> None:
    settings = _settings(ca_home, database, tmp_path)
    exports = tmp_path / "data" / "exports"
    exports.mkdir(parents=True)
    with database.factory() as s, s.begin():
        a = factories.account(s, kind=AccountKind.OFFICE, now=now)
        s.add(
            FeeEntry(
                account_id=a.id,
                amount_yen=5000,
                kind="charge",
                created_at=now,
                exported_in="fee-committed",
            )
        )
    (exports / "fee-committed.csv.partial").write_text("committed\r\n", encoding="utf-8-sig")
    (exports / "fee-never.csv.partial").write_text("rolled back\r\n", encoding="utf-8-sig")
    assert jobs.export_fee_balances(database.factory, settings, now).path is None
    assert sorted(p.name for p in exports.iterdir()) == ["fee-committed.csv"]
    (exports / "fee-again.csv").write_text("x", encoding="utf-8")
    (exports / "fee-again.csv.partial").write_text("y", encoding="utf-8")
    with database.factory() as s, s.begin():
        s.add(
            FeeEntry(
                account_id=a.id,
                amount_yen=1,
                kind="charge",
                created_at=now,
                exported_in="fee-again",
            )
        )
    with pytest.raises(Refused):
        jobs.export_fee_balances(database.factory, settings, now)
    assert (exports / "fee-again.csv").read_text(encoding="utf-8") == "x"


def test_audit_anchor_signs_the_head(
    database: Database, ca_home: CaHome, tmp_path: Path, now: dt.datetime
) -> None:
    settings = _settings(ca_home, database, tmp_path)
    with database.factory() as s, s.begin():
        make_application(s, status=Status.REJECTION_PENDING, now=now)
    jobs.process_rejections(database.factory, settings, now)
    summary = jobs.anchor_audit(database.factory, settings, now)
    assert summary.seq == 1
    with database.factory() as s:
        report = audit.verify(s, trusted=[load_link_identity(settings.link).certificate])
        assert report.anchors == 1 and report.head_hash == summary.head_hash
        with pytest.raises(Exception, match="unknown key"):
            audit.verify(s, trusted=[])


def test_run_job_by_name_and_its_command(
    database: Database, ca_home: CaHome, tmp_path: Path, now: dt.datetime
) -> None:
    settings = _settings(ca_home, database, tmp_path)
    with pytest.raises(NotFound):
        run_job("no-such-job", database.factory, settings, now=now, by=RunBy.cli("tester"))
    with database.factory() as s, s.begin():
        make_application(s, status=Status.REJECTION_PENDING, now=now, applicant=Applicant.OFFICE)
    toml = tmp_path / "ra.toml"
    toml.write_text(
        f'[ra]\ndatabase_url = "{database.url}"\ndata_dir = "{tmp_path / "data"}"\n{RA_REQUIRED}\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    outcome = runner.invoke(run_job_command, ["process-rejections", "--settings", str(toml)])
    assert outcome.exit_code == 0, outcome.output
    assert "process-rejections: processed=1, lost_races=0" in outcome.output
    from cli.main import main

    through_shomei = runner.invoke(main, ["ra", "run-job", "send-mail", "--settings", str(toml)])
    assert through_shomei.exit_code == 0, through_shomei.output
    assert "send-mail: sent=0, failed=0, remaining=0" in through_shomei.output
    outcome = runner.invoke(run_job_command, ["nope", "--settings", str(toml)])
    assert outcome.exit_code == 2
    outcome = runner.invoke(run_job_command, ["audit-anchor", "--settings", str(toml)])
    assert outcome.exit_code == 2 and "ra.link" in outcome.output  # no link key configured
    with database.factory() as s:
        assert s.execute(select(func.count()).select_from(Account)).scalar_one() == 1
        # Every run at the command line is recorded, the failed one with its message.
        runs = {r.job: r for r in s.execute(select(JobRun)).scalars()}
    assert set(runs) == {"process-rejections", "send-mail", "audit-anchor"}
    assert all(r.trigger is JobTrigger.CLI and r.finished_at for r in runs.values())
    assert runs["process-rejections"].outcome is JobOutcome.OK
    assert runs["process-rejections"].summary == "processed=1, lost_races=0"
    assert runs["audit-anchor"].outcome is JobOutcome.FAILED
    assert "ra.link" in runs["audit-anchor"].summary and runs["audit-anchor"].summary_ja


def test_an_undo_of_the_rejection_before_the_job_reaches_it_wins(
    database: Database, ca_home: CaHome, tmp_path: Path, now: dt.datetime
) -> None:
    from ra import lifecycle
    from ra.lifecycle import Actor, Event

    settings = _settings(ca_home, database, tmp_path)
    with database.factory() as s, s.begin():
        undone = make_application(s, status=Status.REJECTION_PENDING, now=now, email="u@x.jp").id
        processed = make_application(s, status=Status.REJECTION_PENDING, now=now).id
    calls = 0

    def factory_with_an_admin_in_between() -> Session:
        nonlocal calls
        calls += 1
        if calls == 2:  # the job has listed the 却下待ち; an admin undoes one of them now
            with database.factory() as s, s.begin():
                app = s.get(Application, undone)
                assert app is not None
                lifecycle.apply(
                    s, app, Event.UNDO_REJECTION, actor=Actor.ADMIN, actor_id="admin", now=now
                )
        return database.factory()

    summary = jobs.process_rejections(factory_with_an_admin_in_between, settings, now)  # type: ignore[arg-type]
    assert (summary.processed, summary.lost_races) == (1, 1)
    with database.factory() as s:
        assert s.get(Application, undone).status is Status.AWAITING_ISSUE_REQUEST  # type: ignore[union-attr]
        assert s.get(Application, processed).status is Status.REJECTED  # type: ignore[union-attr]
        assert s.execute(select(func.count()).select_from(OutboxMail)).scalar_one() == 0


def test_fee_export_into_an_unwritable_folder_marks_nothing(
    database: Database, ca_home: CaHome, tmp_path: Path, now: dt.datetime
) -> None:
    from shomei.errors import ConfigError

    settings = _settings(ca_home, database, tmp_path)
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    (tmp_path / "data" / "exports").write_text("a file where the folder should be")
    with database.factory() as s, s.begin():
        a = factories.account(s, kind=AccountKind.OFFICE, now=now)
        s.add(FeeEntry(account_id=a.id, amount_yen=5000, kind="charge", created_at=now))
    with pytest.raises(ConfigError, match="cannot write the fee export in"):
        jobs.export_fee_balances(database.factory, settings, now)
    with database.factory() as s:
        unmarked = s.execute(
            select(func.count()).select_from(FeeEntry).where(FeeEntry.exported_in.is_(None))
        ).scalar_one()
    assert unmarked == 1


def test_deletion_keeps_job_runs_and_import_runs_bounded(
    database: Database, ca_home: CaHome, tmp_path: Path, now: dt.datetime
) -> None:
    from ra.store.models import ImportRun, ImportStatus

    settings = _settings(ca_home, database, tmp_path)
    old = now - jobs.RUNS_KEPT - dt.timedelta(hours=1)
    young = now - jobs.RUNS_KEPT + dt.timedelta(hours=1)
    with database.factory() as s, s.begin():
        staff = factories.account(s, kind=AccountKind.STAFF, now=now)
        for at in (old, young):
            s.add(JobRun(job="send-mail", started_at=at, trigger=JobTrigger.SCHEDULER, ran_by="a"))
        for status, finished in (
            (ImportStatus.DONE, old),
            (ImportStatus.FAILED, old),
            (ImportStatus.DONE, young),
            (ImportStatus.QUEUED, None),  # waiting, however old: kept
        ):
            s.add(
                ImportRun(
                    status=status,
                    total=1,
                    done=0,
                    started_by=staff.id,
                    created_at=old,
                    finished_at=finished,
                )
            )
    summary = jobs.delete_expired(database.factory, settings, now)
    assert (summary.job_runs_deleted, summary.import_runs_deleted) == (1, 2)
    with database.factory() as s:
        assert list(s.scalars(select(JobRun.started_at))) == [young]
        kept = sorted(str(v) for v in s.scalars(select(ImportRun.status)))
    assert kept == ["done", "queued"]
