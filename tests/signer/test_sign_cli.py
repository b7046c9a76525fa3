"""``shomei sign``, ``shomei verify`` and ``shomei notice``: exit codes and one-line messages."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from cli.sign_commands import COMMANDS
from tests.pki import NOW, Pki
from tests.signer.conftest import CLAIM, make_crl
from tests.signer.test_pades import small_pdf

# The commands exactly as cli.main registers them (top level), without importing the other
# command modules, which are not this test's business.
main = click.Group("shomei", commands={c.name: c for c in COMMANDS if c.name})


def run(*args: object, input: str | None = None) -> Result:
    return CliRunner(env={"SHOMEI_LANG": "en"}).invoke(main, [str(a) for a in args], input=input)


def one_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def work(pki: Pki, pki_dir: Path, tmp_path: Path) -> Path:
    (tmp_path / "claim.csv").write_bytes(CLAIM)
    p12 = pkcs12.serialize_key_and_certificates(
        b"office",
        pki.keys["office"],
        pki.certs["office"],
        [pki.certs["issuing"]],
        serialization.BestAvailableEncryption(b"secret"),
    )
    (tmp_path / "office.p12").write_bytes(p12)
    (tmp_path / "pw").write_text("secret\n")
    (tmp_path / "bad-pw").write_text("wrong\n")
    return tmp_path


def verify(work: Path, pki_dir: Path, *extra: object, crl: Path | None = None) -> Result:
    return run(
        "verify",
        work / "claim.csv",
        "--trust",
        pki_dir / "root.pem",
        "--crl",
        crl or pki_dir / "issuing.crl",
        *extra,
    )


def test_sign_with_p12_prompt_and_verify(work: Path, pki_dir: Path) -> None:
    result = run("sign", work / "claim.csv", "--p12", work / "office.p12", input="secret\n")
    assert result.exit_code == 0, result.output
    assert (work / "claim.csv.p7s").exists()
    result = verify(work, pki_dir)
    assert result.exit_code == 0, result.output
    assert "signature valid" in result.stdout
    again = run(
        "sign", work / "claim.csv", "--p12", work / "office.p12", "--password-file", work / "pw"
    )
    assert again.exit_code == 2 and "already exists" in one_line(again)


def test_single_claim_report_and_untrusted(work: Path, pki_dir: Path) -> None:
    result = run(
        "sign",
        work / "claim.csv",
        "--key",
        pki_dir / "office.key",
        "--cert",
        pki_dir / "office.pem",
    )  # no chain attached: the intermediate comes separately
    assert result.exit_code == 0, result.output
    assert verify(work, pki_dir).exit_code == 1  # untrusted without the intermediate
    report = work / "one.csv"
    result = verify(work, pki_dir, "--untrusted", pki_dir / "issuing.pem", "--report", report)
    assert result.exit_code == 0, result.output
    assert "claim.csv,claim.csv.p7s,valid" in report.read_text(encoding="utf-8-sig")


def test_sign_with_pem_key(work: Path, pki_dir: Path) -> None:
    result = run(
        "sign",
        work / "claim.csv",
        "--key",
        pki_dir / "office_ec.key",
        "--cert",
        pki_dir / "office_ec.pem",
        "--chain",
        pki_dir / "issuing.pem",
        "-o",
        work / "claim.csv.p7s",
    )
    assert result.exit_code == 0, result.output
    assert verify(work, pki_dir).exit_code == 0


def test_wrong_p12_password(work: Path) -> None:
    result = run(
        "sign", work / "claim.csv", "--p12", work / "office.p12", "--password-file", work / "bad-pw"
    )
    assert result.exit_code == 2
    assert "wrong password" in one_line(result)


def test_no_key_source(work: Path) -> None:
    result = run("sign", work / "claim.csv")
    assert result.exit_code == 2 and "exactly one key source" in one_line(result)


def _sign(work: Path, pki_dir: Path, name: str) -> None:
    result = run(
        "sign",
        work / "claim.csv",
        "--key",
        pki_dir / f"{name}.key",
        "--cert",
        pki_dir / f"{name}.pem",
        "--chain",
        pki_dir / "issuing.pem",
        "--force",
    )
    assert result.exit_code == 0, result.output


def test_tampered_revoked_untrusted_expired_exit_1(work: Path, pki_dir: Path) -> None:
    _sign(work, pki_dir, "office")
    (work / "claim.csv").write_bytes(CLAIM + b"1")
    result = verify(work, pki_dir)
    assert result.exit_code == 1 and "does not match" in one_line(result)
    (work / "claim.csv").write_bytes(CLAIM)
    for name, words in (
        ("revoked", "revoked"),
        ("stranger_office", "trusted root"),
        ("expired", "expired"),
    ):
        _sign(work, pki_dir, name)
        result = verify(work, pki_dir)
        assert result.exit_code == 1, (name, result.output)
        assert words in one_line(result)


def test_stale_crl_and_garbage_exit_2(pki: Pki, work: Path, pki_dir: Path) -> None:
    _sign(work, pki_dir, "office")
    stale = work / "stale.crl"
    stale.write_bytes(
        make_crl(
            pki, this_update=NOW - dt.timedelta(days=9), next_update=NOW - dt.timedelta(days=2)
        )
    )
    result = verify(work, pki_dir, crl=stale)
    assert result.exit_code == 2 and "not current" in one_line(result)
    other = work / "other.crl"
    other.write_bytes(make_crl(pki, issuer="stranger"))
    result = verify(work, pki_dir, crl=other)
    assert result.exit_code == 2 and "no CRL of" in one_line(result)
    (work / "junk.crl").write_bytes(b"junk")
    result = verify(work, pki_dir, crl=work / "junk.crl")
    assert result.exit_code == 2 and "not a readable CRL" in one_line(result)
    (work / "claim.csv.p7s").write_bytes((work / "claim.csv.p7s").read_bytes()[:300])
    result = verify(work, pki_dir)
    assert result.exit_code == 2 and "not a usable CMS signature" in one_line(result)


def test_japanese_messages(work: Path, pki_dir: Path) -> None:
    _sign(work, pki_dir, "revoked")
    result = CliRunner(env={"SHOMEI_LANG": "ja_JP.UTF-8"}).invoke(
        main,
        [
            "verify",
            str(work / "claim.csv"),
            "--trust",
            str(pki_dir / "root.pem"),
            "--crl",
            str(pki_dir / "issuing.crl"),
        ],
    )
    assert result.exit_code == 1 and "失効しています" in one_line(result)


def test_folder_mode_with_report(work: Path, pki_dir: Path) -> None:
    _sign(work, pki_dir, "office")
    (work / "unsigned.csv").write_bytes(b"x")
    for p in ("office.p12", "pw", "bad-pw"):
        (work / p).unlink()
    report = work.parent / f"{work.name}-report.csv"
    result = run(
        "verify",
        work,
        "--trust",
        pki_dir / "root.pem",
        "--crl",
        pki_dir / "issuing.crl",
        "--report",
        report,
        "--workers",
        "1",
    )
    assert result.exit_code == 1, result.output
    assert "1 valid, 1 invalid, 0 undecided" in result.stdout
    assert report.read_bytes().startswith(b"\xef\xbb\xbf")


def test_pades_sign_and_verify(work: Path, pki_dir: Path) -> None:
    (work / "claim.pdf").write_bytes(small_pdf())
    result = run(
        "sign",
        work / "claim.pdf",
        "--pades",
        "--p12",
        work / "office.p12",
        "--password-file",
        work / "pw",
        "-o",
        work / "signed.pdf",
    )
    assert result.exit_code == 0, result.output
    result = run(
        "verify",
        work / "signed.pdf",
        "--trust",
        pki_dir / "root.pem",
        "--crl",
        pki_dir / "issuing.crl",
    )
    assert result.exit_code == 0, result.output
    result = run(
        "verify",
        work / "claim.pdf",
        "--trust",
        pki_dir / "root.pem",
        "--crl",
        pki_dir / "issuing.crl",
    )
    assert result.exit_code == 1 and "no signature" in one_line(result)


def test_notice_seal_and_open(work: Path, pki_dir: Path) -> None:
    (work / "pw.txt").write_text("新しいパスワード: Zq8-77\n", encoding="utf-8")
    result = run(
        "notice", "seal", work / "pw.txt", "--to", pki_dir / "office.pem", "-o", work / "pw.p7m"
    )
    assert result.exit_code == 0, result.output
    result = run(
        "notice",
        "open",
        work / "pw.p7m",
        "--p12",
        work / "office.p12",
        "--password-file",
        work / "pw",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "新しいパスワード: Zq8-77\n"
    result = run(
        "notice",
        "open",
        work / "pw.p7m",
        "--key",
        pki_dir / "revoked.key",
        "--cert",
        pki_dir / "revoked.pem",
    )
    assert result.exit_code == 2 and "not sealed to your certificate" in one_line(result)
    result = run(
        "notice",
        "open",
        work / "pw.txt",
        "--p12",
        work / "office.p12",
        "--password-file",
        work / "pw",
    )
    assert result.exit_code == 2 and "not a sealed notice" in one_line(result)
    altered = bytearray((work / "pw.p7m").read_bytes())
    altered[-20] ^= 0x01  # inside the encrypted password
    (work / "altered.p7m").write_bytes(bytes(altered))
    result = run(
        "notice",
        "open",
        work / "altered.p7m",
        "--p12",
        work / "office.p12",
        "--password-file",
        work / "pw",
    )
    assert result.exit_code == 1 and "altered" in one_line(result)
    assert result.stdout == ""  # nothing of the document, garbled or not


def test_garbage_signature_and_signature_of_another_file(work: Path, pki_dir: Path) -> None:
    (work / "claim.csv.p7s").write_bytes(b"this is not CMS at all")
    result = verify(work, pki_dir)
    assert result.exit_code == 2 and "not a usable CMS signature" in one_line(result)
    (work / "other.csv").write_bytes(b"another claim")
    result = run(
        "sign",
        work / "other.csv",
        "--key",
        pki_dir / "office.key",
        "--cert",
        pki_dir / "office.pem",
        "--chain",
        pki_dir / "issuing.pem",
    )
    assert result.exit_code == 0, result.output
    result = verify(work, pki_dir, "--signature", work / "other.csv.p7s")
    assert result.exit_code == 1 and "does not match its signature" in one_line(result)


def test_notice_refuses_to_overwrite(work: Path, pki_dir: Path) -> None:
    (work / "doc").write_bytes(b"x")
    (work / "doc.p7m").write_bytes(b"keep me")
    result = run(
        "notice", "seal", work / "doc", "--to", pki_dir / "office.pem", "-o", work / "doc.p7m"
    )
    assert result.exit_code == 2 and "already exists" in one_line(result)
    assert (work / "doc.p7m").read_bytes() == b"keep me"


def test_a_delta_crl_is_refused_and_named(pki: Pki, work: Path, pki_dir: Path) -> None:
    _sign(work, pki_dir, "office")
    delta = work / "delta.crl"
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    built = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.certs["issuing"].subject)
        .last_update(NOW - dt.timedelta(hours=1))
        .next_update(NOW + dt.timedelta(days=1))
        .add_extension(x509.CRLNumber(5), critical=False)
        .add_extension(x509.DeltaCRLIndicator(1), critical=True)
        .sign(pki.keys["issuing"], hashes.SHA256())  # type: ignore[arg-type]
    )
    delta.write_bytes(built.public_bytes(serialization.Encoding.DER))
    result = verify(work, pki_dir, "--crl", delta)  # beside the complete CRL
    assert result.exit_code == 2
    line = one_line(result)
    assert str(delta) in line and "delta CRL" in line


def test_folder_with_subfolders(work: Path, pki_dir: Path) -> None:
    _sign(work, pki_dir, "office")
    sub = work / "1310000001"
    sub.mkdir()
    (sub / "late.csv").write_bytes(CLAIM)  # unsigned, one level down
    for p in ("office.p12", "pw", "bad-pw"):
        (work / p).unlink()
    result = run("verify", work, "--trust", pki_dir / "root.pem", "--crl", pki_dir / "issuing.crl")
    assert result.exit_code == 1, result.output
    assert "1 valid, 1 invalid, 0 undecided" in result.stdout
    assert one_line(result).startswith("1310000001/late.csv: the claim is not signed")


def test_special_files_are_refused_not_read(work: Path, pki_dir: Path) -> None:
    os.mkfifo(work / "pipe")  # reading it would wait for a writer for ever
    shomei = Path(sys.executable).with_name("shomei")
    proc = subprocess.run(
        [shomei, "verify", work / "pipe", "--trust", pki_dir / "root.pem"],
        capture_output=True,
        env={**os.environ, "SHOMEI_LANG": "en"},
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.decode().strip() == (
        f"shomei: the claim {work / 'pipe'} is not a regular file (a FIFO, socket or device)"
    )
