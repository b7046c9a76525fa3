"""shomei.files.write_new: exclusive, exact mode, never overwrites."""

from __future__ import annotations

from pathlib import Path

import pytest

from shomei.errors import ConfigError, Refused
from shomei.files import write_new


def test_creates_with_mode(tmp_path: Path) -> None:
    target = tmp_path / "a" / "key.p8"
    write_new(target, b"secret", mode=0o600)
    assert target.read_bytes() == b"secret"
    assert target.stat().st_mode & 0o777 == 0o600


def test_refuses_existing(tmp_path: Path) -> None:
    target = tmp_path / "x.crl"
    target.write_bytes(b"old")
    with pytest.raises(Refused):
        write_new(target, b"new")
    assert target.read_bytes() == b"old"


def test_unwritable_place(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises((ConfigError, Refused)):
        write_new(tmp_path / "file" / "below", b"x")
