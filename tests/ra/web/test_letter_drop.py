"""ra.web.letter_drop: letters with passwords, sealed for their owner for a few minutes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from pathlib import Path

import pytest

from ra.settings import DocumentSettings, RASettings
from ra.store.vault import create_key_file
from ra.web import letter_drop
from shomei.errors import ConfigError, NotFound
from tests.ra_profile import FEES

NOW = dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.UTC)
PAGES = [{"user_id": "of12345678", "login_password": "Secret-pass-1"}]


def test_round_trip_sealed_and_private(tmp_path: Path) -> None:
    vault = create_key_file(tmp_path / "key")
    token = letter_drop.put(
        tmp_path, vault, owner=7, kind="login", pages=PAGES, now=NOW, rng=lambda n: b"\x01" * n
    )
    assert token == "01" * 16
    path = tmp_path / "letters" / f"{token}.sealed"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert b"Secret-pass-1" not in path.read_bytes()  # sealed, not in clear
    drop = letter_drop.get(tmp_path, vault, token, owner=7, now=NOW + dt.timedelta(minutes=14))
    assert drop.kind == "login" and drop.pages == PAGES and drop.made_at == NOW


def test_someone_else_an_unknown_token_and_expiry_are_not_found(tmp_path: Path) -> None:
    vault = create_key_file(tmp_path / "key")
    token = letter_drop.put(tmp_path, vault, owner=7, kind="accounts", pages=PAGES, now=NOW)
    with pytest.raises(NotFound):
        letter_drop.get(tmp_path, vault, token, owner=8, now=NOW)
    with pytest.raises(NotFound):
        letter_drop.get(tmp_path, vault, "../" + token, owner=7, now=NOW)
    with pytest.raises(NotFound):
        letter_drop.get(tmp_path, vault, "0" * 32, owner=7, now=NOW)
    later = NOW + letter_drop.TTL + dt.timedelta(seconds=1)
    with pytest.raises(NotFound):
        letter_drop.get(tmp_path, vault, token, owner=7, now=later)


def test_expired_drops_are_deleted(tmp_path: Path) -> None:
    vault = create_key_file(tmp_path / "key")
    old = letter_drop.put(tmp_path, vault, owner=1, kind="issuance", pages=PAGES, now=NOW)
    path = tmp_path / "letters" / f"{old}.sealed"
    stamp = (NOW - dt.timedelta(minutes=20)).timestamp()
    os.utime(path, (stamp, stamp))
    letter_drop.put(tmp_path, vault, owner=1, kind="issuance", pages=PAGES, now=NOW)
    assert not path.exists()


def test_letters_need_the_federation_address(tmp_path: Path) -> None:
    settings = RASettings(fees=FEES, database_url="sqlite://", data_dir=tmp_path)
    with pytest.raises(ConfigError) as refused:
        letter_drop.issuer(settings)
    assert "issuer_address" in str(refused.value)
    settings = dataclasses.replace(
        settings, documents=DocumentSettings(issuer_address="東京都千代田区霞が関1-1-1")
    )
    assert letter_drop.issuer(settings).address == "東京都千代田区霞が関1-1-1"
