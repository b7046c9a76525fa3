"""Mail through a real SMTP server (aiosmtpd on 127.0.0.1): one mail per event, none lost.

The sender is killed with SIGKILL right after the server accepted a mail and before the
outbox row was marked (the worst moment), and at random moments; after a restart every mail
has arrived, and the one sent twice carries the same Message-ID both times.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import email
import email.policy
import os
import random
import signal
import smtplib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from ra.lifecycle import Status
from ra.mailing import mail
from ra.settings import MailSettings, RASettings
from ra.store.db import make_engine, session_factory
from ra.store.models import OutboxMail
from ra.tasks import jobs
from shomei.errors import ConfigError
from tests.ra.ca_fixture import CaHome, ca_home_fixture, make_application, ra_settings  # noqa: F401
from tests.ra.conftest import Database


class Recorder:
    """An SMTP handler that keeps every message; refuses RCPT for refuse@example.jp."""

    def __init__(self, delay: float = 0.0) -> None:
        self.messages: list[email.message.Message] = []
        self.delay = delay

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address == "refuse@example.jp":
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 Message accepted for delivery"

    def ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.messages]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    port = _free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


def _mails(database: Database, settings: RASettings, now: dt.datetime, n: int) -> None:
    """``n`` rejection events, each writing one outbox mail."""
    with database.factory() as s, s.begin():
        for i in range(n):
            app = make_application(
                s, status=Status.REJECTION_PENDING, now=now, email=f"office{i}@example.jp"
            )
            app.status_reason = f"理由 {i}"
    assert jobs.process_rejections(database.factory, settings, now).processed == n


def _rows(database: Database) -> list[OutboxMail]:
    with database.factory() as s:
        return list(s.execute(select(OutboxMail).order_by(OutboxMail.id)).scalars())


def test_one_mail_per_event_with_its_message_id(
    database: Database, ca_home: CaHome, tmp_path: Path, now: dt.datetime, smtp: Any
) -> None:
    recorder, port = smtp
    settings = ra_settings(ca_home, database.url, tmp_path / "d", mode="offline", smtp_port=port)
    _mails(database, settings, now, 3)
    summary = jobs.send_mail(database.factory, settings, now)
    assert (summary.sent, summary.failed, summary.remaining) == (3, 0, 0)
    rows = _rows(database)
    assert recorder.ids() == [r.message_id for r in rows]
    assert all(r.sent_at == now and r.attempts == 1 for r in rows)
    first = recorder.messages[0]
    assert str(first["Subject"]) == rows[0].subject == "証明書のお申し込みが却下されました"
    assert first["From"] == settings.mail.sender and first["To"] == "office0@example.jp"
    assert "理由 0" in first.get_content()
    assert jobs.send_mail(database.factory, settings, now).sent == 0
    assert len(recorder.messages) == 3


def test_a_refused_recipient_stays_in_the_outbox(
    database: Database, ca_home: CaHome, tmp_path: Path, now: dt.datetime, smtp: Any
) -> None:
    recorder, port = smtp
    settings = ra_settings(ca_home, database.url, tmp_path / "d", mode="offline", smtp_port=port)
    _mails(database, settings, now, 2)
    with database.factory() as s, s.begin():
        row = s.execute(select(OutboxMail).order_by(OutboxMail.id)).scalars().first()
        assert row is not None
        row.to_address = "refuse@example.jp"
    summary = mail.send_outbox(database.factory, settings, now=now)
    assert (summary.sent, summary.failed, summary.remaining) == (1, 1, 1)
    refused, sent = _rows(database)
    assert refused.sent_at is None and refused.attempts == 1 and "550" in (refused.last_error or "")
    assert sent.sent_at == now and recorder.ids() == [sent.message_id]


def test_an_unreachable_server_is_a_clear_error(
    database: Database, ca_home: CaHome, tmp_path: Path, now: dt.datetime
) -> None:
    with pytest.raises(ConfigError) as caught:
        mail.connect(MailSettings(smtp_port=_free_port()))
    assert "cannot reach" in caught.value.message and caught.value.message_ja
    settings = ra_settings(
        ca_home, database.url, tmp_path / "d", mode="offline", smtp_port=_free_port()
    )
    _mails(database, settings, now, 1)
    with pytest.raises(ConfigError):
        jobs.send_mail(database.factory, settings, now)
    assert [r.sent_at for r in _rows(database)] == [None]


def _fork_sender(
    url: str, settings: RASettings, now: dt.datetime, *, die_after_send: int | None
) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        sent = 0

        def connect(mail_settings: MailSettings) -> smtplib.SMTP:
            smtp = mail.connect(mail_settings)
            real = smtp.send_message

            def send_then_maybe_die(message: Any) -> Any:
                nonlocal sent
                outcome = real(message)
                sent += 1
                if sent == die_after_send:
                    os.kill(os.getpid(), signal.SIGKILL)  # accepted, not yet marked
                return outcome

            smtp.send_message = send_then_maybe_die  # type: ignore[method-assign, assignment]
            return smtp

        code = 0
        try:
            mail.send_outbox(
                session_factory(make_engine(url)), settings, now=now, smtp_factory=connect
            )
        except BaseException:
            code = 3
        os._exit(code)
    return pid


def test_killed_sender_loses_nothing_and_resends_with_the_same_message_id(
    database: Database, ca_home: CaHome, tmp_path: Path, now: dt.datetime, smtp: Any
) -> None:
    recorder, port = smtp
    settings = ra_settings(ca_home, database.url, tmp_path / "d", mode="offline", smtp_port=port)
    _mails(database, settings, now, 4)
    database.engine.dispose()
    pid = _fork_sender(database.url, settings, now, die_after_send=2)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert len(recorder.messages) == 2
    rows = _rows(database)
    assert [r.sent_at is not None for r in rows] == [True, False, False, False]
    summary = mail.send_outbox(database.factory, settings, now=now)  # the restart
    assert (summary.sent, summary.remaining) == (3, 0)
    ids = recorder.ids()
    assert ids == [rows[0].message_id, rows[1].message_id] + [r.message_id for r in rows[1:]]
    assert sorted(set(ids)) == sorted(r.message_id for r in rows)  # nothing lost


def test_random_kills_lose_no_mail(
    database: Database, ca_home: CaHome, tmp_path: Path, now: dt.datetime
) -> None:
    recorder = Recorder(delay=0.02)
    port = _free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = ra_settings(
            ca_home, database.url, tmp_path / "d", mode="offline", smtp_port=port
        )
        _mails(database, settings, now, 6)
        rng = random.Random(8)
        for _ in range(4):
            database.engine.dispose()
            pid = _fork_sender(database.url, settings, now, die_after_send=None)
            time.sleep(rng.uniform(0.0, 0.25))
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
        mail.send_outbox(database.factory, settings, now=now)
        rows = _rows(database)
        assert all(r.sent_at is not None for r in rows)
        assert set(recorder.ids()) == {r.message_id for r in rows}
    finally:
        controller.stop()


def test_smtp_login_and_password_file_problems_are_one_line(tmp_path: Path, smtp: Any) -> None:
    from shomei.errors import MalformedInput, NotFound, Refused

    _, port = smtp
    base = MailSettings(smtp_port=port, username="ra")
    with pytest.raises(ConfigError, match="password_file is not"):
        mail.connect(base)
    with pytest.raises(NotFound, match="SMTP password file not found"):
        mail.connect(dataclasses.replace(base, password_file=tmp_path / "none"))
    with pytest.raises(Refused, match=r"SMTP password file .* is a folder"):
        mail.connect(dataclasses.replace(base, password_file=tmp_path))
    (tmp_path / "pw").write_bytes(b"\xff\xfe")
    with pytest.raises(MalformedInput, match="not UTF-8"):
        mail.connect(dataclasses.replace(base, password_file=tmp_path / "pw"))
    (tmp_path / "pw").write_text("s3cret\n")
    # The test server offers no AUTH without TLS: the login is refused, in one line.
    with pytest.raises(
        ConfigError, match=r"refused the login of ra \(.*\): check ra\.mail"
    ) as info:
        mail.connect(dataclasses.replace(base, password_file=tmp_path / "pw"))
    assert "s3cret" not in info.value.message
    with pytest.raises(ConfigError, match="failed STARTTLS"):
        mail.connect(MailSettings(smtp_port=port, starttls=True))
