"""連携 (/console/link): the offline loop by hand, CRL uploads, the CRL countdown, jobs, re-request.

A real CA home (tests/ra/ca_fixture.py) in offline mode: the request batch downloaded from the
console is signed by ``shomei ca sign-batch`` and its result uploaded back.  Staff may look
but not act; a bad upload is refused with one Japanese line and changes nothing.  SQLite and
PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from ra.lifecycle import Applicant, Status
from ra.settings import LinkSettings, RASettings, WebSettings
from ra.store import audit
from ra.store.models import AccountKind, AuditRecord, CaBatch, CrlRecord, JobRun, JobTrigger
from ra.store.vault import Vault, create_key_file
from ra.web import create_app
from tests.ra import factories
from tests.ra.ca_fixture import (  # noqa: F401
    CaHome,
    ca_home_fixture,
    open_test_ca,
    ra_settings,
)
from tests.ra.ca_link.test_crl_lost_revocation import _revoked_office, _signed_crl
from tests.ra.ca_link.test_crls import fresh_crl
from tests.ra.ca_link.test_link import counts, requested, status_of
from tests.ra.ca_link.test_link_offline import sign_with_cli
from tests.ra.conftest import Database
from tests.ra.web.helpers import Clock, add_staff, assert_no_mojibake, sign_in, token
from tests.ra_profile import FEES

LINK = "/console/link/"


@pytest.fixture
def clock() -> Clock:
    # Real time: the CA signs certificates and CRLs with its own clock.
    return Clock(dt.datetime.now(dt.UTC).replace(microsecond=0))


@pytest.fixture
def web_settings(tmp_path: Path, database: Database, ca_home: CaHome) -> RASettings:
    create_key_file(tmp_path / "ra-secrets.key")
    settings = ra_settings(ca_home, database.url, tmp_path / "data", mode="offline")
    return dataclasses.replace(
        settings,
        secrets_key_file=tmp_path / "ra-secrets.key",
        web=WebSettings(secret_key_file=tmp_path / "ra-web.key"),
    )


def _admin(client: FlaskClient, database: Database, vault: Vault, clock: Clock) -> None:
    sign_in(client, add_staff(database, vault, clock.now, kind=AccountKind.ADMIN), clock.now)


def _upload(client: FlaskClient, path: str, data: bytes, name: str = "f.p7m") -> TestResponse:
    return client.post(
        path,
        data={"csrf_token": token(client, LINK), "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def _post(client: FlaskClient, path: str) -> TestResponse:
    return client.post(path, data={"csrf_token": token(client, LINK)})


def _follow(client: FlaskClient, answer: TestResponse) -> str:
    assert answer.status_code == 302, answer.get_data(as_text=True)
    page: str = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert_no_mojibake(page)
    return page


def _error_line(answer: TestResponse) -> str:
    text: str = answer.get_data(as_text=True)
    start = text.index('class="message"')
    line = text[text.index(">", start) + 1 : text.index("</", start)].strip()
    assert line and "\n" not in line and "Traceback" not in text
    return line


def test_offline_round_trip_through_the_console(
    client: FlaskClient,
    database: Database,
    vault: Vault,
    clock: Clock,
    ca_home: CaHome,
    web_settings: RASettings,
    tmp_path: Path,
) -> None:
    with database.factory() as s, s.begin():
        office = requested(s, now=clock.now, email="o@example.jp")
    _admin(client, database, vault, clock)
    page = client.get(LINK).get_data(as_text=True)
    assert "オフライン運用" in page and "3 発行依頼中" in page

    page = _follow(client, _post(client, LINK + "jobs/dispatch"))
    assert "ジョブ dispatch を実行しました" in page
    with database.factory() as s:
        assert status_of(s, office) is Status.AWAITING_ISSUANCE
        batch_id = s.execute(select(CaBatch.batch_id)).scalar_one()
    assert batch_id in page and "依頼ファイルをダウンロード" in page

    download = client.get(f"{LINK}batches/{batch_id}/request")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].endswith('.request.p7m"')
    assert web_settings.link.outbox is not None
    (outbox_file,) = web_settings.link.outbox.glob("*.request.p7m")
    assert download.data == outbox_file.read_bytes()  # the same signed batch as the outbox
    request = tmp_path / "carried.request.p7m"
    request.write_bytes(download.data)
    result = tmp_path / "carried.result.p7m"
    sign_with_cli(ca_home, request, result)

    page = _follow(client, _upload(client, LINK + "result", result.read_bytes()))
    assert f"バッチ {batch_id} の結果を取り込みました(発行 1 件" in page
    with database.factory() as s:
        assert status_of(s, office) is Status.ISSUED
        before = counts(s)
    assert "すべてのバッチの結果を取り込み済みです" in page and "CRL番号" in page

    # The same file again: nothing changes, and the page says so.
    page = _follow(client, _upload(client, LINK + "result", result.read_bytes()))
    assert "取込済みです。何も変更していません" in page
    with database.factory() as s:
        assert counts(s) == before


def test_staff_see_the_link_but_may_not_act(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    with database.factory() as s, s.begin():
        requested(s, now=clock.now)
    sign_in(client, add_staff(database, vault, clock.now), clock.now)
    page = client.get(LINK).get_data(as_text=True)
    assert "認証局への連携待ち" in page
    assert "結果を取り込む" not in page and "今すぐ実行" not in page
    with database.factory() as s:
        before = counts(s)
    for answer in (
        _post(client, LINK + "jobs/dispatch"),
        _upload(client, LINK + "result", b"x"),
        _upload(client, LINK + "crl", b"x"),
        _post(client, LINK + "batches/b-1/rerequest"),
        client.get(LINK + "batches/b-1/request"),
    ):
        assert answer.status_code == 403
        assert "権限がありません" in _error_line(answer)
    with database.factory() as s:
        assert counts(s) == before


def test_bad_uploads_are_refused_and_change_nothing(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    with database.factory() as s, s.begin():
        requested(s, now=clock.now)
    _admin(client, database, vault, clock)
    _post(client, LINK + "jobs/dispatch")
    with database.factory() as s:
        before = counts(s)
        crls_before = s.scalar(select(func.count()).select_from(CrlRecord))
    cases = [
        (LINK + "result", b"not a batch at all", (400, 422)),
        (LINK + "result", b"", (400,)),
        (LINK + "crl", b"\x30\x03\x02\x01\x01", (400, 422)),
        (LINK + "crl", b"", (400,)),
    ]
    for path, data, statuses in cases:
        answer = _upload(client, path, data)
        assert answer.status_code in statuses, (path, data)
        line = _error_line(answer)
        assert any("\u3040" <= ch <= "\u30ff" for ch in line), line  # Japanese
    missing = client.post(LINK + "result", data={"csrf_token": token(client, LINK)})
    assert missing.status_code == 400 and "ファイルが選択されていません" in _error_line(missing)
    with database.factory() as s:
        assert counts(s) == before
        assert s.scalar(select(func.count()).select_from(CrlRecord)) == crls_before
        assert s.execute(select(CaBatch.imported_at)).scalar_one() is None


def test_a_crl_losing_a_revocation_is_refused_with_the_serial(
    client: FlaskClient,
    database: Database,
    vault: Vault,
    clock: Clock,
    ca_home: CaHome,
    tmp_path: Path,
) -> None:
    _, gone, serial = _revoked_office(database, ca_home, tmp_path / "inline")
    _admin(client, database, vault, clock)
    with database.factory() as s:
        before = counts(s)
        registered = s.execute(select(func.count()).select_from(CrlRecord)).scalar_one()
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)
    with open_test_ca(ca_home) as ca:
        empty = _signed_crl(ca, at)
    answer = _upload(client, LINK + "crl", empty, "issuing.crl")
    assert answer.status_code == 422
    assert f"{serial:x}" in _error_line(answer)
    with database.factory() as s:
        assert counts(s) == before
        assert s.scalar(select(func.count()).select_from(CrlRecord)) == registered
        assert status_of(s, gone) is Status.REVOKED

    # A CRL the CA signs now lists it: registered, and once only.
    good = fresh_crl(ca_home, at)
    page = _follow(client, _upload(client, LINK + "crl", good, "issuing.crl"))
    assert "を登録しました" in page
    page = _follow(client, _upload(client, LINK + "crl", good, "issuing.crl"))
    assert "は登録済みです。何も変更していません" in page
    with database.factory() as s:
        assert s.scalar(select(func.count()).select_from(CrlRecord)) == registered + 1


def _crl(database: Database, now: dt.datetime, next_update: dt.datetime) -> None:
    with database.factory() as s, s.begin():
        s.add(
            CrlRecord(
                issuer_sha256="0" * 64,
                number="4242",
                this_update=now - dt.timedelta(days=1),
                next_update=next_update,
                der=b"crl",
                sha256=hashlib.sha256(next_update.isoformat().encode()).hexdigest(),
                entries=3,
                registered_at=now,
            )
        )


@pytest.mark.parametrize(
    ("days_left", "warning_days", "warned"),
    [(10, 7, False), (3, 7, True), (10, 14, True)],
)
def test_the_crl_countdown_warns_before_next_update(
    database: Database,
    tmp_path: Path,
    days_left: int,
    warning_days: int,
    warned: bool,
) -> None:
    now = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
    create_key_file(tmp_path / "k")
    settings = RASettings(
        fees=FEES,
        database_url=database.url,
        data_dir=tmp_path / "data",
        secrets_key_file=tmp_path / "k",
        link=LinkSettings(crl_warning_days=warning_days),
        web=WebSettings(secret_key_file=tmp_path / "w"),
    )
    app: Flask = create_app(settings, session_factory=database.factory, now=lambda: now)
    client = app.test_client()
    _crl(database, now, now + dt.timedelta(days=days_left, hours=2))
    staff = add_staff(database, app.extensions["shomei"].vault, now)
    sign_in(client, staff, now)
    page = client.get(LINK).get_data(as_text=True)
    assert "4242" in page and f"あと {days_left} 日" in page
    assert (f"次回更新まであと {days_left} 日です" in page) is warned
    assert f"次回更新の {warning_days} 日前から警告" in page


def test_run_now_is_audited_and_shown(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    _admin(client, database, vault, clock)
    page = _follow(client, _post(client, LINK + "jobs/process-rejections"))
    assert "ジョブ process-rejections を実行しました" in page
    row = _job_row(page, "process-rejections")
    assert "問題なし" in row and "コンソール(" in row
    with database.factory() as s:
        rec = s.execute(select(AuditRecord).where(AuditRecord.action == "run_job")).scalar_one()
        assert rec.object_id == "process-rejections" and rec.details["ok"] is True
        run = s.execute(select(JobRun)).scalar_one()
        assert run.trigger is JobTrigger.CONSOLE and run.ran_by == rec.actor_id
    unknown = _post(client, LINK + "jobs/no-such-job")
    assert unknown.status_code == 404


def test_abandoned_applications_are_requested_again(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    now = clock.now
    with database.factory() as s, s.begin():
        s.add(
            CaBatch(
                batch_id="b-abandoned",
                kind="issue",
                request_der=b"x",
                request_sha256=hashlib.sha256(b"x").hexdigest(),
                created_at=now,
                result_sha256="r" * 64,
                imported_at=now,
            )
        )
        app = factories.application(
            s, applicant=Applicant.OFFICE, status=Status.AWAITING_ISSUANCE, now=now
        )
        app.issue_batch_id = "b-abandoned"
        app_id = app.id
    _admin(client, database, vault, clock)
    page = client.get(LINK).get_data(as_text=True)
    assert "b-abandoned" in page and f"申請 {app_id}" in page
    page = _follow(client, _post(client, LINK + "batches/b-abandoned/rerequest"))
    assert "申請 1 件を認証局へ再送します" in page
    with database.factory() as s:
        assert status_of(s, app_id) is Status.ISSUE_REQUESTED
    again = _post(client, LINK + "batches/b-abandoned/rerequest")
    assert again.status_code == 409
    assert "発行待ちの申請はありません" in _error_line(again)


def test_the_cas_refusals_are_listed_with_their_reasons(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock
) -> None:
    with database.factory() as s, s.begin():
        audit.record(
            s,
            actor="system",
            actor_id="ca-link",
            action="ca_refused",
            object_type="application",
            object_id="41",
            status_before="awaiting_issuance",
            status_after="rejection_pending",
            now=clock.now,
            details={
                "code": "bad_csr",
                "message": "the CSR signature does not verify",
                "reason": "認証局が発行を拒否しました: CSR の署名を検証できません",
            },
        )
        audit.record(
            s,
            actor="system",
            actor_id="ca-link",
            action="ca_refused_revocation",
            object_type="application",
            object_id="42",
            now=clock.now,
            details={"code": "unknown_serial", "message": "unknown serial 1f"},
        )
    sign_in(client, add_staff(database, vault, clock.now), clock.now)
    page = client.get(LINK).get_data(as_text=True)
    table = page[page.index("認証局が拒否した依頼") :]
    assert "CSR の署名を検証できません" in table and "(bad_csr)" in table
    assert "unknown serial 1f" in table and "(unknown_serial)" in table
    assert "認証局に拒否された依頼はありません" not in page


def _job_row(page: str, name: str) -> str:
    start = page.index(f'id="job-{name}"')
    return page[start : page.index("</tr>", start)]


def test_scheduler_runs_and_failures_show_on_the_link_page(
    client: FlaskClient, database: Database, vault: Vault, clock: Clock, web_settings: RASettings
) -> None:
    from apscheduler.triggers.interval import IntervalTrigger

    from ra.store.models import JobOutcome
    from ra.tasks.jobs import JOBS
    from ra.tasks.scheduler import Gate, JobSpec
    from shomei.errors import Refused

    with database.factory() as s, s.begin():
        requested(s, now=clock.now)
    gate = Gate(database.factory, holder="sched-a", lease=dt.timedelta(minutes=2))
    every = IntervalTrigger(minutes=10)
    gate.wrap(JobSpec("dispatch", JOBS["dispatch"], every), web_settings)()

    def unreachable(*_: object) -> None:
        raise Refused("the CA outbox is not mounted", message_ja="認証局の送信フォルダがありません")

    gate.wrap(JobSpec("import-results", unreachable, every), web_settings)()
    sign_in(client, add_staff(database, vault, clock.now), clock.now)
    page = client.get(LINK).get_data(as_text=True)
    assert_no_mojibake(page)
    dispatched = _job_row(page, "dispatch")
    assert "スケジューラ" in dispatched and "sched-a" in dispatched
    assert "問題なし" in dispatched and "issue=1" in dispatched
    failed = _job_row(page, "import-results")
    assert "失敗" in failed and "認証局の送信フォルダがありません" in failed
    assert "未実行" in _job_row(page, "fee-export")
    with database.factory() as s:
        runs = {r.job: r for r in s.execute(select(JobRun)).scalars()}
    assert runs["dispatch"].trigger is JobTrigger.SCHEDULER
    assert runs["dispatch"].outcome is JobOutcome.OK and runs["dispatch"].ran_by == "sched-a"
    assert runs["import-results"].outcome is JobOutcome.FAILED
    assert runs["import-results"].summary == "the CA outbox is not mounted"

    # A second run: the last one first, and the earlier ones listed under it.
    clock.advance(minutes=10)
    gate.clock = lambda: clock.now
    gate.wrap(JobSpec("import-results", JOBS["import-results"], every), web_settings)()
    row = _job_row(client.get(LINK).get_data(as_text=True), "import-results")
    assert row.index("問題なし") < row.index("直近 2 回の実行") < row.index("失敗")
