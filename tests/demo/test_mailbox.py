"""The demo's SMTP sink and its port in the settings (:mod:`demo.mailbox`, :mod:`demo.serve`)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest

from demo.mailbox import SmtpSink
from demo.serve import free_port, set_smtp_port
from ra.web.console.mailbox import NAME
from shomei.errors import ConfigError


def test_the_sink_keeps_each_mail_as_an_eml_file(tmp_path: Path) -> None:
    sink = SmtpSink(tmp_path / "mailbox", port=free_port())
    sink.start()
    try:
        for n in range(2):
            message = EmailMessage()
            message["From"] = "shomei@federation.example"
            message["To"] = f"office{n}@office.example"
            message["Subject"] = f"証明書が発行されました {n}"
            message.set_content("中央事業所 様")
            with smtplib.SMTP(sink.host, sink.port, timeout=10) as smtp:
                smtp.send_message(message)
    finally:
        sink.stop()
    files = sorted((tmp_path / "mailbox").iterdir())
    assert len(files) == 2 and all(NAME.match(f.name) for f in files)  # what the console lists
    assert b"office0@office.example" in files[0].read_bytes() + files[1].read_bytes()


def test_a_taken_port_is_a_config_error(tmp_path: Path) -> None:
    first = SmtpSink(tmp_path / "a", port=free_port())
    first.start()
    try:
        with pytest.raises(ConfigError):
            SmtpSink(tmp_path / "b", port=first.port).start()
    finally:
        first.stop()


def test_set_smtp_port_rewrites_the_one_line(tmp_path: Path) -> None:
    settings = tmp_path / "ra.toml"
    settings.write_text('[ra.mail]\nsmtp_host = "127.0.0.1"\nsmtp_port = 8025\n', encoding="utf-8")
    set_smtp_port(settings, 40123)
    assert settings.read_text(encoding="utf-8").splitlines()[2] == "smtp_port = 40123"
    settings.write_text("[ra.mail]\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        set_smtp_port(settings, 40123)
