"""``shomei ra serve``: the settings are checked before gunicorn starts (the server itself is
driven by the live-server browser tests in ``tests/ra/web``)."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from ra.settings import load_ra_settings
from ra.store.initdb import init_database
from tests.ra_profile import PROFILE_FILES, RA_REQUIRED


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    path = tmp_path / "ra.toml"
    path.write_text(
        f'[ra]\ndatabase_url = "sqlite:///ra.sqlite"\ndata_dir = "data"\n{RA_REQUIRED}\n', "utf-8"
    )
    return path


def _serve(*args: str | Path) -> object:
    return CliRunner().invoke(main, ["ra", "serve", *map(str, args)], catch_exceptions=False)


def test_init_db_makes_the_web_session_key_private(settings_file: Path) -> None:
    init_database(load_ra_settings(settings_file))
    key = settings_file.parent / "ra-web.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("# Shomei RA web session key")


def test_bad_bind_is_one_line_and_exit_2(settings_file: Path) -> None:
    init_database(load_ra_settings(settings_file))
    result = _serve("--settings", settings_file, "--bind", "8000")
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "--bind must be HOST:PORT" in result.output  # type: ignore[attr-defined]


def test_missing_secrets_key_stops_the_start(settings_file: Path) -> None:
    result = _serve("--settings", settings_file)  # no init-db: no secrets key
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "ra-secrets.key" in result.output  # type: ignore[attr-defined]


def test_bad_settings_stop_the_start(tmp_path: Path) -> None:
    path = tmp_path / "ra.toml"
    path.write_text(
        f'[ra]\ndatabase_url = "sqlite:///ra.sqlite"\ndata_dir = "d"\n{RA_REQUIRED}\n'
        "[ra.web]\nbehind_tsl = true\n",
        "utf-8",
    )
    result = _serve("--settings", path)
    assert result.exit_code == 2 and "behind_tsl" in result.output  # type: ignore[attr-defined]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310  # our test server
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@contextmanager
def _running(settings_file: Path) -> Iterator[str]:
    with _running_process(settings_file) as (base, _server):
        yield base


@contextmanager
def _running_process(settings_file: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``shomei ra serve`` with two workers on a free port; stdout/stderr to files beside."""
    init_database(load_ra_settings(settings_file))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    shomei = str(Path(sys.executable).with_name("shomei"))
    command = [shomei, "ra", "serve", "--settings", str(settings_file)]
    folder = settings_file.parent
    with (folder / "out.log").open("wb") as out, (folder / "err.log").open("wb") as err:
        server = subprocess.Popen(
            [*command, "--bind", f"127.0.0.1:{port}", "--workers", "2"],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(base + "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            log = (folder / "err.log").read_text(errors="replace")
            assert server.poll() is None, log
            assert time.monotonic() < deadline, "the server did not start\n" + log
            time.sleep(0.2)
        yield base, server
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_metrics_sum_the_requests_of_every_worker(settings_file: Path) -> None:
    """Two gunicorn workers answer; /metrics counts the requests of both, once each."""
    with _running(settings_file) as base:
        for _ in range(40):
            assert _get(base + "/healthz") == (200, "ok\n")
        status, text = _get(base + "/metrics")
    assert status == 200
    counted = re.search(
        r'shomei_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)', text
    )
    assert counted is not None, text[:2000]
    assert float(counted.group(1)) >= 41  # 40 and the ones that waited for the start
    assert re.search(r'shomei_applications\{status="issued"\} 0\.0', text)
    assert "shomei_database_up 1.0" in text
    assert (settings_file.parent / "data" / "metrics").is_dir()


def test_every_log_line_is_json_and_names_the_request(settings_file: Path) -> None:
    """The request id on an error page leads to the log lines of that request."""
    with _running(settings_file) as base:
        status, page = _get(base + "/console/no-such-page?user=secret-looking")
    assert status == 404
    found = re.search(r"<code>([0-9a-f]{12})</code>", page)
    assert found, page
    request_id = found.group(1)
    folder = settings_file.parent
    access = [json.loads(line) for line in (folder / "out.log").read_text().splitlines()]
    events = [json.loads(line) for line in (folder / "err.log").read_text().splitlines()]
    assert events and all({"time", "level", "logger", "message"} <= set(e) for e in events)
    (line,) = [a for a in access if a["request_id"] == request_id]
    assert (line["method"], line["path"], line["status"]) == ("GET", "/console/no-such-page", 404)
    assert "secret-looking" not in (folder / "out.log").read_text()  # no query strings


def test_a_rolling_restart_under_load_loses_no_request(settings_file: Path) -> None:
    """SIGHUP makes gunicorn replace its workers one by one; clients see no failure."""
    import threading

    answers: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def load(base: str) -> None:
        while not stop.is_set():
            try:
                answers.append(_get(base + "/portal/sign-in")[0])
            except OSError as exc:
                failures.append(repr(exc))

    with _running_process(settings_file) as (base, server):
        clients = [threading.Thread(target=load, args=(base,)) for _ in range(4)]
        for client in clients:
            client.start()
        deadline = time.monotonic() + 60
        while len(answers) < 10 and time.monotonic() < deadline:
            time.sleep(0.1)
        for _ in range(2):
            server.send_signal(signal.SIGHUP)  # new workers start, the old ones finish their work
            time.sleep(3)
        after = len(answers)
        while len(answers) < after + 20 and time.monotonic() < deadline:
            time.sleep(0.1)  # the new workers answer
        stop.set()
        for client in clients:
            client.join(timeout=30)
    assert not failures, failures[:5]
    assert len(answers) >= after + 20  # the load went on after the restarts
    assert set(answers) == {200}, sorted(set(answers))


def test_an_ra_without_its_bank_account_does_not_start(tmp_path: Path) -> None:
    path = tmp_path / "ra.toml"
    path.write_text(
        f'[ra]\ndatabase_url = "sqlite:///ra.sqlite"\ndata_dir = "data"\n{PROFILE_FILES}\n'
        '[ra.fees]\noffice_fee_yen = 5000\nagent_fee_yen = 5000\ntax = "exempt"\n',
        "utf-8",
    )
    result = _serve("--settings", path)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    lines = result.output.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and "ra.fees.bank_account is required" in lines[0], lines
