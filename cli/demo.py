"""``shomei demo DIR``: a complete demonstration PKI, made through the real code paths.

A key ceremony from the example config (with demo custodian shares written to files), a demo
RA link identity pinned by the CA, a signed request batch for two offices carried through
``sign_batch`` exactly as an operator would with ``shomei ca sign-batch``, a second batch
revoking one of them, and claims signed with both.  Fixed file names (PEM unless said):
``root.pem``, ``issuing.pem``, ``office.pem``, ``revoked.pem``, ``issuing.crl`` (DER),
``office.p12`` + ``office.p12.password``, ``claim.txt`` + ``claim.txt.p7s`` and
``revoked-claim.txt`` + ``.p7s``.  Tests and outside checks use these files.
"""

from __future__ import annotations

import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from ca import ceremony
from ca.batch import (
    Issued,
    IssueItem,
    RevokeItem,
    make_link_identity,
    read_result_batch,
    write_request_batch,
)
from ca.ceremony_config import load_ceremony
from ca.context import open_ca
from ca.custody.shares import parse_share
from ca.settings import load_ca_settings
from ca.signbatch import sign_batch
from ca.trust import pin_ra_certificate
from cli.errors import handle_errors
from shomei.clock import utcnow
from shomei.errors import Refused
from signer.claims import sign_claim
from signer.credentials import load_pkcs12

MARKER = ".shomei-demo"
REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "conf" / "ceremonies" / "example.toml"
PROFILES = REPO / "conf" / "profiles"

OFFICES = {
    "office": ("1310000001", "証明ケアサービス 中央事業所"),
    "revoked": ("1310000002", "証明ケアサービス 廃止事業所"),
}
CLAIM = (
    "請求年月,事業所番号,受給者証番号,サービス種類,単位数\n"
    "202610,{number},0000012345,居宅介護,1200\n"
)


@dataclass
class DemoResult:
    folder: Path
    files: dict[str, str]


def _fresh_folder(folder: Path, fresh: bool) -> None:
    if folder.exists() and any(folder.iterdir()):
        if not (fresh and (folder / MARKER).is_file()):
            raise Refused(
                f"{folder} is not empty; use an empty folder (or --fresh on an earlier demo)",
                message_ja=f"{folder} は空ではありません(空のフォルダを指定してください)",
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("made by `shomei demo`; --fresh may delete this folder\n")


def _ceremony_file(folder: Path) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    replacements = {
        "name": '"demo-ceremony"',
        "ca_home": '"../ca-home"',
        "shares_dir": '"../custodians"',
        "profiles": f'"{PROFILES}"',
        "operator": '"demo operator"',
    }
    for key, value in replacements.items():
        text = re.sub(rf"(?m)^{key}\s*=.*$", f"{key} = {value}", text, count=1)
    target = folder / "conf" / "ceremony.toml"
    target.parent.mkdir(parents=True)
    target.write_text(text, encoding="utf-8")
    return target


def _office_key_and_csr(name: str) -> tuple[rsa.RSAPrivateKey, bytes]:
    # As the RA does for a web application: a fresh RSA-2048 key and a CSR for the CA.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .sign(key, hashes.SHA256())
    )
    return key, csr.public_bytes(serialization.Encoding.DER)


def build_demo(folder: Path, *, fresh: bool = False, echo: ceremony.Echo = print) -> DemoResult:
    """Build the demonstration PKI in ``folder`` and return what was made."""
    _fresh_folder(folder, fresh)
    now = utcnow()
    echo("1. key ceremony: root CA, issuing CA, their CRLs (demo custodian shares)")
    cfg = load_ceremony(_ceremony_file(folder))
    ceremony.run(cfg, config_path=folder / "conf" / "ceremony.toml", now=now, echo=echo)
    home = cfg.ceremony.ca_home

    echo("2. the RA's link identity, pinned by the CA")
    ra_key, ra_cert = make_link_identity("Shomei Demo RA link", now=now)
    ra_dir = folder / "ra"
    ra_dir.mkdir()
    (ra_dir / "ra-link.pem").write_bytes(ra_cert.public_bytes(serialization.Encoding.PEM))
    pin_ra_certificate(home, ra_cert.public_bytes(serialization.Encoding.PEM))

    custodians = sorted((folder / "custodians").glob("issuing-share-*.txt"))
    shares = [parse_share(p.read_text(encoding="utf-8")) for p in (custodians[0], custodians[2])]
    ca = open_ca(load_ca_settings(home / "ca.toml"), shares=shares)
    batches = folder / "batches"
    batches.mkdir()

    echo("3. issue batch: two offices apply; the CA signs (custodians 1 and 3 open the key)")
    keys = {}
    items = []
    for label, (number, office_name) in OFFICES.items():
        keys[label], csr = _office_key_and_csr(office_name)
        items.append(
            IssueItem(
                request_id=f"demo-{label}",
                csr_der=csr,
                office_number=number,
                office_name=office_name,
            )
        )
    request = write_request_batch(
        items, ra_name="Shomei Demo RA", key=ra_key, certificate=ra_cert, now=now
    )
    (batches / "0001-issue.request.p7m").write_bytes(request)
    result_bytes = sign_batch(ca, request, now=now)
    (batches / "0001-issue.result.p7m").write_bytes(result_bytes)
    result = read_result_batch(result_bytes, ca_certificate=ca.certificate)
    certs = {
        r.request_id.removeprefix("demo-"): r.certificate
        for r in result.results
        if isinstance(r, Issued)
    }

    echo("4. revocation batch: one office closed (key compromise); the CA issues a fresh CRL")
    revoke = write_request_batch(
        [
            RevokeItem(
                request_id="demo-revoke-1",
                serial=certs["revoked"].serial_number,
                reason="keyCompromise",
                revoked_at=now,
                requested_by="office",
            )
        ],
        ra_name="Shomei Demo RA",
        key=ra_key,
        certificate=ra_cert,
        now=now,
    )
    (batches / "0002-revoke.request.p7m").write_bytes(revoke)
    revoke_result = read_result_batch(
        sign_batch(ca, revoke, now=now), ca_certificate=ca.certificate
    )

    echo("5. files for offices, verifiers and outside checks")
    pem = serialization.Encoding.PEM
    (folder / "root.pem").write_bytes((home / "root" / "root.pem").read_bytes())
    (folder / "issuing.pem").write_bytes((home / "issuing" / "issuing.pem").read_bytes())
    (folder / "issuing.crl").write_bytes(revoke_result.crl_der)
    issuing = x509.load_pem_x509_certificate((home / "issuing" / "issuing.pem").read_bytes())
    for label in OFFICES:
        (folder / f"{label}.pem").write_bytes(certs[label].public_bytes(pem))
        password = secrets.token_urlsafe(12)
        encryption = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(100_000)
            .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
            .hmac_hash(hashes.SHA256())
            .build(password.encode())
        )
        p12 = pkcs12.serialize_key_and_certificates(
            OFFICES[label][1].encode(), keys[label], certs[label], [issuing], encryption
        )
        (folder / f"{label}.p12").write_bytes(p12)
        (folder / f"{label}.p12.password").write_text(password + "\n")
        claim_name = "claim.txt" if label == "office" else "revoked-claim.txt"
        claim = CLAIM.format(number=OFFICES[label][0]).encode()
        (folder / claim_name).write_bytes(claim)
        # As an office does: open its PKCS#12 with the password and sign the claim file.
        signature = sign_claim(claim, credentials=load_pkcs12(p12, password), signing_time=now)
        (folder / f"{claim_name}.p7s").write_bytes(signature)
    files = {
        "root.pem": "root CA certificate (trust anchor)",
        "issuing.pem": "issuing CA certificate",
        "office.pem": f"good office certificate, serial {certs['office'].serial_number:x}",
        "revoked.pem": f"revoked office certificate, serial {certs['revoked'].serial_number:x}",
        "issuing.crl": "the issuing CA's CRL (DER), listing revoked.pem",
        "office.p12": "the good office's key and certificate (password in office.p12.password)",
        "claim.txt(.p7s)": "a claim signed with office.p12 (detached CMS)",
        "revoked-claim.txt(.p7s)": "a claim signed with the revoked certificate",
        "ca-home/": "the CA machine's folder: keys (encrypted), ledger, CRLs, transcripts",
        "custodians/": "the demo custodian shares (2 of 3 open a CA key)",
        "batches/": "the RA↔CA request and result batches",
    }
    return DemoResult(folder=folder, files=files)


@click.command("demo")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--fresh", is_flag=True, help="Replace an earlier demo folder.")
@handle_errors
def demo_command(folder: Path, fresh: bool) -> None:
    """Build a complete demonstration PKI in FOLDER through the real code paths."""
    result = build_demo(folder, fresh=fresh, echo=click.echo)
    click.echo(f"\nMade in {result.folder}:")
    for name, what in result.files.items():
        click.echo(f"  {name:<26} {what}")
    click.echo(
        "\nTry:\n"
        f"  shomei ca status --ca-home {folder}/ca-home\n"
        f"  shomei ca verify-log --ca-home {folder}/ca-home\n"
        f"  openssl verify -CAfile {folder}/root.pem -untrusted {folder}/issuing.pem "
        f"-crl_check -CRLfile {folder}/issuing.crl {folder}/office.pem"
    )


COMMANDS = (demo_command,)
