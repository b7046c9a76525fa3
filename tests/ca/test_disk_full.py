"""A full disk during ``sign-batch``: refused before signing, or stopped with the old state kept.

The CA home lives on a small tmpfs mounted for the test (the suite runs as root in CI; where
mounting is not permitted the tests are skipped and say why).  Three ways to run out:

- up front: the free space is below the generous estimate, so nothing is signed at all;
- half-way: the check passed, then the disk fills (another program wrote to it) while the CA
  records serials in the ledger, writes the CRL, or keeps the result; the operator gets one
  line saying what failed, the ledger is consistent (integrity check, every signed serial
  with its certificate, the batch still unfinished), and once there is room again the same
  command finishes the batch, each request signed exactly once;
- the operator's OUT: its disk is full after the signing; the result is kept in ``results/``,
  the message says so, and the same command with another OUT writes the same bytes.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ca.batchstore import MARGIN_BYTES, MARGIN_FACTOR, estimate
from cli.main import main
from contract.batch import read_result_batch
from tests.ca.test_batch_home import CaHome, build_ca_home
from tests.ca.test_signbatch import issue, request_batch
from tests.pki import Pki

REQUESTS = 24


def _mount(folder: Path, size: str) -> Path:
    folder.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    return folder


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """Mount tmpfs file systems of a given size under ``tmp_path``; unmounted afterwards."""
    mounted: list[Path] = []

    def make(name: str, size: str) -> Path:
        mounted.append(_mount(tmp_path / name, size))
        return mounted[-1]

    yield make
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _free(folder: Path) -> int:
    stat = os.statvfs(folder)
    return stat.f_bavail * stat.f_frsize


def _fill(folder: Path, *, leave: int = 0) -> Path:
    """Write a filler file until only ``leave`` bytes (or nothing) are free on the disk."""
    filler = folder / f"filler-{len(list(folder.glob('filler-*')))}"
    with filler.open("wb") as out:
        for chunk in (1 << 20, 1 << 16, 4096, 512, 1):
            while _free(folder) - chunk >= leave:
                try:
                    out.write(b"\0" * chunk)
                    out.flush()
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    return filler


def _shares(home: CaHome) -> list[str]:
    args: list[str] = []
    for i in (0, 2):
        path = home.folder.parent / f"share-{i}.txt"
        path.write_text(home.shares[i].encode() + "\n", encoding="utf-8")
        path.chmod(0o600)  # a share file open to others is refused
        args += ["--share-file", str(path)]
    return args


def _sign(home: CaHome, request: Path, out: Path) -> Any:
    args = ["ca", "sign-batch", str(request), str(out), "--ca-home", str(home.folder)]
    return CliRunner().invoke(main, [*args, *_shares(home)], catch_exceptions=False)


def _ledger(home: CaHome) -> sqlite3.Connection:
    return sqlite3.connect(home.folder / "ledger.sqlite")


def _check_consistent(home: CaHome) -> None:
    db = _ledger(home)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute(
            "SELECT count(*) FROM serials WHERE state = 'signed' AND certificate IS NULL"
        ).fetchone() == (0,)
    finally:
        db.close()


def _signed_once_each(home: CaHome) -> None:
    db = _ledger(home)
    try:
        rows = dict(
            db.execute(
                "SELECT request_id, count(*) FROM serials WHERE state = 'signed'"
                " GROUP BY request_id"
            ).fetchall()
        )
        assert rows == {f"iss-{n}": 1 for n in range(REQUESTS)}
        assert db.execute("SELECT count(*) FROM batches WHERE outcome != 'done'").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM serials WHERE state = 'reserved'").fetchone() == (
            0,
        )
    finally:
        db.close()


@pytest.fixture
def home_on_small_disk(small_disk: Callable[[str, str], Path], pki: Pki) -> CaHome:
    return build_ca_home(small_disk("ca-disk", "8m") / "home", pki)


def test_too_little_room_is_refused_before_anything_is_signed(
    home_on_small_disk: CaHome, tmp_path: Path
) -> None:
    home = home_on_small_disk
    request = tmp_path / "in.p7m"
    request.write_bytes(request_batch(home, [issue(n) for n in range(REQUESTS)]))
    with home.open() as ca:
        from contract.batch import read_request_batch

        parsed = read_request_batch(request.read_bytes(), trusted=ca.trusted_ra)
    need = estimate(parsed, request_size=request.stat().st_size, revoked=0)
    wanted = (need["ledger"] + need["crl"] + need["result"] + need["request"]) * MARGIN_FACTOR
    filler = _fill(home.folder, leave=wanted + MARGIN_BYTES - 64 * 1024)
    out = tmp_path / "out.p7m"
    result = _sign(home, request, out)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "not enough free space" in line and "nothing was signed" in line
    assert not out.exists() and not (home.folder / "requests").exists()
    db = _ledger(home)
    assert db.execute("SELECT count(*) FROM serials").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM batches").fetchone() == (0,)
    db.close()
    filler.unlink()
    again = _sign(home, request, out)
    assert again.exit_code == 0, again.output
    _signed_once_each(home)


@pytest.mark.parametrize("where", ["ledger", "crl", "result"])
def test_disk_full_half_way_keeps_the_ledger_consistent_and_the_same_command_finishes(
    home_on_small_disk: CaHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    home = home_on_small_disk
    request = tmp_path / "in.p7m"
    request.write_bytes(request_batch(home, [issue(n) for n in range(REQUESTS)]))
    fillers: list[Path] = []

    def fill() -> None:
        if not fillers:
            fillers.append(_fill(home.folder))

    import ca.issuebatch
    import ca.signbatch

    if where == "ledger":
        # The disk fills once the first certificates are recorded: the next ledger commit
        # (serials of the next chunk, or certificates) cannot be written.
        real_issue_many = ca.issuebatch.issue_many

        def issue_many(*args: Any, **kwargs: Any) -> Any:
            inner = kwargs["progress"]

            def progress(done: int) -> None:
                inner(done)
                fill()

            return real_issue_many(*args, **{**kwargs, "progress": progress})

        monkeypatch.setattr(ca.signbatch, "issue_many", issue_many)
    elif where == "crl":
        real_issue_crl = ca.signbatch.issue_crl

        def issue_crl(*args: Any, **kwargs: Any) -> Any:
            fill()
            return real_issue_crl(*args, **kwargs)

        monkeypatch.setattr(ca.signbatch, "issue_crl", issue_crl)
    else:
        real_write = ca.signbatch.write_result_batch

        def write_result_batch(*args: Any, **kwargs: Any) -> Any:
            data = real_write(*args, **kwargs)
            fill()
            return data

        monkeypatch.setattr(ca.signbatch, "write_result_batch", write_result_batch)
    out = tmp_path / "out.p7m"
    result = _sign(home, request, out)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    line = result.stderr.strip().splitlines()[-1]  # after the progress lines: the error
    assert line.startswith("shomei: ") and ("No space left" in line or "disk is full" in line)
    assert not out.exists()
    _check_consistent(home)
    db = _ledger(home)
    assert db.execute("SELECT outcome FROM batches").fetchall() != [("done",)]
    db.close()
    monkeypatch.undo()
    for filler in fillers:
        filler.unlink()
    # Room again: the same command finishes the batch; no request is signed twice.
    again = _sign(home, request, out)
    assert again.exit_code == 0, again.output
    assert "never finished" in again.stdout
    _signed_once_each(home)
    with home.open() as ca:
        parsed = read_result_batch(out.read_bytes(), ca_certificate=ca.certificate)
        assert len(parsed.results) == REQUESTS


def test_out_on_a_full_disk_says_where_the_result_is_and_a_retry_writes_it_again(
    small_disk: Callable[[str, str], Path],
    pki: Pki,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = build_ca_home(tmp_path / "home", pki)
    usb = small_disk("usb", "4m")
    request = tmp_path / "in.p7m"
    request.write_bytes(request_batch(home, [issue(n) for n in range(REQUESTS)]))
    import cli.ca_commands

    real_answer = cli.ca_commands.answer_batch

    def answer_then_fill(*args: Any, **kwargs: Any) -> Any:
        answer = real_answer(*args, **kwargs)
        _fill(usb)  # the stick fills up while the custodians watch the progress bar
        return answer

    monkeypatch.setattr(cli.ca_commands, "answer_batch", answer_then_fill)
    result = _sign(home, request, usb / "out.p7m")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()[-1:]
    kept = home.folder / "results"
    assert "is signed and its result is kept at" in line and str(kept) in line
    assert "run the same command again" in line
    monkeypatch.undo()
    other = tmp_path / "out.p7m"
    retry = CliRunner().invoke(
        main,
        ["ca", "sign-batch", str(request), str(other), "--ca-home", str(home.folder)],
        catch_exceptions=False,
    )
    assert retry.exit_code == 0, retry.output
    (copy,) = kept.glob("*.p7m")
    assert other.read_bytes() == copy.read_bytes()


def test_out_below_a_file_is_refused_before_signing(pki: Pki, tmp_path: Path) -> None:
    home = build_ca_home(tmp_path / "home", pki)
    request = tmp_path / "in.p7m"
    request.write_bytes(request_batch(home, [issue(1)]))
    (tmp_path / "not-a-folder").write_text("x")
    result = _sign(home, request, tmp_path / "not-a-folder" / "out.p7m")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    # Refused before anything is signed: the place for the result is checked first.
    (line,) = result.stderr.strip().splitlines()
    assert "not-a-folder is not a folder" in line
    assert not list((home.folder / "results").glob("*.p7m"))
    second = tmp_path / "out.p7m"
    assert _sign(home, request, second).exit_code == 0
    (copy,) = (home.folder / "results").glob("*.p7m")
    assert second.read_bytes() == copy.read_bytes()
