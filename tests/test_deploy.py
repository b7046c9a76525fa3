"""The files of deploy/ are what the RA operator guide says to install: they must stay valid."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ra.settings import load_ra_settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def test_the_example_settings_load_with_every_key_known(tmp_path: Path) -> None:
    """deploy/ra.toml is read by the strict loader (an unknown or misspelt key fails)."""
    etc = tmp_path / "etc"
    (etc / "profiles").mkdir(parents=True)
    # As the operator does: the federation's bank account filled in (there is no sample one).
    text = (DEPLOY / "ra.toml").read_text(encoding="utf-8")
    assert "# [ra.fees.bank_account]" in text
    account = (
        '[ra.fees.bank_account]\nbank = "テスト銀行"\nbranch = "試験支店"\naccount_type = "普通"\n'
        'number = "7654321"\nholder_kana = "シヨウメイテストレンゴウカイ"\n'
    )
    (etc / "ra.toml").write_text(text.replace("# [ra.fees.bank_account]\n", account, 1))
    shutil.copy(ROOT / "conf" / "profiles" / "office.toml", etc / "profiles" / "office.toml")
    settings = load_ra_settings(etc / "ra.toml")
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.link.mode == "offline" and settings.web.behind_tls
    assert settings.mail.starttls and settings.mail.smtp_port == 587


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("unit", ["shomei-ra-web.service", "shomei-ra-scheduler.service"])
def test_the_systemd_units_verify(tmp_path: Path, unit: str) -> None:
    """``systemd-analyze verify`` accepts the unit (its command pointed at this checkout's)."""
    text = (DEPLOY / unit).read_text(encoding="utf-8")
    shomei = Path(sys.executable).with_name("shomei")
    assert "/opt/shomei/venv/bin/shomei" in text
    (tmp_path / unit).write_text(text.replace("/opt/shomei/venv/bin/shomei", str(shomei)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        # A container without a running systemd says so; that is not a problem of the unit.
        if line.strip()
        and "System has not been booted with systemd" not in line
        and "Failed to connect to bus" not in line
    ]
    assert result.returncode == 0 and not problems, "\n".join(problems)
