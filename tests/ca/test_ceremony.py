"""Key ceremonies: the example ceremony, dry runs, no overwriting, single tier, PKCS#11.

Outside judges: ``openssl verify`` on the chain, pkilint's console scripts on every CA
certificate and CRL the ceremony made.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509

from ca import ceremony
from ca.ceremony_config import load_ceremony
from ca.custody.shares import parse_share
from cli.main import main
from shomei.errors import ConfigError, CustodyError, Refused
from tests import softhsm as _softhsm
from tests.pki import NOW

softhsm = _softhsm.softhsm
softhsm_token = _softhsm.softhsm_token

REPO = Path(__file__).resolve().parents[2]
LINT = REPO / ".venv" / "bin"

FEDERATION = """
[federation]
name = "テスト連合会"
crl_base_url = "http://pki.test.example/crl"
ca_base_url = "http://pki.test.example/ca"
policy_oid = "1.3.6.1.4.1.32473.1.1"
"""


def write_ceremony(
    folder: Path,
    *,
    actions: list[str],
    root: str | None = "file",
    issuing: str | None = "file",
    token: object = None,
    name: str = "test",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "[ceremony]",
        f'name = "{name}"',
        'ca_home = "home"',
        "actions = [" + ", ".join(f'"{a}"' for a in actions) + "]",
        'operator = "tester"',
        'witnesses = ["w1", "w2"]',
        f'profiles = "{REPO / "conf" / "profiles"}"',
        'shares_dir = "shares"',
        FEDERATION,
    ]
    for which, backend in (("root", root), ("issuing", issuing)):
        if backend is None:
            continue
        lines += [
            f"[{which}]",
            f'common_name = "Test {which} CA"',
            f'validity = "{7300 if which == "root" else 3650}d"',
        ]
        if backend == "file":
            lines.append('key = { backend = "file", algorithm = "rsa2048", m = 2, n = 3 }')
        else:
            lines.append(
                f'key = {{ backend = "pkcs11", algorithm = "rsa2048", '
                f'module = "{token.module}", token_label = "{token.label}", '  # type: ignore[attr-defined]
                f'key_label = "{which}-ca" }}'
            )
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def lint_ok(tool: str, *args: str | Path) -> None:
    exe = LINT / tool
    if not exe.exists():
        pytest.skip(f"{tool} not installed in .venv")
    proc = subprocess.run(
        [str(exe), "lint", *map(str, args)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"{tool}: {proc.stdout}{proc.stderr}"


def run_file(path: Path, now: dt.datetime = NOW, **kwargs: object) -> ceremony.CeremonyResult:
    return ceremony.run(
        load_ceremony(path), config_path=path, now=now, echo=lambda _: None, **kwargs
    )  # type: ignore[arg-type]


# A later ceremony on the same CA home: transcripts are ordered by time.
LATER = NOW + dt.timedelta(minutes=5)


@pytest.fixture(scope="module")
def two_tier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ceremony")
    path = write_ceremony(
        folder, actions=["create-root", "create-issuing", "root-crl", "issuing-crl"]
    )
    run_file(path)
    return folder


def test_chain_verifies_with_openssl(two_tier: Path) -> None:
    home = two_tier / "home"
    proc = subprocess.run(
        ["openssl", "verify", "-CAfile", home / "root/root.pem", home / "issuing/issuing.pem"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_ca_certificates_and_crls_lint_clean(two_tier: Path) -> None:
    home = two_tier / "home"
    lint_ok("lint_pkix_cert", "-s", "WARNING", home / "root/root.pem")
    lint_ok("lint_pkix_cert", "-s", "WARNING", home / "issuing/issuing.pem")
    lint_ok(
        "lint_pkix_signer_signee_cert_chain",
        "-s",
        "WARNING",
        home / "root/root.pem",
        home / "issuing/issuing.pem",
    )
    crls = sorted((home / "crl").rglob("*.crl"))
    assert {c.parent.name for c in crls} == {"root", "issuing"}
    for crl in crls:
        lint_ok("lint_crl", "-t", "CRL", "-p", "PKIX", "-s", "WARNING", crl)


def test_ca_certificate_contents(two_tier: Path) -> None:
    home = two_tier / "home"
    root = x509.load_pem_x509_certificate((home / "root/root.pem").read_bytes())
    issuing = x509.load_pem_x509_certificate((home / "issuing/issuing.pem").read_bytes())
    assert issuing.issuer == root.subject
    bc = issuing.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    o = issuing.subject.get_attributes_for_oid(x509.oid.NameOID.ORGANIZATION_NAME)[0]
    assert o.value == "テスト連合会"
    cdp = issuing.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == "http://pki.test.example/crl/root.crl"
    profile = (home / "profiles/office.toml").read_text(encoding="utf-8")
    assert 'crl_distribution_point = "http://pki.test.example/crl/issuing.crl"' in profile
    assert 'federation = "テスト連合会"' in profile


def test_keys_are_encrypted_and_shares_written(two_tier: Path) -> None:
    home = two_tier / "home"
    for which in ("root", "issuing"):
        pem = (home / which / f"{which}.key.p8").read_bytes()
        assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        shares = sorted((two_tier / "shares").glob(f"{which}-share-*.txt"))
        assert len(shares) == 3
        assert shares[0].stat().st_mode & 0o077 == 0


def test_transcript_verifies_and_names_every_step(two_tier: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["ca", "verify-log", "--ca-home", str(two_tier / "home")])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    log = next((two_tier / "home/transcripts").glob("*.log")).read_text(encoding="utf-8")
    for event in (
        "present",
        "config",
        "key-generated",
        "certificate-signed",
        "crl-signed",
        "settings-written",
        "end",
    ):
        assert f'"event":"{event}"' in log


def test_tampered_transcript_fails_verify_log(two_tier: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(two_tier / "home", home)
    log = next((home / "transcripts").glob("*.log"))
    log.write_text(log.read_text(encoding="utf-8").replace("w1", "w9"), encoding="utf-8")
    result = CliRunner().invoke(main, ["ca", "verify-log", "--ca-home", str(home)])
    assert result.exit_code == 1
    assert "line 2" in result.output


def test_running_again_refuses_and_changes_nothing(two_tier: Path) -> None:
    before = {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (two_tier / "home").rglob("*")
        if p.is_file()
    }
    with pytest.raises(Refused):
        run_file(two_tier / "test.toml")
    after = {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (two_tier / "home").rglob("*")
        if p.is_file()
    }
    assert before == after


def test_dry_run_prints_plan_and_writes_nothing(tmp_path: Path) -> None:
    path = write_ceremony(tmp_path, actions=["create-root", "create-issuing", "root-crl"])
    result = CliRunner().invoke(main, ["ca", "ceremony", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "1. create-root" in result.output and "3. root-crl" in result.output
    assert "root.key.p8 (new)" in result.output
    assert not (tmp_path / "home").exists()


def test_later_root_crl_ceremony_needs_shares(two_tier: Path, tmp_path: Path) -> None:
    folder = tmp_path / "later"
    shutil.copytree(two_tier / "home", folder / "home")
    path = write_ceremony(folder, actions=["root-crl"], root=None, issuing=None, name="arl")
    before = sorted(p for p in (folder / "home").rglob("*"))
    with pytest.raises(Refused, match="shares are needed"):
        run_file(path, now=LATER)
    assert sorted(p for p in (folder / "home").rglob("*")) == before
    shares = [
        parse_share(p.read_text())
        for p in sorted((two_tier / "shares").glob("root-share-*.txt"))[1:]
    ]
    run_file(path, shares=shares, now=LATER)
    numbers = sorted(int(p.stem) for p in (folder / "home/crl/root").glob("*.crl"))
    assert len(numbers) == 2 and numbers[1] > numbers[0]
    # The new transcript links to the first; verify-log checks both and the link.
    result = CliRunner().invoke(main, ["ca", "verify-log", "--ca-home", str(folder / "home")])
    assert result.exit_code == 0, result.output
    assert "follows" in result.output


@pytest.mark.parametrize(("which", "expected"), [(0, "which is missing"), (1, "not recorded")])
def test_deleted_transcript_fails_verify_log(
    two_tier: Path, tmp_path: Path, which: int, expected: str
) -> None:
    """Deleting a whole transcript, the first or the last, is noticed (exit 1, one line)."""
    home = tmp_path / "home"
    shutil.copytree(two_tier / "home", home)
    path = write_ceremony(tmp_path, actions=["root-crl"], root=None, issuing=None, name="arl")
    shares = [parse_share(p.read_text()) for p in sorted((two_tier / "shares").glob("root-*"))]
    run_file(path, shares=shares[:2], now=LATER)
    logs = sorted((home / "transcripts").glob("*.log"))
    assert len(logs) == 2
    logs[which].unlink()
    logs[which].with_name(logs[which].name + ".p7s").unlink()
    result = CliRunner().invoke(main, ["ca", "verify-log", "--ca-home", str(home)])
    assert result.exit_code == 1, result.output
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    for log in logs:
        if log.exists():
            log.unlink()
            log.with_name(log.name + ".p7s").unlink()
    result = CliRunner().invoke(main, ["ca", "verify-log", "--ca-home", str(home)])
    assert result.exit_code == 1 and "no ceremony transcript" in result.stderr


def test_single_tier(tmp_path: Path) -> None:
    path = write_ceremony(tmp_path, actions=["create-root", "root-crl"], issuing=None)
    run_file(path)
    settings = (tmp_path / "home/ca.toml").read_text(encoding="utf-8")
    assert 'certificate = "root/root.pem"' in settings
    lint_ok("lint_pkix_cert", "-s", "WARNING", tmp_path / "home/root/root.pem")


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = write_ceremony(tmp_path, actions=["create-root"])
    path.write_text(
        path.read_text().replace('operator = "tester"', 'operator = "tester"\noperater = "typo"')
    )
    with pytest.raises(ConfigError, match=r"ceremony\.operater"):
        load_ceremony(path)


def test_actions_out_of_order_refused(tmp_path: Path) -> None:
    path = write_ceremony(tmp_path, actions=["root-crl", "create-root"])
    with pytest.raises(ConfigError, match="order"):
        load_ceremony(path)


@pytest.mark.softhsm
def test_pkcs11_ceremony(softhsm_token: _softhsm.SoftHsmToken, tmp_path: Path) -> None:
    path = write_ceremony(
        tmp_path,
        actions=["create-root", "create-issuing", "root-crl", "issuing-crl"],
        root="pkcs11",
        issuing="pkcs11",
        token=softhsm_token,
    )
    result = run_file(path, pin=softhsm_token.pin)
    home = tmp_path / "home"
    assert not list(home.rglob("*.p8")), "no key file may exist with a PKCS#11 backend"
    assert not result.share_files
    proc = subprocess.run(
        ["openssl", "verify", "-CAfile", home / "root/root.pem", home / "issuing/issuing.pem"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lint_ok("lint_pkix_cert", "-s", "WARNING", home / "issuing/issuing.pem")
    assert 'backend = "pkcs11"' in (home / "ca.toml").read_text()


@pytest.mark.softhsm
def test_pkcs11_ceremony_then_batch(softhsm_token: _softhsm.SoftHsmToken, tmp_path: Path) -> None:
    """A CA whose keys live on a token signs a request batch (PIN, no shares)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from ca.context import open_ca
    from ca.settings import load_ca_settings
    from ca.signbatch import sign_batch
    from ca.trust import pin_ra_certificate
    from contract.batch import (
        Issued,
        IssueItem,
        make_link_identity,
        read_result_batch,
        write_request_batch,
    )

    path = write_ceremony(
        tmp_path,
        actions=["create-root", "create-issuing", "issuing-crl"],
        root="pkcs11",
        issuing="pkcs11",
        token=softhsm_token,
    )
    run_file(path, pin=softhsm_token.pin)
    home = tmp_path / "home"
    ra_key, ra_cert = make_link_identity("test RA", now=NOW)
    pin_ra_certificate(home, ra_cert.public_bytes(serialization.Encoding.PEM))
    items = []
    for i in range(3):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "x")]))
            .sign(key, hashes.SHA256())
        )
        items.append(
            IssueItem(
                request_id=f"r{i}",
                csr_der=csr.public_bytes(serialization.Encoding.DER),
                office_number=f"131000000{i}",
                office_name=f"事業所{i}",
            )
        )
    request = write_request_batch(
        items, ra_name="test RA", key=ra_key, certificate=ra_cert, now=NOW
    )
    settings = load_ca_settings(home / "ca.toml")
    with pytest.raises(CustodyError):
        open_ca(settings, pin="wrong-pin")
    ca = open_ca(settings, pin=softhsm_token.pin)
    result = read_result_batch(
        sign_batch(ca, request, now=NOW, workers=1), ca_certificate=ca.certificate
    )
    issued = [r.certificate for r in result.results if isinstance(r, Issued)]
    assert len(issued) == 3
    for cert in issued:
        (tmp_path / "leaf.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        proc = subprocess.run(
            [
                "openssl",
                "verify",
                "-CAfile",
                home / "root/root.pem",
                "-untrusted",
                home / "issuing/issuing.pem",
                tmp_path / "leaf.pem",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
