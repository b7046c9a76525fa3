"""A real CA home for the RA link tests, made once per session by a real key ceremony.

The example ceremony of ``conf/ceremonies`` (root and issuing CA, demo custodian shares) runs
into a temporary folder exactly as ``shomei demo`` runs it; the RA's link identity is made by
:func:`ra.ca_link.identity.create_link_identity` (key encrypted at rest) and pinned by the CA.
Tests build :class:`ra.settings.RASettings` around it with :func:`ra_settings` and make
applications with a real CSR with :func:`make_application`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.orm import Session

from ca import ceremony
from ca.ceremony_config import load_ceremony
from ca.context import CA, open_ca
from ca.custody.shares import parse_share
from ca.settings import load_ca_settings
from ca.trust import pin_ra_certificate
from ra.ca_link.identity import LinkFiles, create_link_identity
from ra.lifecycle import Applicant, Status
from ra.settings import LinkSettings, MailSettings, RASettings, ScheduleSettings
from ra.store.models import Account, AccountKind, Application
from shomei.clock import utcnow
from tests.ra import factories
from tests.ra_profile import FEES

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "conf" / "ceremonies" / "example.toml"
PROFILES = REPO / "conf" / "profiles"
CDP_FILE = "issuing.crl"  # the ceremony sets the CDP to .../crl/issuing.crl


@dataclass(frozen=True)
class CaHome:
    """The CA side (home, the two demo shares that open the issuing key) and the RA's link."""

    folder: Path
    home: Path
    shares: tuple[Path, ...]
    issuing_cert: Path
    link: LinkFiles
    made_at: dt.datetime

    @property
    def root_pem(self) -> Path:
        """The root CA certificate (the trust anchor relying parties hold)."""
        return self.home / "root" / "root.pem"

    @property
    def ca_certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.issuing_cert.read_bytes())


def build_ca_home(folder: Path, base_url: str | None = None) -> CaHome:
    """Run the example ceremony into ``folder`` and pin a fresh RA link identity.

    ``base_url``: where the certificates say the CRLs and CA certificates are published
    (``BASE/crl/issuing.crl``, ``BASE/ca/issuing.crt``); the example's by default.  A test that
    serves them from its own RA points them at that server."""
    now = utcnow() - dt.timedelta(days=1)
    text = EXAMPLE.read_text(encoding="utf-8")
    replacements = {
        "name": '"ra-test-ceremony"',
        "ca_home": '"../ca-home"',
        "shares_dir": '"../custodians"',
        "profiles": f'"{PROFILES}"',
        "operator": '"test operator"',
    }
    if base_url is not None:
        replacements["crl_base_url"] = f'"{base_url}/crl"'
        replacements["ca_base_url"] = f'"{base_url}/ca"'
    for key, value in replacements.items():
        text = re.sub(rf"(?m)^{key}\s*=.*$", f"{key} = {value}", text, count=1)
    conf = folder / "conf" / "ceremony.toml"
    conf.parent.mkdir(parents=True)
    conf.write_text(text, encoding="utf-8")
    cfg = load_ceremony(conf)
    ceremony.run(cfg, config_path=conf, now=now, echo=lambda _: None)
    home = cfg.ceremony.ca_home
    _, files = create_link_identity("Shomei Test RA link", folder / "ra-link", now=now)
    pin_ra_certificate(home, files.certificate.read_bytes())
    shares = sorted((folder / "custodians").glob("issuing-share-*.txt"))
    return CaHome(
        folder=folder,
        home=home,
        shares=(shares[0], shares[2]),
        issuing_cert=home / "issuing" / "issuing.pem",
        link=files,
        made_at=now,
    )


def inline_link_toml(ca: CaHome) -> str:
    """The ``[ra.link]`` table of an ``ra.toml`` whose link is ``ca`` in inline mode."""

    def text(value: object) -> str:
        return json.dumps(str(value))  # a JSON string is a valid TOML basic string

    shares = ", ".join(text(p) for p in ca.shares)
    return (
        '[ra.link]\nmode = "inline"\n'
        f"ca_home = {text(ca.home)}\nca_share_files = [{shares}]\n"
        f"ca_certificate = {text(ca.issuing_cert)}\nlink_key = {text(ca.link.key)}\n"
        f"link_key_passphrase_file = {text(ca.link.passphrase)}\n"
        f"link_certificate = {text(ca.link.certificate)}\n"
    )


@pytest.fixture(scope="session", name="ca_home")
def ca_home_fixture(tmp_path_factory: pytest.TempPathFactory) -> CaHome:
    return build_ca_home(tmp_path_factory.mktemp("ra-ca"))


@contextmanager
def open_test_ca(ca: CaHome) -> Iterator[CA]:
    """The CA of ``ca``, opened with the two demo custodian shares."""
    settings = load_ca_settings(ca.home / "ca.toml")
    shares = [parse_share(p.read_text(encoding="utf-8")) for p in ca.shares]
    with open_ca(settings, shares=shares) as opened:
        yield opened


def ra_settings(
    ca: CaHome,
    database_url: str,
    data_dir: Path,
    *,
    mode: Literal["inline", "offline"] = "inline",
    smtp_port: int = 25,
    **schedule: object,
) -> RASettings:
    """RA settings for ``database_url`` whose link is the CA home ``ca``."""
    link = LinkSettings(
        mode=mode,
        ca_home=ca.home if mode == "inline" else None,
        ca_share_files=list(ca.shares) if mode == "inline" else [],
        ca_certificate=ca.issuing_cert,
        link_key=ca.link.key,
        link_key_passphrase_file=ca.link.passphrase,
        link_certificate=ca.link.certificate,
        outbox=data_dir / "outbox" if mode == "offline" else None,
        inbox=data_dir / "inbox" if mode == "offline" else None,
        ra_name="Shomei Test RA",
    )
    if mode == "offline":  # as the operator does once, when setting up the link
        for folder in (data_dir / "outbox", data_dir / "inbox"):
            folder.mkdir(parents=True, exist_ok=True)
    return RASettings(
        fees=FEES,
        database_url=database_url,
        data_dir=data_dir,
        link=link,
        mail=MailSettings(smtp_port=smtp_port, message_id_domain="ra.test"),
        schedule=dataclasses.replace(ScheduleSettings(), **schedule),  # type: ignore[arg-type]
    )


def csr_der(name: str = "test office") -> bytes:
    """A real PKCS#10 request (ECDSA P-256: cheap to make, allowed by the office profile)."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.DER)


def make_application(
    session: Session,
    *,
    status: Status,
    now: dt.datetime,
    email: str | None = None,
    applicant: Applicant = Applicant.OFFICE,
    csr: bytes | None = None,
) -> Application:
    """An office application in ``status`` with a real CSR (test code may set a status)."""
    acct: Account = factories.account(session, kind=AccountKind(applicant.value), now=now)
    acct.email = email
    app = factories.application(session, applicant=applicant, status=status, now=now, acct=acct)
    app.csr_der = csr if csr is not None else csr_der(acct.name)
    session.flush()
    return app
