"""Secret files the CA reads (custodian shares, token PINs) and the typed-back share check.

A share file open to other users is refused as ssh refuses an unprotected private key; a file
that is not UTF-8, not a regular file or far too large is one clear error; ``check-share``
prompts and does not echo what is typed.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from io import BytesIO, TextIOWrapper
from pathlib import Path

import pytest
from click.testing import CliRunner

from ca.custody.__main__ import main as custody_main
from ca.custody.secretfile import MAX_SIZE, read_pin_file, read_share_file
from ca.custody.shares import split_secret
from cli.main import main
from shomei.errors import MalformedInput, NotFound, Refused

SHARE = split_secret(bytes(range(16)), m=2, n=3, key_id="test-key")[0]
REPO = Path(__file__).resolve().parents[2]


def _file(tmp_path: Path, data: bytes, mode: int = 0o600, name: str = "share.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_private_share_file_is_read(tmp_path: Path) -> None:
    path = _file(tmp_path, SHARE.encode().encode() + b"\n")
    assert read_share_file(path).strip() == SHARE.encode()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602])
def test_share_file_open_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = _file(tmp_path, SHARE.encode().encode(), mode)
    with pytest.raises(Refused, match=f"open to other users \\(mode {mode:04o}\\).*chmod 600"):
        read_share_file(path)


def test_pin_file_open_to_others_is_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, b"1234\n", 0o644, "pin")
    with pytest.raises(Refused, match="PIN file"):
        read_pin_file(path)
    path.chmod(0o600)
    assert read_pin_file(path) == "1234"


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (b"\xff\xfe share", MalformedInput, "not UTF-8"),
        (b"x" * (MAX_SIZE + 1), Refused, "more than"),
    ],
)
def test_bad_share_file_contents(
    tmp_path: Path, data: bytes, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        read_share_file(_file(tmp_path, data))


def test_missing_and_folder(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        read_share_file(tmp_path / "none")
    with pytest.raises(Refused, match="not a regular file"):
        read_share_file(tmp_path)


def test_empty_pin_file(tmp_path: Path) -> None:
    with pytest.raises(MalformedInput, match="empty"):
        read_pin_file(_file(tmp_path, b"\n\n", name="pin"))


# -- check-share --------------------------------------------------------------------------


def _check_share(data: bytes) -> object:
    return CliRunner().invoke(main, ["ca", "check-share"], input=data)


def test_check_share_prompts_and_reports_the_fingerprint() -> None:
    result = _check_share(SHARE.encode().encode() + b"\n")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "share (input is hidden):" in result.stderr  # type: ignore[attr-defined]
    assert result.stdout.startswith("OK: key test-key, share 1 (2-of-3)")  # type: ignore[attr-defined]
    assert SHARE.encode() not in result.output  # type: ignore[attr-defined]


def test_check_share_typo_is_ng() -> None:
    text = SHARE.encode()
    typo = text[:-1] + ("A" if text[-1] != "A" else "B")
    result = _check_share(typo.encode() + b"\n")
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert result.stdout.startswith("NG: share has a typo")  # type: ignore[attr-defined]


@pytest.mark.parametrize("data", [b"\xff\xfe\xfd\n", b"SHOMEI-SHARE-1:\x80\x81\n", b""])
def test_check_share_bad_input_is_one_line(data: bytes) -> None:
    result = _check_share(data)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert isinstance(result.exception, SystemExit)  # type: ignore[attr-defined]
    errors = [line for line in result.stderr.splitlines() if line.startswith("shomei:")]  # type: ignore[attr-defined]
    assert len(errors) == 1


def test_python_m_custody_non_utf8_is_ng() -> None:
    out = TextIOWrapper(BytesIO(), encoding="utf-8")
    code = custody_main(TextIOWrapper(BytesIO(b"\xff\xfe\n"), encoding="utf-8"), out)
    out.seek(0)
    assert code == 2 and out.read().startswith("NG:")


def _read_until(fd: int, needle: bytes, timeout: float = 30.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_check_share_at_a_terminal_does_not_echo() -> None:
    """Typed at a real terminal (a pseudo-terminal here), the share is not shown."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "ca", "check-share"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        cwd=REPO,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    os.close(terminal)
    try:
        shown = _read_until(controller, b"share (input is hidden):")
        assert b"share (input is hidden):" in shown, shown
        os.write(controller, SHARE.encode().encode() + b"\n")
        shown += _read_until(controller, b"fingerprint")
        assert proc.wait(timeout=60) == 0, shown
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(controller)
    assert b"OK: key test-key" in shown
    assert SHARE.encode().encode() not in shown, "the share was echoed"
