"""``shomei demo --serve`` (``make run``): the demo federation built once, then run and stopped.

One federation (a full build, with its crowd) is made in-process; then the serve orchestration
runs on it twice as a subprocess on free ports, as ``make run`` would: the site answers, the
demo admin signs in with the password and a TOTP code over HTTP, the demo mailbox lists the
mails the SMTP sink received, and SIGINT (then SIGTERM) stops every process it started.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest

from demo.federation import build_demo
from demo.population import GROUPS, counts
from demo.serve import free_port
from ra.lifecycle import Status
from ra.settings import load_ra_settings
from ra.store.db import make_engine, session_factory

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
ROW = re.compile(r"^(admin|staff)\s+(\S+)\s+(\S+) / ", re.MULTILINE)
URI = re.compile(r"^(admin|staff)\s+(otpauth://\S+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("serve") / "demo-out"
    build_demo(folder, echo=lambda _line: None)
    return folder


def test_the_crowd_fills_every_status(demo: Path) -> None:
    engine = make_engine(load_ra_settings(demo / "ra.toml").database_url)
    try:
        found = counts(session_factory(engine))
    finally:
        engine.dispose()
    # The four of the lifecycle files (two issued, one revoked, one rejected) and the crowd.
    lifecycle = {Status.ISSUED: 2, Status.REVOKED: 1, Status.REJECTED: 1}
    assert found == {s: GROUPS[s] + lifecycle.get(s, 0) for s in Status}
    assert all(n > 0 for n in found.values()) and sum(found.values()) >= 200


@dataclass
class Run:
    process: subprocess.Popen[str]
    url: str
    output: list[str]


@pytest.fixture
def run(demo: Path) -> Iterator[Run]:
    port = free_port()
    shomei = Path(sys.executable).with_name("shomei")
    process = subprocess.Popen(
        [str(shomei), "demo", str(demo), "--serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "LANG": "C.UTF-8"},
    )
    run = Run(process, f"http://127.0.0.1:{port}", [])
    try:
        yield run
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_for_banner(run: Run) -> str:
    assert run.process.stdout is not None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = run.process.stdout.readline()
        if not line:
            break
        run.output.append(line)
        if line.startswith("Console users sign in"):
            return "".join(run.output)
    raise AssertionError("".join(run.output))


def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (from /proc), to check that none is left."""
    found: set[int] = set()
    parents = {pid}
    while parents:
        new: set[int] = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) in parents and int(entry.name) not in found:
                new.add(int(entry.name))
        found |= new
        parents = new
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


class Browser:
    """urllib with cookies: the sign-in forms posted as a browser would."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> tuple[int, str, str]:
        try:
            with self.opener.open(self.url + path, timeout=30) as answer:
                return answer.status, answer.geturl(), answer.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            return exc.code, path, exc.read().decode("utf-8")

    def post(self, path: str, data: dict[str, str]) -> tuple[int, str, str]:
        status, _url, page = self.get(path)
        found = TOKEN.search(page)
        assert status == 200 and found, page
        body = urllib.parse.urlencode({**data, "csrf_token": found.group(1)}).encode()
        with self.opener.open(self.url + path, data=body, timeout=30) as answer:
            return answer.status, answer.geturl(), answer.read().decode("utf-8")


def _sign_in(url: str, banner: str, role: str) -> Browser:
    user_id, password = next((u, p) for r, u, p in ROW.findall(banner) if r == role)
    totp = pyotp.TOTP(pyotp.parse_uri(next(u for r, u in URI.findall(banner) if r == role)).secret)
    browser = Browser(url)
    _status, where, _page = browser.post(
        "/auth/sign-in", {"user_id": user_id, "password": password}
    )
    assert where.endswith("/auth/totp")
    if int(time.time()) % 30 > 27:  # a code about to expire: take the next one
        time.sleep(3)
    _status, where, page = browser.post("/auth/totp", {"code": totp.now()})
    assert where.endswith("/console/"), page
    return browser


def _stop(run: Run, signum: signal.Signals) -> None:
    descendants = _children(run.process.pid)
    assert len(descendants) >= 4  # gunicorn master and two workers, the scheduler
    run.process.send_signal(signum)
    rest, _ = run.process.communicate(timeout=60)
    assert run.process.returncode == 0, "".join(run.output) + rest
    assert "stopping the demo" in rest
    deadline = time.monotonic() + 10
    while _alive(descendants) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(descendants), f"left running: {_alive(descendants)}"


def _admin_in_browser(url: str, banner: str, demo: Path) -> list[str]:
    """Sign in as the demo admin in Chromium; screenshots of the mailbox; the mail links."""
    from playwright.sync_api import sync_playwright

    from tests.ra.web.live import LOCALE, TIMEZONE
    from tests.ra.web.test_browser import CHROMIUM, shoot

    user_id, password = next((u, p) for r, u, p in ROW.findall(banner) if r == "admin")
    secret = pyotp.parse_uri(next(u for r, u in URI.findall(banner) if r == "admin")).secret
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(
            locale=LOCALE, timezone_id=TIMEZONE, viewport={"width": 1280, "height": 900}
        )
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(url + "/auth/sign-in")
        page.fill("#user_id", user_id)
        page.fill("#password", password)
        page.click("#submit")
        assert page.url.endswith("/auth/totp"), page.inner_text("main")
        page.fill("#code", pyotp.TOTP(secret).now())
        page.click("#submit")
        assert page.url.endswith("/console/"), page.inner_text("main")
        page.click("nav.main >> text=デモ用メールボックス")
        assert page.url.endswith("/console/mailbox/")
        shoot(page, "mailbox-list")
        links = page.eval_on_selector_all(
            "table.mailbox a", "els => els.map(e => e.getAttribute('href'))"
        )
        assert links, page.inner_text("main")
        page.click("table.mailbox a >> nth=0")
        assert "宛先" in page.inner_text("main")
        shoot(page, "mailbox-mail")
        browser.close()
    assert not problems, problems
    return [str(link) for link in links]


def test_serve_signs_in_shows_the_mailbox_and_stops_cleanly(demo: Path, run: Run) -> None:
    banner = _wait_for_banner(run)
    assert "Reusing the demo federation" in banner  # built by the fixture: not built again
    assert f"{run.url}/console/" in banner and "otpauth://totp/" in banner
    assert f"{run.url}/portal/" in banner  # offices and the agent sign in there
    smtp_port = int(re.search(r"SMTP sink on 127.0.0.1:(\d+)", banner).group(1))  # type: ignore[union-attr]
    assert f"smtp_port = {smtp_port}" in (demo / "ra.toml").read_text(encoding="utf-8")

    links = _admin_in_browser(run.url, banner, demo)
    mails = sorted((demo / "mailbox").glob("*.eml"), reverse=True)
    assert mails, "the SMTP sink kept no mail"
    assert links == [f"/console/mailbox/{m.name}" for m in mails[:500]]
    with sqlite3.connect(demo / "ra.sqlite") as db:
        sent = db.execute("SELECT count(*) FROM mail_outbox WHERE sent_at IS NOT NULL").fetchone()
    assert sent[0] >= len(mails)  # every mail the sink kept was sent by the RA over SMTP

    staff = _sign_in(run.url, banner, "staff")  # over plain HTTP, as a script would
    assert staff.get("/console/")[0] == 200
    assert staff.get("/console/mailbox/")[0] == 403  # admins only
    _stop(run, signal.SIGINT)


def test_a_second_run_reuses_the_federation_and_stops_on_sigterm(demo: Path, run: Run) -> None:
    before = (demo / "ra.sqlite").stat().st_ino
    banner = _wait_for_banner(run)
    assert "Reusing the demo federation" in banner
    assert (demo / "ra.sqlite").stat().st_ino == before
    _stop(run, signal.SIGTERM)
