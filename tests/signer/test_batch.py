"""Batch mode: a folder of claims verified on several processes, reported as CSV for Excel."""

from __future__ import annotations

import csv
import os
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


# -- what a folder may hold besides claims: subfolders, links, special files ----------------


def _sign_into(pki: Pki, path: Path, name: str = "office") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(CLAIM + path.name.encode())
    sign_file(path, credentials=credentials(pki, name), signing_time=NOW)


def _by_label(rows: list[batch.Row]) -> dict[str, batch.Row]:
    return {row.item.label: row for row in rows}


def test_subfolders_are_verified_with_relative_paths(
    pki: Pki, make_verifier: MakeVerifier, tmp_path: Path
) -> None:
    folder = tmp_path / "claims"
    _sign_into(pki, folder / "top.csv")
    _sign_into(pki, folder / "1310000001" / "2026-11.csv")
    _sign_into(pki, folder / "1310000002" / "deeper" / "revoked.csv", "revoked")
    (folder / ".hidden").mkdir()
    _sign_into(pki, folder / ".hidden" / "skipped.csv")
    rows = batch.verify_folder(make_verifier(), folder, workers=1)
    labels = [row.item.label for row in rows]
    assert labels == ["1310000001/2026-11.csv", "1310000002/deeper/revoked.csv", "top.csv"]
    by_label = _by_label(rows)
    assert by_label["1310000001/2026-11.csv"].verdict.ok
    assert by_label["1310000002/deeper/revoked.csv"].verdict.reasons[0].code == "revoked"
    report = tmp_path / "report.csv"
    batch.write_report(rows, report)
    lines = list(csv.DictReader(report.read_text(encoding="utf-8-sig").splitlines()))
    assert [(x["claim"], x["signature"]) for x in lines][:2] == [
        ("1310000001/2026-11.csv", "1310000001/2026-11.csv.p7s"),
        ("1310000002/deeper/revoked.csv", "1310000002/deeper/revoked.csv.p7s"),
    ]


def test_links_loops_and_special_files_are_one_row_each(
    pki: Pki, make_verifier: MakeVerifier, tmp_path: Path
) -> None:
    folder = tmp_path / "claims"
    _sign_into(pki, folder / "sub" / "a.csv")
    (folder / "sub" / "back").symlink_to("..")  # a loop: claims/sub/back -> claims
    (folder / "again").symlink_to("sub")  # a second way into sub
    (folder / "dangling.csv").symlink_to("nowhere.csv")
    (folder / "self").symlink_to("self")
    os.mkfifo(folder / "pipe")  # reading it would block for ever
    rows = batch.verify_folder(make_verifier(), folder, workers=1)
    by_label = _by_label(rows)
    codes = {
        label: row.verdict.reasons[0].code for label, row in by_label.items() if not row.verdict.ok
    }
    assert codes == {
        "again": "folder_seen",
        "sub/back": "folder_seen",
        "dangling.csv": "broken_link",
        "self": "broken_link",
        "pipe": "not_a_file",
    }
    assert by_label["sub/a.csv"].verdict.ok  # under its own path, once
    assert sum(1 for row in rows if row.verdict.ok) == 1
    assert all(row.verdict.status is Status.UNDECIDED for row in rows if not row.verdict.ok)
    assert batch.exit_code(rows) == 2


def test_unreadable_folder_and_file(
    pki: Pki, make_verifier: MakeVerifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "claims"
    _sign_into(pki, folder / "locked" / "a.csv")
    _sign_into(pki, folder / "b.csv")
    real_scandir, real_open = os.scandir, os.open

    # Permissions do not stop root (these tests may run as root), so the OS is told to refuse.
    def scandir(path: object) -> object:
        if Path(str(path)).name == "locked":
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)  # type: ignore[arg-type]

    def open_(path: object, flags: int, *args: object) -> int:
        if Path(str(path)).name == "b.csv":
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "open", open_)
    rows = _by_label(batch.verify_folder(make_verifier(), folder, workers=1))
    assert set(rows) == {"locked", "b.csv"}
    assert rows["locked"].verdict.reasons[0].code == "unreadable_folder"
    assert "Permission denied" in rows["locked"].verdict.summary()
    assert rows["b.csv"].verdict.status is Status.UNDECIDED
    assert "cannot read the claim" in rows["b.csv"].verdict.summary()


def test_names_that_are_not_utf8_reach_the_report(
    pki: Pki, make_verifier: MakeVerifier, tmp_path: Path
) -> None:
    folder = tmp_path / "claims"
    folder.mkdir()
    name = os.fsdecode(b"\xff\xfeclaim.csv")
    (folder / name).write_bytes(CLAIM)  # unsigned
    rows = batch.verify_folder(make_verifier(), folder, workers=1)
    assert rows[0].item.name == "\\xff\\xfeclaim.csv"
    batch.write_report(rows, tmp_path / "r.csv")
    assert "\\xff\\xfeclaim.csv" in (tmp_path / "r.csv").read_text(encoding="utf-8-sig")
