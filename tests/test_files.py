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


# -- the input layer: checked before a byte is read -------------------------------------------


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    import os

    from shomei.files import check_file, read_bytes, read_head, sha256_file

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # no writer: a plain open() would wait for ever
    for reader in (read_bytes, sha256_file, check_file):
        with pytest.raises(Refused, match="not a regular file"):
            reader(fifo, what="claim", what_ja="請求ファイル")
    with pytest.raises(Refused, match="not a regular file"):
        read_head(fifo, 10, what="claim", what_ja="請求ファイル")


def test_device_is_refused(tmp_path: Path) -> None:
    from shomei.files import read_bytes

    with pytest.raises(Refused, match="not a regular file"):
        read_bytes(Path("/dev/zero"), what="CRL file", what_ja="CRL ファイル")


def test_size_is_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from shomei import files

    huge = tmp_path / "huge.crl"
    huge.touch()
    os.truncate(huge, 8 << 30)  # sparse: costs no disk
    reads: list[int] = []
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    with pytest.raises(Refused, match=r"more than the 512\.0 MiB"):
        files.read_bytes(huge, what="CRL file", what_ja="CRL ファイル")
    with pytest.raises(Refused, match="is 16 bytes, more than the 10 bytes"):
        (tmp_path / "small").write_bytes(b"x" * 16)
        files.read_bytes(tmp_path / "small", what="PIN file", what_ja="PIN", limit=10)
    assert reads == []  # refused on the size alone


def test_a_file_that_grows_past_the_cap_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from shomei import files

    path = tmp_path / "growing"
    path.write_bytes(b"x" * 8)
    real_fstat = os.fstat

    def fstat(fd: int) -> os.stat_result:  # it was small when looked at...
        info = real_fstat(fd)
        return os.stat_result((info.st_mode, *info[1:6], 4, *info[7:]))

    monkeypatch.setattr(os, "fstat", fstat)
    with pytest.raises(Refused, match="more than"):  # ...and at most limit + 1 bytes are read
        files.read_bytes(path, what="claim", what_ja="請求", limit=5)


def test_read_text_names_the_bad_byte(tmp_path: Path) -> None:
    from shomei.errors import MalformedInput
    from shomei.files import read_text

    path = tmp_path / "ra.toml"
    path.write_bytes(b"ok = 1\n\xff")
    with pytest.raises(MalformedInput, match=r"not UTF-8 text \(byte 8\)"):
        read_text(path, what="settings", what_ja="設定")


def test_sha256_file_streams(tmp_path: Path) -> None:
    import hashlib

    from shomei.files import sha256_file

    path = tmp_path / "claim.csv"
    data = b"0123456789" * 300_000  # several blocks
    path.write_bytes(data)
    assert sha256_file(path, what="claim", what_ja="請求") == hashlib.sha256(data).digest()
    with pytest.raises(Refused, match="more than"):
        sha256_file(path, what="claim", what_ja="請求", limit=1000)


def test_write_file_replaces_only_regular_files(tmp_path: Path) -> None:
    import os

    from shomei.files import write_file

    out = tmp_path / "out.p7s"
    write_file(out, b"one", overwrite=False)
    with pytest.raises(Refused, match="already exists"):
        write_file(out, b"two", overwrite=False)
    write_file(out, b"two", overwrite=True)
    assert out.read_bytes() == b"two"
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(Refused, match="not a regular file"):
        write_file(tmp_path / "pipe", b"x", overwrite=True)  # would block for a reader
    (tmp_path / "folder").mkdir()
    with pytest.raises(Refused, match="not a regular file"):
        write_file(tmp_path / "folder", b"x", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "out.p7s", "pipe"]
