"""Ceremony transcripts: a signed hash chain that shows any edit, deletion, swap or truncation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ca.transcript import Transcript, verify_transcript
from shomei.errors import MalformedInput, NotFound, Refused, VerificationFailed
from signer.keys import SoftwareKey
from tests.pki import NOW, Pki


def _make(pki: Pki, path: Path, steps: int = 6) -> Path:
    t = Transcript(path, ceremony="test", now=NOW)
    for i in range(steps):
        t.append("step", now=NOW + dt.timedelta(seconds=i), n=i, note="鍵生成")
    t.sign_and_close(
        key=SoftwareKey(pki.keys["issuing"]),
        certificate=pki.certs["issuing"],
        now=NOW + dt.timedelta(minutes=1),
    )
    return path


def test_valid_transcript(pki: Pki, tmp_path: Path) -> None:
    path = _make(pki, tmp_path / "t.log")
    report = verify_transcript(path, trusted=[pki.certs["issuing"]])
    assert report.lines == 8
    assert report.ceremony == "test"
    assert report.signer == pki.certs["issuing"]


def test_untrusted_signer(pki: Pki, tmp_path: Path) -> None:
    path = _make(pki, tmp_path / "t.log")
    with pytest.raises(VerificationFailed):
        verify_transcript(path, trusted=[pki.certs["root"]])


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def _write(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"\n".join(lines) + b"\n")


@pytest.mark.parametrize("where", [1, 3, 6])
def test_edit_is_detected(pki: Pki, tmp_path: Path, where: int) -> None:
    path = _make(pki, tmp_path / "t.log")
    lines = _lines(path)
    lines[where] = lines[where].replace(b'"n":', b'"n": ')
    _write(path, lines)
    with pytest.raises(VerificationFailed):
        verify_transcript(path)


def test_edit_with_recomputed_json_is_detected(pki: Pki, tmp_path: Path) -> None:
    path = _make(pki, tmp_path / "t.log")
    lines = _lines(path)
    lines[2] = lines[2].replace(b'"n":1', b'"n":7')
    _write(path, lines)
    with pytest.raises(VerificationFailed, match="line 3 was altered"):
        verify_transcript(path)


@pytest.mark.parametrize("where", [1, 4])
def test_deletion_is_detected(pki: Pki, tmp_path: Path, where: int) -> None:
    path = _make(pki, tmp_path / "t.log")
    lines = _lines(path)
    del lines[where]
    _write(path, lines)
    with pytest.raises(VerificationFailed):
        verify_transcript(path)


def test_swap_is_detected(pki: Pki, tmp_path: Path) -> None:
    path = _make(pki, tmp_path / "t.log")
    lines = _lines(path)
    lines[2], lines[3] = lines[3], lines[2]
    _write(path, lines)
    with pytest.raises(VerificationFailed):
        verify_transcript(path)


def test_truncation_is_detected(pki: Pki, tmp_path: Path) -> None:
    path = _make(pki, tmp_path / "t.log")
    _write(path, _lines(path)[:-1])
    with pytest.raises(VerificationFailed, match="did not end"):
        verify_transcript(path)


def test_missing_signature(pki: Pki, tmp_path: Path) -> None:
    path = _make(pki, tmp_path / "t.log")
    path.with_name("t.log.p7s").unlink()
    with pytest.raises(VerificationFailed, match="missing"):
        verify_transcript(path)


def test_abandoned_transcript_is_reported(tmp_path: Path) -> None:
    t = Transcript(tmp_path / "a.log", ceremony="x", now=NOW)
    t.abandon(now=NOW, reason="power cut")
    with pytest.raises(VerificationFailed, match="did not end"):
        verify_transcript(tmp_path / "a.log")


def test_not_json(tmp_path: Path) -> None:
    (tmp_path / "g.log").write_bytes(b"garbage\n")
    with pytest.raises(MalformedInput):
        verify_transcript(tmp_path / "g.log")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        verify_transcript(tmp_path / "none.log")


def test_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "t.log").write_text("keep")
    with pytest.raises(Refused):
        Transcript(tmp_path / "t.log", ceremony="x", now=NOW)
    assert (tmp_path / "t.log").read_text() == "keep"
