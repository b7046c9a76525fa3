"""Ceremony transcripts: a signed hash chain that shows any edit, deletion, swap or truncation."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from ca.transcript import (
    FORMAT,
    FORMAT_1,
    GENESIS,
    Transcript,
    file_digest,
    link_to,
    transcripts_in,
    verify_chain,
    verify_transcript,
)
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


# -- the chain of transcripts in a CA home ----------------------------------------------------


def _ceremony(pki: Pki, folder: Path, n: int, *, name: str = "c") -> Path:
    """The n-th transcript of ``folder``, linked to the one before it, as a ceremony makes it."""
    when = NOW + dt.timedelta(days=n)
    path = folder / f"{when:%Y%m%dT%H%M%SZ}-{name}{n}.log"
    before = transcripts_in(folder)[-1:]
    t = Transcript(
        path, ceremony=f"{name}{n}", now=when, previous=link_to(before[0]) if before else None
    )
    t.append("step", now=when, n=n)
    t.sign_and_close(
        key=SoftwareKey(pki.keys["issuing"]), certificate=pki.certs["issuing"], now=when
    )
    return path


def _chain(pki: Pki, folder: Path, count: int = 3) -> list[Path]:
    return [_ceremony(pki, folder, n) for n in range(count)]


def _remove(path: Path) -> None:
    path.unlink()
    path.with_name(path.name + ".p7s").unlink()


def test_chain_of_transcripts_verifies(pki: Pki, tmp_path: Path) -> None:
    paths = _chain(pki, tmp_path)
    reports = verify_chain(tmp_path, trusted=[pki.certs["issuing"]])
    assert [r.path for r in reports] == paths
    assert reports[0].previous is None
    assert reports[2].previous == {"file": paths[1].name, "sha256": file_digest(paths[1])}


def test_deleted_transcript_in_the_middle_is_reported(pki: Pki, tmp_path: Path) -> None:
    paths = _chain(pki, tmp_path)
    _remove(paths[1])
    # Each file left is intact and signed: only the link shows the loss.
    for path in (paths[0], paths[2]):
        verify_transcript(path)
    with pytest.raises(VerificationFailed, match=f"{paths[2].name} follows {paths[1].name}"):
        verify_chain(tmp_path)


def test_deleted_first_transcript_is_reported(pki: Pki, tmp_path: Path) -> None:
    paths = _chain(pki, tmp_path)
    _remove(paths[0])
    with pytest.raises(VerificationFailed, match="which is missing"):
        verify_chain(tmp_path)


def test_swapped_transcripts_are_reported(pki: Pki, tmp_path: Path) -> None:
    paths = _chain(pki, tmp_path)
    swap = tmp_path / "swap"
    for a, b in ((paths[0], swap), (paths[1], paths[0]), (swap, paths[1])):
        a.rename(b)
        a.with_name(a.name + ".p7s").rename(b.with_name(b.name + ".p7s"))
    with pytest.raises(VerificationFailed, match="renamed"):
        verify_chain(tmp_path)


def test_replaced_transcript_is_reported(pki: Pki, tmp_path: Path) -> None:
    paths = _chain(pki, tmp_path, 2)
    # Another, validly signed transcript under the same name: the next one's link catches it.
    text = paths[0].read_bytes()
    _remove(paths[0])
    when = NOW
    t = Transcript(paths[0], ceremony="c0", now=when)
    t.append("step", now=when, n=99)
    t.sign_and_close(
        key=SoftwareKey(pki.keys["issuing"]), certificate=pki.certs["issuing"], now=when
    )
    assert paths[0].read_bytes() != text
    with pytest.raises(VerificationFailed, match="replaced"):
        verify_chain(tmp_path)


def test_old_unlinked_transcripts_stay_readable(pki: Pki, tmp_path: Path) -> None:
    """Format 1 transcripts (before the link) come first; the first linked one follows them."""
    import json

    old = _make(pki, tmp_path / "20200101T000000Z-old.log")
    lines = _lines(old)
    first = json.loads(lines[0])
    assert first["details"].pop("previous") is None
    first["details"]["format"] = FORMAT_1
    # Re-chain and re-sign as the old code wrote them (no "previous" in the begin line).
    t = Transcript.__new__(Transcript)
    old.unlink()
    old.with_name(old.name + ".p7s").unlink()
    t.path, t._prev, t._seq = old, GENESIS, 0
    t._file = old.open("x", encoding="utf-8")
    t.append("begin", now=NOW, **first["details"])
    t.append("step", now=NOW, n=0)
    t.sign_and_close(
        key=SoftwareKey(pki.keys["issuing"]), certificate=pki.certs["issuing"], now=NOW
    )
    assert verify_transcript(old).format == FORMAT_1
    new = _ceremony(pki, tmp_path, 1)
    reports = verify_chain(tmp_path)
    assert [r.format for r in reports] == [FORMAT_1, FORMAT]
    assert reports[1].previous == {"file": old.name, "sha256": file_digest(old)}
    # An unlinked transcript after a linked one was added later: refused.
    shutil.copy(old, tmp_path / "20991231T000000Z-old.log")
    shutil.copy(old.with_name(old.name + ".p7s"), tmp_path / "20991231T000000Z-old.log.p7s")
    with pytest.raises(VerificationFailed, match="unlinked"):
        verify_chain(tmp_path)
    assert new.exists()


def test_no_transcripts(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        verify_chain(tmp_path)
