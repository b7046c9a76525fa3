"""``shomei demo``: the demonstration federation, judged by openssl and pkilint.

This is the issue's "must show" for the CA side end to end: the example ceremony's chain
verifies with ``openssl verify``; pkilint's PKIX linters pass on the CA certificates, an issued
office certificate, the chain and the CRL; the CRL lists the revoked office and not the good
one; the PKCS#12 opens with its password; the demo claims verify (or not) with ``openssl cms``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
from click.testing import CliRunner

from cli.main import main
from demo.federation import build_demo
from shomei.errors import Refused

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo") / "out"
    build_demo(folder, echo=lambda _: None, crowd=False)  # the crowd: tests/demo
    return folder


def openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, check=False)


def lint(tool: str, *args: str | Path) -> None:
    exe = BIN / tool
    if not exe.exists():
        pytest.skip(f"{tool} is not installed in .venv")
    proc = subprocess.run(
        [str(exe), "lint", *map(str, args)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"{tool} {args}: {proc.stdout}{proc.stderr}"


def test_files_are_there(demo: Path) -> None:
    for name in (
        "root.pem",
        "issuing.pem",
        "office.pem",
        "revoked.pem",
        "issuing.crl",
        "office.p12",
        "office.p12.password",
        "claim.txt",
        "claim.txt.p7s",
        "revoked-claim.txt",
        "revoked-claim.txt.p7s",
    ):
        assert (demo / name).is_file(), name


def test_the_ra_answers_the_urls_in_the_certificates(demo: Path) -> None:
    """The RA's profile is the CA's (as the ceremony wrote it), so the RA serves the CRL and
    CA certificate at the URLs the certificates carry (ra.ca_link.publication)."""
    from cryptography import x509

    from ra.ca_link.publication import paths
    from ra.settings import load_ra_settings

    office = x509.load_pem_x509_certificate((demo / "office.pem").read_bytes())
    cdp = office.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    aia = office.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    urls = [n.value for p in cdp for n in p.full_name or ()] + [
        d.access_location.value for d in aia
    ]
    served = paths(load_ra_settings(demo / "ra.toml"))
    assert {urlparse(u).path for u in urls} == set(served), (urls, served)


def test_openssl_verifies_chain_and_sees_the_revocation(demo: Path) -> None:
    good = openssl(
        "verify",
        "-CAfile",
        demo / "root.pem",
        "-untrusted",
        demo / "issuing.pem",
        "-crl_check",
        "-CRLfile",
        demo / "issuing.crl",
        demo / "office.pem",
    )
    assert good.returncode == 0, good.stdout + good.stderr
    bad = openssl(
        "verify",
        "-CAfile",
        demo / "root.pem",
        "-untrusted",
        demo / "issuing.pem",
        "-crl_check",
        "-CRLfile",
        demo / "issuing.crl",
        demo / "revoked.pem",
    )
    assert bad.returncode != 0
    assert "revoked" in (bad.stdout + bad.stderr)


def test_pkilint_passes_everything(demo: Path) -> None:
    for cert in ("root.pem", "issuing.pem", "office.pem"):
        lint("lint_pkix_cert", "-s", "WARNING", demo / cert)
    lint(
        "lint_pkix_signer_signee_cert_chain",
        "-s",
        "WARNING",
        demo / "root.pem",
        demo / "issuing.pem",
    )
    lint(
        "lint_pkix_signer_signee_cert_chain",
        "-s",
        "WARNING",
        demo / "issuing.pem",
        demo / "office.pem",
    )
    lint("lint_crl", "-t", "CRL", "-p", "PKIX", "-s", "WARNING", demo / "issuing.crl")


def test_crl_is_signed_and_lists_only_the_revoked(demo: Path) -> None:
    text = openssl(
        "crl",
        "-inform",
        "DER",
        "-in",
        demo / "issuing.crl",
        "-CAfile",
        demo / "issuing.pem",
        "-noout",
        "-text",
    )
    assert text.returncode == 0, text.stderr
    assert "verify OK" in text.stderr + text.stdout
    serial = openssl("x509", "-in", demo / "revoked.pem", "-noout", "-serial").stdout
    good = openssl("x509", "-in", demo / "office.pem", "-noout", "-serial").stdout
    listed = text.stdout.replace(" ", "").upper()
    assert serial.split("=")[1].strip().upper() in listed
    assert good.split("=")[1].strip().upper() not in listed
    assert "Cessation Of Operation" in text.stdout


def test_pkcs12_opens_with_its_password(demo: Path) -> None:
    password = (demo / "office.p12.password").read_text().strip()
    ok = openssl("pkcs12", "-in", demo / "office.p12", "-passin", f"pass:{password}", "-noout")
    assert ok.returncode == 0, ok.stderr
    wrong = openssl("pkcs12", "-in", demo / "office.p12", "-passin", "pass:wrong", "-noout")
    assert wrong.returncode != 0


def test_claims_with_openssl_cms(demo: Path, tmp_path: Path) -> None:
    # OpenSSL 3.0 takes the CRL from the CA file when -crl_check is given.
    bundle = tmp_path / "ca-and-crl.pem"
    crl_pem = openssl("crl", "-inform", "DER", "-in", demo / "issuing.crl").stdout
    bundle.write_text((demo / "root.pem").read_text() + crl_pem)
    args = (
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-purpose",
        "any",
        "-crl_check",
        "-CAfile",
        bundle,
        "-out",
        "/dev/null",
    )
    good = openssl(*args, "-in", demo / "claim.txt.p7s", "-content", demo / "claim.txt")
    assert good.returncode == 0, good.stderr
    bad = openssl(
        *args, "-in", demo / "revoked-claim.txt.p7s", "-content", demo / "revoked-claim.txt"
    )
    assert bad.returncode != 0 and "revoked" in bad.stderr


def test_ca_home_status_and_transcripts(demo: Path) -> None:
    runner = CliRunner()
    log = runner.invoke(main, ["ca", "verify-log", "--ca-home", str(demo / "ca-home")])
    assert log.exit_code == 0, log.output
    status = runner.invoke(main, ["ca", "status", "--ca-home", str(demo / "ca-home")])
    assert status.exit_code == 0, status.output


def test_the_lifecycle_went_through_the_ra(demo: Path) -> None:
    import sqlite3

    with sqlite3.connect(demo / "ra.sqlite") as db:
        statuses = sorted(s for (s,) in db.execute("SELECT status FROM applications"))
        anchors = db.execute("SELECT count(*) FROM audit_anchors").fetchone()[0]
    assert statuses == ["issued", "issued", "rejected", "revoked"]
    assert anchors == 1
    result = CliRunner().invoke(main, ["ra", "verify-audit", "--settings", str(demo / "ra.toml")])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["ra", "show", "2", "--settings", str(demo / "ra.toml")])
    assert "revoked" in result.output and "register_crl" in result.output


def test_files_with_secrets_are_readable_by_their_owner_only(demo: Path) -> None:
    import stat

    secret = [
        "demo-accounts.txt",
        "office.p12",
        "office.p12.password",
        "revoked.p12",
        "revoked.p12.password",
        "ra.sqlite",
        "ra-secrets.key",
        "ra-link/link.key",
        "ra-link/link.passphrase",
        *(str(p.relative_to(demo)) for p in (demo / "custodians").rglob("*share*")),
    ]
    for name in secret:
        mode = stat.S_IMODE((demo / name).stat().st_mode)
        assert mode == 0o600, f"{name}: {mode:04o}"
    # The database file moved with its folder: ra.toml names it relative to itself.
    assert 'database_url = "sqlite:///ra.sqlite"' in (demo / "ra.toml").read_text()


def test_shomei_verify_on_the_demo_claims(demo: Path) -> None:
    common = ["--trust", str(demo / "root.pem"), "--crl", str(demo / "issuing.crl")]
    good = CliRunner().invoke(
        main,
        ["verify", str(demo / "claim.txt"), "--signature", str(demo / "claim.txt.p7s"), *common],
    )
    assert good.exit_code == 0, good.output
    bad = CliRunner().invoke(
        main,
        [
            "verify",
            str(demo / "revoked-claim.txt"),
            "--signature",
            str(demo / "revoked-claim.txt.p7s"),
            *common,
        ],
    )
    assert bad.exit_code == 1, bad.output


def test_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(Refused):
        build_demo(tmp_path, fresh=True, echo=lambda _: None)
    assert (tmp_path / "precious.txt").read_text() == "keep me"
