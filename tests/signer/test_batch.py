"""Batch mode: a folder of claims verified on several processes, reported as CSV for Excel."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from shomei.errors import Refused
from signer import batch
from signer.claims import sign_file
from signer.pades import sign_pdf
from signer.verdict import Status
from signer.verifier import Verifier
from tests.pki import NOW, Pki
from tests.signer.conftest import CLAIM, credentials
from tests.signer.test_pades import small_pdf

MakeVerifier = Callable[..., Verifier]


def _folder(pki: Pki, folder: Path, good: int = 80) -> None:
    for i in range(good):
        claim = folder / f"claim-{i:03}.csv"
        claim.write_bytes(CLAIM + str(i).encode())
        sign_file(claim, credentials=credentials(pki, "office"), signing_time=NOW)
    revoked = folder / "z-revoked.csv"
    revoked.write_bytes(CLAIM)
    sign_file(revoked, credentials=credentials(pki, "revoked"), signing_time=NOW)
    tampered = folder / "z-tampered.csv"
    tampered.write_bytes(CLAIM)
    sign_file(tampered, credentials=credentials(pki, "office"), signing_time=NOW)
    tampered.write_bytes(CLAIM + b"+1")
    (folder / "z-unsigned.csv").write_bytes(CLAIM)
    (folder / "z-orphan.csv.p7s").write_bytes(b"\x30\x00")
    (folder / "z-signed.pdf").write_bytes(
        sign_pdf(small_pdf(), credentials=credentials(pki, "office"))
    )


def test_folder_on_two_processes(pki: Pki, make_verifier: MakeVerifier, tmp_path: Path) -> None:
    _folder(pki, tmp_path)
    seen: list[int] = []
    rows = batch.verify_folder(make_verifier(), tmp_path, workers=2, progress=seen.append)
    assert sum(seen) == len(rows) == 85
    by_name = {row.item.claim.name: row.verdict for row in rows}
    assert [r.item.claim.name for r in rows] == sorted(by_name)  # file order kept
    assert all(by_name[f"claim-{i:03}.csv"].ok for i in range(80))
    assert by_name["z-revoked.csv"].reasons[0].code == "revoked"
    assert by_name["z-tampered.csv"].reasons[0].code == "digest"
    assert by_name["z-unsigned.csv"].reasons[0].code == "unsigned"
    assert by_name["z-orphan.csv"].status is Status.UNDECIDED
    assert by_name["z-signed.pdf"].ok
    assert batch.exit_code(rows) == 1

    report = tmp_path / "report.csv"
    batch.write_report(rows, report)
    raw = report.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw  # Excel: BOM and CRLF
    lines = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert tuple(lines[0]) == batch.COLUMNS
    revoked = next(line for line in lines if line["claim"] == "z-revoked.csv")
    assert revoked["status"] == "invalid" and "失効" in revoked["reason_ja"]
    assert revoked["serial_hex"] == f"{pki.certs['revoked'].serial_number:x}"


def test_one_process_gives_the_same_rows(
    pki: Pki, make_verifier: MakeVerifier, tmp_path: Path
) -> None:
    _folder(pki, tmp_path, good=3)
    rows = batch.verify_folder(make_verifier(), tmp_path, workers=1)
    assert [r.verdict.status for r in rows].count(Status.VALID) == 4
    assert batch.exit_code(rows[:3]) == 0
    assert batch.exit_code([r for r in rows if r.item.claim.name == "z-orphan.csv"]) == 2


def test_report_defuses_formulas(tmp_path: Path) -> None:
    row = batch.Row(
        batch.Item(tmp_path / "=cmd()", None), batch._verdict(Status.INVALID, "unsigned", "x", "x")
    )
    batch.write_report([row], tmp_path / "r.csv")
    assert "'=cmd()" in (tmp_path / "r.csv").read_text(encoding="utf-8-sig")


def test_not_a_folder(tmp_path: Path, make_verifier: MakeVerifier) -> None:
    with pytest.raises(Refused, match="not a folder"):
        batch.verify_folder(make_verifier(), tmp_path / "missing")
    with pytest.raises(Refused, match="cannot write"):
        batch.write_report([], tmp_path / "missing" / "r.csv")


def test_an_unexpected_error_is_one_undecided_row(
    pki: Pki, make_verifier: MakeVerifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _folder(pki, tmp_path, good=1)
    verifier = make_verifier()

    def broken(*args: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(verifier, "verify_files", broken)
    rows = batch.verify_folder(verifier, tmp_path, workers=1)
    row = next(r for r in rows if r.item.claim.name == "claim-000.csv")
    assert row.verdict.status is Status.UNDECIDED
    assert row.verdict.reasons[0].code == "internal_error"
    assert "RuntimeError" in row.verdict.summary()
