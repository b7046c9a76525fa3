"""``shomei ca sign-batch``, ``status`` and ``issue-crl`` as the CA operator runs them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from ca.crls import issue_crl
from ca.ledger import Ledger
from cli.main import main
from contract.batch import Issued, make_link_identity, read_result_batch, write_request_batch
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
        path.chmod(0o600)  # a share file open to others is refused (docs/key-custody.md)
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
    with Ledger(home.settings.ledger) as ledger:  # nothing received, nothing signed
        assert ledger.stats().batches == {} and ledger.stats().signed == 0
    out.unlink()
    assert _run(args + _share_files(home)).exit_code == 0  # type: ignore[attr-defined]
    # The same input again: the same result, byte for byte, without shares (nothing signed).
    second = tmp_path / "2.p7m"
    again = _run(["ca", "sign-batch", str(request), str(second), "--ca-home", str(home.folder)])
    assert again.exit_code == 0, again.output  # type: ignore[attr-defined]
    assert second.read_bytes() == out.read_bytes()
    assert "was signed before" in again.stdout and "results" in again.stdout  # type: ignore[attr-defined]
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
    assert status.exit_code == 1 and "none issued yet" in status.stdout  # type: ignore[attr-defined]
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
    with home.open() as ca:
        issue_crl(ca, now=NOW - dt.timedelta(days=8))  # expired a day ago
        ca.ledger.begin_batch(
            batch_id="b-1", sha256="aa", ra_name="Test RA", request_count=1, now=NOW
        )
        ca.ledger.reserve("req-9")
    status = _run(["ca", "status", "--ca-home", str(home.folder)])
    assert status.exit_code == 1  # type: ignore[attr-defined]
    assert "EXPIRED" in status.stderr  # type: ignore[attr-defined]
    assert "batch b-1 from Test RA" in status.stdout and "stopped while" in status.stdout  # type: ignore[attr-defined]
    assert "shomei ca resume-batch b-1 OUT.p7m" in status.stdout  # type: ignore[attr-defined]
    assert "(request req-9) was reserved but never signed" in status.stdout  # type: ignore[attr-defined]
    with home.open() as ca:
        issue_crl(ca, now=NOW - dt.timedelta(days=6))  # a day left of seven
    status = _run(["ca", "status", "--ca-home", str(home.folder)])
    # Due, not expired; but the unfinished batch still makes it exit 1.
    assert status.exit_code == 1 and "CRL is due" in status.stderr  # type: ignore[attr-defined]


# -- secret files and typed shares ----------------------------------------------------------


def _one_line(result: object, code: int = 2) -> str:
    assert result.exit_code == code, result.output  # type: ignore[attr-defined]
    errors = [x for x in result.stderr.splitlines() if x.startswith("shomei:")]  # type: ignore[attr-defined]
    assert len(errors) == 1, result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
    return errors[0]


def test_share_file_open_to_others_is_refused(home: CaHome) -> None:
    args = _share_files(home)
    Path(args[1]).chmod(0o644)
    result = _run(["ca", "issue-crl", "--ca-home", str(home.folder), *args])
    assert "open to other users (mode 0644)" in _one_line(result)
    assert not (home.folder / "crl").exists()


def test_share_file_not_utf8_is_one_line(home: CaHome) -> None:
    args = _share_files(home)
    Path(args[1]).write_bytes(b"\xff\xfe\x00share")
    result = _run(["ca", "issue-crl", "--ca-home", str(home.folder), *args])
    assert "not UTF-8" in _one_line(result)


def test_typed_share_not_utf8_is_one_line(home: CaHome) -> None:
    result = CliRunner().invoke(
        main, ["ca", "issue-crl", "--ca-home", str(home.folder)], input=b"\xff\xfe\n"
    )
    assert "not UTF-8" in _one_line(result)
    assert not (home.folder / "crl").exists()


# -- trust-ra -------------------------------------------------------------------------------


def _pem_file(tmp_path: Path, name: str, *certs: object) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    path = tmp_path / name
    path.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in certs))  # type: ignore[attr-defined]
    return str(path)


def test_trust_ra_pins_a_link_certificate(home: CaHome, tmp_path: Path) -> None:
    _, cert = make_link_identity("Second RA", now=NOW)
    result = _run(["ca", "trust-ra", "--ca-home", str(home.folder), _pem_file(tmp_path, "l", cert)])
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "trusted-ra/ra-link-" in (home.folder / "ca.toml").read_text()


@pytest.mark.parametrize(
    ("which", "expected"),
    [
        ("root", "it is a CA certificate"),
        ("issuing", "it is a CA certificate"),
        ("office", "not an RA link certificate"),
        ("stranger", "it is a CA certificate"),
    ],
)
def test_trust_ra_refuses_what_is_not_a_link_certificate(
    home: CaHome, tmp_path: Path, pki: Pki, which: str, expected: str
) -> None:
    before = (home.folder / "ca.toml").read_bytes()
    cert = _pem_file(tmp_path, "c.pem", pki.certs[which])
    result = _run(["ca", "trust-ra", "--ca-home", str(home.folder), cert])
    assert expected in _one_line(result)
    assert (home.folder / "ca.toml").read_bytes() == before
    assert sorted(p.name for p in (home.folder / "trusted-ra").iterdir()) == ["ra.pem"]


def test_trust_ra_refuses_a_bundle_and_a_home_without_settings(
    home: CaHome, tmp_path: Path, pki: Pki
) -> None:
    _, cert = make_link_identity("Second RA", now=NOW)
    bundle = _pem_file(tmp_path, "b.pem", cert, pki.certs["root"])
    assert "2 certificates" in _one_line(
        _run(["ca", "trust-ra", "--ca-home", str(home.folder), bundle])
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    single = _pem_file(tmp_path, "l.pem", cert)
    assert "ca.toml" in _one_line(_run(["ca", "trust-ra", "--ca-home", str(empty), single]))


def test_a_ca_certificate_pinned_by_hand_stops_signing(home: CaHome, pki: Pki) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    (home.folder / "trusted-ra" / "root.pem").write_bytes(
        pki.certs["root"].public_bytes(Encoding.PEM)
    )
    result = _run(["ca", "issue-crl", "--ca-home", str(home.folder), *_share_files(home)])
    assert "trusted_ra in ca.toml" in _one_line(result)


# -- status: a CA home that cannot issue ------------------------------------------------------


def test_status_reports_a_ca_that_cannot_issue(home: CaHome) -> None:
    import shutil

    assert (
        _run(["ca", "issue-crl", "--ca-home", str(home.folder), *_share_files(home)]).exit_code == 0
    )  # type: ignore[attr-defined]
    assert _run(["ca", "status", "--ca-home", str(home.folder)]).exit_code == 0  # type: ignore[attr-defined]
    shutil.rmtree(home.folder / "profiles")
    (home.folder / "profiles").mkdir()  # an empty profiles folder, as the ceremony left it
    status = _run(["ca", "status", "--ca-home", str(home.folder)])
    assert status.exit_code == 1  # type: ignore[attr-defined]
    assert "CANNOT ISSUE: no profiles" in status.stdout  # type: ignore[attr-defined]


def test_a_lost_ledger_stops_every_signing_command_before_shares(
    home: CaHome, tmp_path: Path
) -> None:
    home.settings.ledger.unlink()
    request = tmp_path / "in.p7m"
    request.write_bytes(request_batch(home, [issue(1)]))
    for args in (
        ["ca", "issue-crl", "--ca-home", str(home.folder)],
        [
            "ca",
            "sign-batch",
            str(request),
            str(tmp_path / "out.p7m"),
            "--ca-home",
            str(home.folder),
        ],
        ["ca", "status", "--ca-home", str(home.folder)],
    ):
        # No share files and no input: a prompt for shares would end in an abort (exit 1).
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert "custodian" not in result.output and "share" not in result.output
        lines = result.stderr.strip().splitlines()
        assert (
            len(lines) == 1 and "is missing; restore it from the newest ledger backup" in lines[0]
        )
        assert not home.settings.ledger.exists() and not (tmp_path / "out.p7m").exists()
    assert not (home.folder / "crl").exists()
    ja = CliRunner(env={"SHOMEI_LANG": "ja"}).invoke(
        main, ["ca", "issue-crl", "--ca-home", str(home.folder)]
    )
    assert ja.exit_code == 2 and "最新の台帳バックアップから復元" in ja.stderr


def test_a_garbled_ledger_page_is_one_line_before_shares(home: CaHome) -> None:
    with home.settings.ledger.open("r+b") as f:  # the root page of the batches table
        f.seek(4096)
        f.write(b"\xa5\x5a" * 1000)
    for args in (
        ["ca", "issue-crl", "--ca-home", str(home.folder)],
        ["ca", "status", "--ca-home", str(home.folder)],
    ):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert "share" not in result.output and result.exception is not None
        assert isinstance(result.exception, SystemExit)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "is damaged" in lines[0] and "restore it" in lines[0]
