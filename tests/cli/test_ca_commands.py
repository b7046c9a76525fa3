"""``shomei ca sign-batch``, ``status`` and ``issue-crl`` as the CA operator runs them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from ca.batch import Issued, make_link_identity, read_result_batch, write_request_batch
from ca.ledger import Ledger
from cli.main import main
from tests.ca.test_batch_home import NOW, CaHome, build_ca_home
from tests.ca.test_signbatch import issue, request_batch
from tests.pki import Pki


@pytest.fixture
def home(tmp_path: Path, pki: Pki) -> CaHome:
    return build_ca_home(tmp_path / "home", pki)


def _share_files(home: CaHome, which: tuple[int, ...] = (0, 2)) -> list[str]:
    args: list[str] = []
    for i in which:
        path = home.folder.parent / f"share-{i}.txt"
        path.write_text(home.shares[i].encode() + "\n", encoding="utf-8")
        args += ["--share-file", str(path)]
    return args


def _sign(home: CaHome, request: Path, out: Path) -> list[str]:
    return ["ca", "sign-batch", str(request), str(out), "--ca-home", str(home.folder)]


def _run(args: list[str], **kw: object) -> object:
    return CliRunner().invoke(main, args, catch_exceptions=False, **kw)  # type: ignore[arg-type]


def test_sign_batch_with_share_files(home: CaHome, tmp_path: Path) -> None:
    request = tmp_path / "in.p7m"
    request.write_bytes(request_batch(home, [issue(1), issue(2, office="12")]))
    out = tmp_path / "out.p7m"
    result = _run(
        [
            "ca",
            "sign-batch",
            str(request),
            str(out),
            "--ca-home",
            str(home.folder),
            *_share_files(home),
        ]
    )
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "1 issued, 1 refused" in result.stdout  # type: ignore[attr-defined]
    assert "iss-2: subject:" in result.stdout  # type: ignore[attr-defined]
    parsed = read_result_batch(out.read_bytes(), ca_certificate=home.open().certificate)
    assert isinstance(parsed.results[0], Issued)


def test_sign_batch_prompts_custodians(home: CaHome, tmp_path: Path) -> None:
    request = tmp_path / "in.p7m"
    request.write_bytes(request_batch(home, [issue(1)]))
    out = tmp_path / "out.p7m"
    typed = "\n".join(
        [
            "not a share",  # a typo: asked again
            home.shares[1].encode(),
            home.shares[1].encode(),  # the same share twice: the next custodian is asked
            home.shares[2].encode(),
        ]
    )
    result = _run(
        ["ca", "sign-batch", str(request), str(out), "--ca-home", str(home.folder)],
        input=typed + "\n",
    )
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "already given" in result.stderr  # type: ignore[attr-defined]
    assert home.shares[1].encode() not in result.output  # type: ignore[attr-defined]
    assert out.exists()


def test_sign_batch_refuses_existing_output_and_answers_a_retry_again(
    home: CaHome, tmp_path: Path
) -> None:
    request = tmp_path / "in.p7m"
    request.write_bytes(request_batch(home, [issue(1)]))
    out = tmp_path / "out.p7m"
    out.write_bytes(b"keep me")
    args = ["ca", "sign-batch", str(request), str(out), "--ca-home", str(home.folder)]
    result = _run(args + _share_files(home))
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "already exists" in result.stderr  # type: ignore[attr-defined]
    assert out.read_bytes() == b"keep me"
    assert not (home.folder / "ledger.sqlite").exists()  # nothing opened, nothing signed
    out.unlink()
    assert _run(args + _share_files(home)).exit_code == 0  # type: ignore[attr-defined]
    # The same input again: the same result, byte for byte, without shares (nothing signed).
    second = tmp_path / "2.p7m"
    again = _run(["ca", "sign-batch", str(request), str(second), "--ca-home", str(home.folder)])
    assert again.exit_code == 0, again.output  # type: ignore[attr-defined]
    assert second.read_bytes() == out.read_bytes()
    assert "was signed before" in again.stderr and "results" in again.stderr  # type: ignore[attr-defined]
    with Ledger(home.settings.ledger) as ledger:
        assert ledger.stats().signed == 1


def test_sign_batch_refuses_a_forged_batch(home: CaHome, tmp_path: Path) -> None:
    key, cert = make_link_identity("Test RA", now=NOW)
    request = tmp_path / "in.p7m"
    request.write_bytes(
        write_request_batch([issue(1)], ra_name="Test RA", key=key, certificate=cert, now=NOW)
    )
    result = _run(
        [
            "ca",
            "sign-batch",
            str(request),
            str(tmp_path / "o"),
            "--ca-home",
            str(home.folder),
            *_share_files(home),
        ]
    )
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert "trusts" in result.stderr  # type: ignore[attr-defined]
    assert not (tmp_path / "o").exists()


def test_issue_crl_and_status(home: CaHome) -> None:
    status = _run(["ca", "status", "--ca-home", str(home.folder)])
    assert status.exit_code == 2 and "no CA ledger" in status.stderr  # type: ignore[attr-defined]
    result = _run(["ca", "issue-crl", "--ca-home", str(home.folder), *_share_files(home)])
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "CRL number" in result.stdout and "0 entries" in result.stdout  # type: ignore[attr-defined]
    assert len(list((home.folder / "crl").glob("*.crl"))) == 1
    status = _run(["ca", "status", "--ca-home", str(home.folder)])
    assert status.exit_code == 0, status.output  # type: ignore[attr-defined]
    assert "CRL expires in 6 d 23 h" in status.stdout or "CRL expires in 7 d" in status.stdout  # type: ignore[attr-defined]
    assert "batches: none" in status.stdout  # type: ignore[attr-defined]


def test_issue_crl_needs_enough_shares(home: CaHome) -> None:
    result = _run(["ca", "issue-crl", "--ca-home", str(home.folder), *_share_files(home, (1,))])
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert result.stderr.startswith("shomei: ")  # type: ignore[attr-defined]
    assert not (home.folder / "crl").exists()


def test_status_warns_about_due_expired_and_unfinished(home: CaHome) -> None:
    with Ledger(home.settings.ledger) as ledger:
        old = NOW - dt.timedelta(days=8)
        ledger.record_crl(
            number=1,
            this_update=old,
            next_update=old + dt.timedelta(days=7),
            sha256="",
            entry_count=0,
        )
        ledger.begin_batch(batch_id="b-1", sha256="aa", ra_name="Test RA", request_count=1, now=NOW)
        ledger.reserve("req-9")
    status = _run(["ca", "status", "--ca-home", str(home.folder)])
    assert status.exit_code == 1  # type: ignore[attr-defined]
    assert "EXPIRED" in status.stderr  # type: ignore[attr-defined]
    assert "batch b-1 from Test RA" in status.stdout and "stopped while" in status.stdout  # type: ignore[attr-defined]
    assert "shomei ca resume-batch b-1 OUT.p7m" in status.stdout  # type: ignore[attr-defined]
    assert "(request req-9) was reserved but never signed" in status.stdout  # type: ignore[attr-defined]
    with Ledger(home.settings.ledger) as ledger:
        ledger.record_crl(
            number=2,
            this_update=NOW - dt.timedelta(days=6),
            next_update=NOW + dt.timedelta(days=1),
            sha256="",
            entry_count=0,
        )
    status = _run(["ca", "status", "--ca-home", str(home.folder)])
    # Due, not expired; but the unfinished batch still makes it exit 1.
    assert status.exit_code == 1 and "CRL is due" in status.stderr  # type: ignore[attr-defined]
