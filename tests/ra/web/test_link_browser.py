"""連携, 監査 and メール in a real browser (Chromium through Playwright) against gunicorn.

The offline loop as an admin does it: send the requests, download the signed request batch,
carry it to the CA (``shomei ca sign-batch`` on the CA home of tests/ra/ca_fixture.py), upload
the result, and the application is 発行済み.  Then verify the audit chain, search the log and
look at the mail outbox.  Runs of the jobs by the scheduler and at the command line show on
連携.  Screenshots link-*, audit-*, mail-* at 1280 and 390 pixels.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from ra.lifecycle import Status
from ra.store.models import AccountKind, OutboxMail
from tests.ra.ca_fixture import CaHome, ca_home_fixture  # noqa: F401
from tests.ra.ca_link.test_link import requested, status_of
from tests.ra.ca_link.test_link_offline import sign_with_cli
from tests.ra.web.live import BACKENDS, LiveServer, free_port, live_server
from tests.ra.web.test_browser import (  # noqa: F401
    CHROMIUM,
    browser,
    page,
    shoot,
    sign_in,
)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium"
)


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, ca_home: CaHome
) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("live-link")
    link = (
        "[ra.link]\n"
        'mode = "offline"\n'
        f'ca_certificate = "{ca_home.issuing_cert}"\n'
        f'link_key = "{ca_home.link.key}"\n'
        f'link_key_passphrase_file = "{ca_home.link.passphrase}"\n'
        f'link_certificate = "{ca_home.link.certificate}"\n'
        f'outbox = "{folder / "outbox"}"\n'
        f'inbox = "{folder / "inbox"}"\n'
        # Nothing listens there: a resend fails, as a real outage would.
        f"[ra.mail]\nsmtp_port = {free_port()}\n"
    )
    for sub in ("outbox", "inbox"):
        (folder / sub).mkdir()
    with live_server(folder, request.param, extra=link) as live:
        yield live


def test_offline_loop_audit_and_mail_in_the_browser(
    page: object,  # noqa: F811  (the fixture of test_browser)
    server: LiveServer,
    ca_home: CaHome,
    tmp_path: Path,
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with server.database.factory() as s, s.begin():
        office = requested(s, now=now, email="office@example.jp")
    admin = server.staff(kind=AccountKind.ADMIN)
    sign_in(page, server, admin)

    page.goto(server.url + "/console/link/")  # type: ignore[attr-defined]
    assert page.inner_text("h1") == "連携"  # type: ignore[attr-defined]
    assert "オフライン運用" in page.inner_text("main")  # type: ignore[attr-defined]
    shoot(page, "link-waiting")

    page.click("text=今すぐ依頼を送る")  # type: ignore[attr-defined]
    assert "ジョブ dispatch を実行しました" in page.inner_text(".notice")  # type: ignore[attr-defined]
    with page.expect_download() as caught:  # type: ignore[attr-defined]
        page.click("text=依頼ファイルをダウンロード")  # type: ignore[attr-defined]
    download = caught.value
    assert download.suggested_filename.endswith(".request.p7m")
    request = tmp_path / download.suggested_filename
    download.save_as(str(request))
    shoot(page, "link-sent")

    result = tmp_path / request.name.replace(".request.", ".result.")
    sign_with_cli(ca_home, request, result)
    page.set_input_files("#result-file", str(result))  # type: ignore[attr-defined]
    page.click("text=結果を取り込む")  # type: ignore[attr-defined]
    notice = page.inner_text(".notice")  # type: ignore[attr-defined]
    assert "の結果を取り込みました(発行 1 件" in notice, notice
    body = page.inner_text("main")  # type: ignore[attr-defined]
    assert "すべてのバッチの結果を取り込み済みです" in body and "CRL番号" in body
    shoot(page, "link-imported")

    # The same file again changes nothing and says so.
    page.set_input_files("#result-file", str(result))  # type: ignore[attr-defined]
    page.click("text=結果を取り込む")  # type: ignore[attr-defined]
    assert "何も変更していません" in page.inner_text(".notice")  # type: ignore[attr-defined]

    with server.database.factory() as s:
        assert status_of(s, office) is Status.ISSUED
    page.goto(server.url + "/console/")  # type: ignore[attr-defined]
    issued = page.inner_text("tr:has-text('5 発行済み')")  # type: ignore[attr-defined]
    assert issued.split()[-1] == "1", issued

    page.goto(server.url + "/console/audit/")  # type: ignore[attr-defined]
    page.click("text=今すぐ検証")  # type: ignore[attr-defined]
    assert "監査ログは改ざんされていません" in page.inner_text(".notice")  # type: ignore[attr-defined]
    shoot(page, "audit-verified")
    page.fill("#application", str(office))  # type: ignore[attr-defined]
    page.click("form.search button")  # type: ignore[attr-defined]
    rows = page.inner_text("table.audit")  # type: ignore[attr-defined]
    assert "register_certificate" in rows or "issued" in rows, rows
    shoot(page, "audit-search")

    # The 証明書が発行されました mail is queued; make it one the server refused.
    with server.database.factory() as s, s.begin():
        s.execute(update(OutboxMail).values(attempts=1, last_error="550 mailbox unavailable"))
    page.goto(server.url + "/console/mail/")  # type: ignore[attr-defined]
    assert "送信失敗 (1)" in page.inner_text("main")  # type: ignore[attr-defined]
    shoot(page, "mail-outbox")
    page.click("button:has-text('再送')")  # type: ignore[attr-defined]
    assert "を送信できませんでした" in page.inner_text(".notice")  # type: ignore[attr-defined]
    shoot(page, "mail-resend-failed")


def test_job_runs_of_the_scheduler_and_the_command_line_on_the_link_page(
    page: object,  # noqa: F811  (the fixture of test_browser)
    server: LiveServer,
) -> None:
    """Runs not started from the console show too: one by ``shomei ra run-job``, and a
    scheduler's run that failed (the fee export cannot write its folder) with its message."""
    from apscheduler.triggers.interval import IntervalTrigger

    from ra.tasks.jobs import JOBS
    from ra.tasks.scheduler import Gate, JobSpec

    shomei = Path(sys.executable).with_name("shomei")
    ran = subprocess.run(
        [str(shomei), "ra", "run-job", "import-results", "--settings", str(server.settings_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    exports = server.settings.data_dir / "exports"
    exports.parent.mkdir(parents=True, exist_ok=True)
    exports.write_text("not a folder", encoding="utf-8")  # the export cannot make its folder
    try:
        gate = Gate(server.database.factory, holder="scheduler-a", lease=dt.timedelta(minutes=2))
        every = IntervalTrigger(minutes=10)
        gate.wrap(JobSpec("fee-export", JOBS["fee-export"], every), server.settings)()
    finally:
        exports.unlink()
    sign_in(page, server, server.staff())
    page.goto(server.url + "/console/link/")  # type: ignore[attr-defined]
    by_cli = page.inner_text("#job-import-results")  # type: ignore[attr-defined]
    assert "問題なし" in by_cli and "コマンド(" in by_cli, by_cli
    failed = page.inner_text("#job-fee-export")  # type: ignore[attr-defined]
    assert "失敗" in failed and "スケジューラ" in failed and "書き込めません" in failed, failed
    assert "未実行" in page.inner_text("#job-deletion")  # type: ignore[attr-defined]
    page.locator("#job-fee-export").scroll_into_view_if_needed()  # type: ignore[attr-defined]
    shoot(page, "link-job-runs")
