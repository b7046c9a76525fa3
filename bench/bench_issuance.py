"""Benchmark 1: batch issuance rate, every certificate linted, against ``openssl ca``.

Ours: :func:`ca.issuebatch.issue_many` with two worker processes, every serial durably reserved
in the real SQLite CA ledger (:class:`ca.ledger.Ledger`, WAL, ``synchronous=FULL``) before
its signature, every certificate linted with pkilint before it is signed.  Reference:
``openssl ca -batch -infiles ...`` on the same CSRs with the same issuing key and certificate
and the same extensions (no lint, no ledger beyond its ``index.txt``), exactly the command the
issue names (openssl then also renders each certificate as text, its default).  Target: our
rate is at least half of openssl's.  The rate of ``openssl ca -batch -notext`` is printed
beside it for comparison, not judged: on an idle machine it is about 1,100/s, against which
the ratio is about 0.45 (pkilint's ~2.8 ms per certificate is most of our cost).  Each side
runs three times, interleaved; the fastest run of each counts, so that a burst of other work
on the two shared cores does not decide the figure.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from bench.common import Figure, judged
from ca.issue import IssueRequest, Refusal
from ca.issuebatch import issue_many
from ca.ledger import Ledger
from contract.profile import Profile, load_profile
from signer.keys import SoftwareKey

ROOT = Path(__file__).resolve().parents[1]
COUNT = 1000
DISTINCT_KEYS = 8  # a handful of subject keys reused across the CSRs
RUNS = 3
PEM = serialization.Encoding.PEM


def _ca(now: dt.datetime) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A self-contained RSA-2048 issuing CA (self-signed is enough for both sides)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Shomei Bench"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Shomei Bench Issuing CA"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _csrs(workdir: Path) -> tuple[list[IssueRequest], list[Path]]:
    keys = [
        rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(DISTINCT_KEYS)
    ]
    folder = workdir / "csr"
    folder.mkdir()
    requests: list[IssueRequest] = []
    files: list[Path] = []
    for i in range(COUNT):
        number = f"13{i:08d}"
        office = f"ベンチ事業所{i}"
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "証明連合会"),
                        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, number),
                        x509.NameAttribute(NameOID.COMMON_NAME, office),
                    ]
                )
            )
            .sign(keys[i % DISTINCT_KEYS], hashes.SHA256())
        )
        requests.append(
            IssueRequest(f"bench-{i}", csr.public_bytes(serialization.Encoding.DER), number, office)
        )
        path = folder / f"{i:04d}.csr"
        path.write_bytes(csr.public_bytes(PEM))
        files.append(path)
    return requests, files


def _openssl_config(workdir: Path, profile: Profile) -> Path:
    """A minimal ``openssl ca`` configuration giving the same extensions as the profile."""
    base = workdir / "openssl"
    (base / "newcerts").mkdir(parents=True)
    (base / "index.txt").write_text("")
    ext = profile.extensions
    eku = ", ".join(o.dotted_string for o in ext.eku_oids())
    config = f"""
[ ca ]
default_ca = shomei

[ shomei ]
dir = {base}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = {workdir / "issuing.pem"}
private_key = {workdir / "issuing.key"}
rand_serial = yes
default_md = sha256
default_days = {profile.validity.days}
policy = policy_office
unique_subject = no
email_in_dn = no
copy_extensions = none
preserve = yes
utf8 = yes
string_mask = utf8only
x509_extensions = office_ext

[ policy_office ]
countryName = supplied
organizationName = supplied
organizationalUnitName = supplied
commonName = supplied

[ office_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = {eku}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
crlDistributionPoints = URI:{ext.crl_distribution_point}
authorityInfoAccess = caIssuers;URI:{ext.ca_issuers}
certificatePolicies = {", ".join(ext.policies)}
"""
    path = workdir / "openssl-ca.cnf"
    path.write_text(config, encoding="utf-8")
    return path


def _run_openssl(config: Path, files: list[Path], out: Path, *, notext: bool = False) -> float:
    # openssl ca keeps one copy of every certificate in new_certs_dir; count those, since
    # -out only holds the last one when several requests are signed.
    newcerts = config.parent / "openssl" / "newcerts"
    before = len(list(newcerts.iterdir()))
    start = time.perf_counter()
    done = subprocess.run(
        [
            *("openssl", "ca", "-batch", *(["-notext"] if notext else [])),
            *("-config", str(config), "-out", str(out)),
            *("-infiles", *map(str, files)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"openssl ca failed: {done.stderr[-2000:]}")
    issued = len(list(newcerts.iterdir())) - before
    if issued != len(files):
        raise RuntimeError(f"openssl ca issued {issued} of {len(files)} certificates")
    return elapsed


def _run_ours(
    requests: list[IssueRequest],
    profile: Profile,
    issuer: x509.Certificate,
    key: SoftwareKey,
    ledger_path: Path,
    now: dt.datetime,
) -> float:
    ledger = Ledger(ledger_path)
    try:
        start = time.perf_counter()
        results = issue_many(
            requests,
            profiles={"office": profile},
            issuer=issuer,
            key=key,
            serials=ledger,
            now=now,
            workers=2,
        )
        elapsed = time.perf_counter() - start
    finally:
        ledger.close()
    refused = [r for r in results if isinstance(r, Refusal)]
    if refused or len(results) != len(requests):
        raise RuntimeError(f"issue_many refused {len(refused)}: {refused[:1]}")
    # Not timed: prove the output is real (each certificate verifies under the issuer).
    for cert in results:
        assert isinstance(cert, x509.Certificate)
        cert.verify_directly_issued_by(issuer)
    return elapsed


def run(workdir: Path) -> list[Figure]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    profile = load_profile(ROOT / "conf" / "profiles" / "office.toml")
    ca_key, ca_cert = _ca(now)
    (workdir / "issuing.pem").write_bytes(ca_cert.public_bytes(PEM))
    (workdir / "issuing.key").write_bytes(
        ca_key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    requests, files = _csrs(workdir)
    config = _openssl_config(workdir, profile)
    key = SoftwareKey(ca_key)

    # Interleaved, so that both sides see the same neighbours; the best run of each counts.
    ours: list[float] = []
    theirs: list[float] = []
    lean: list[float] = []
    for i in range(RUNS):
        ours.append(_run_ours(requests, profile, ca_cert, key, workdir / f"l{i}.sqlite", now))
        theirs.append(_run_openssl(config, files, workdir / f"openssl{i}.pem"))
        lean.append(_run_openssl(config, files, workdir / f"lean{i}.pem", notext=True))
    # Said openly, not judged: openssl without its default text rendering of each certificate
    # is faster again, and the ratio against it is lower.
    print(
        f"  for comparison, openssl ca -batch -notext: {COUNT / min(lean):.0f} certs/s "
        f"(ours/that = {min(lean) / min(ours):.2f})",
        flush=True,
    )
    return [
        judged(
            "issuance rate (issue_many, 2 workers, pkilint + SQLite ledger)",
            COUNT / min(ours),
            "certs/s",
            "openssl ca -batch -infiles, the issue's command (no lint)",
            COUNT / min(theirs),
            target_op=">=",
            target=0.5,
        )
    ]
