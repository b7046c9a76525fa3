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


def test_read_bytes_missing_folder_and_ok(tmp_path: Path) -> None:
    from shomei.errors import NotFound
    from shomei.files import read_bytes

    (tmp_path / "a.crl").write_bytes(b"x")
    assert read_bytes(tmp_path / "a.crl", what="CRL file", what_ja="CRL ファイル") == b"x"
    with pytest.raises(NotFound, match="CRL file not found"):
        read_bytes(tmp_path / "none.crl", what="CRL file", what_ja="CRL ファイル")
    with pytest.raises(Refused, match="is a folder, not a file"):
        read_bytes(tmp_path, what="CRL file", what_ja="CRL ファイル")
