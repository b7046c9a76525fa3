"""Relying parties check an office certificate against the running RA, from the URLs in it.

A CA whose certificates point at this test's server (the ceremony's crl_base_url and
ca_base_url), an RA serving on that port, one office certificate issued through the link; then
``openssl verify -crl_check -crl_download`` and ``shomei verify --fetch`` (given only the trust
anchor) fetch the CRL over HTTP and say "valid" — and "revoked" once the RA has registered the
CRL that revokes it, and "could not decide" when the server is gone.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from ra.ca_link import link
from ra.store.models import Certificate
from tests.ra.ca_fixture import CaHome, build_ca_home, inline_link_toml
from tests.ra.ca_link.test_link import request_revocation, requested
from tests.ra.web.live import BACKENDS, LiveServer, free_port, live_server

SHOMEI = str(Path(sys.executable).with_name("shomei"))


def _openssl_verify(folder: Path, ca: CaHome) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *("openssl", "verify", "-crl_check", "-crl_download"),
            *("-CAfile", str(ca.root_pem)),
            *("-untrusted", str(ca.issuing_cert), str(folder / "office.pem")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def _shomei_verify(folder: Path, ca: CaHome) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SHOMEI, "verify", str(folder / "claim.csv"), "--fetch", "--trust", str(ca.root_pem)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "SHOMEI_LANG": "en"},
    )


def _issue(live: LiveServer, csr: bytes, now: dt.datetime) -> int:
    with live.database.factory() as s, s.begin():
        app_id = requested(s, now=now, csr=csr)
    link.dispatch(live.database.factory, live.settings, now=now)  # inline: signed and imported
    return app_id


@pytest.mark.parametrize("backend", BACKENDS)
def test_relying_parties_fetch_the_crl_from_the_urls_in_the_certificate(
    tmp_path: Path, backend: str
) -> None:
    port = free_port()
    ca = build_ca_home(tmp_path / "ca", base_url=f"http://127.0.0.1:{port}")
    profile = json.dumps(str(ca.home / "profiles" / "office.toml"))
    web = tmp_path / "web"
    web.mkdir()
    with live_server(
        web,
        backend,
        extra=inline_link_toml(ca),
        port=port,
        profile_files=f"profile_files = [{profile}]",
    ) as live:
        now = dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test office")]))
            .sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.DER)
        )
        app_id = _issue(live, csr, now)
        with live.database.factory() as s:
            der = s.execute(
                select(Certificate.der).where(Certificate.application_id == app_id)
            ).scalar_one()
        office = x509.load_der_x509_certificate(der)
        cdp = office.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        assert cdp[0].full_name[0].value == f"http://127.0.0.1:{port}/crl/issuing.crl"  # type: ignore[index]
        # The CA certificate at the caIssuers URL the certificate carries, from the server.
        aia = office.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        (ca_url,) = [d.access_location.value for d in aia]
        assert ca_url.startswith(f"http://127.0.0.1:{port}/")
        with urllib.request.urlopen(ca_url, timeout=10) as answer:  # noqa: S310  # our server
            assert answer.headers["Content-Type"] == "application/pkix-cert"
            assert x509.load_der_x509_certificate(answer.read()) == ca.ca_certificate
        (tmp_path / "office.pem").write_bytes(office.public_bytes(serialization.Encoding.PEM))
        (tmp_path / "office.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (tmp_path / "claim.csv").write_text("事業所番号,金額\n1300000001,5000\n", encoding="utf-8")
        signed = subprocess.run(
            [
                *(SHOMEI, "sign", str(tmp_path / "claim.csv")),
                *("--key", str(tmp_path / "office.key"), "--cert", str(tmp_path / "office.pem")),
                *("--chain", str(ca.issuing_cert)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert signed.returncode == 0, signed.stderr

        checked = _openssl_verify(tmp_path, ca)
        assert checked.returncode == 0 and checked.stdout.strip().endswith(": OK"), checked
        valid = _shomei_verify(tmp_path, ca)
        assert valid.returncode == 0, valid.stdout + valid.stderr

        later = now + dt.timedelta(seconds=5)
        with live.database.factory() as s, s.begin():
            request_revocation(s, app_id, now=later)
        link.dispatch(live.database.factory, live.settings, now=later)  # new CRL registered

        revoked = _openssl_verify(tmp_path, ca)
        assert revoked.returncode != 0 and "certificate revoked" in revoked.stdout + revoked.stderr
        refused = _shomei_verify(tmp_path, ca)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "revoked" in (refused.stdout + refused.stderr).lower()
    # The server is gone: no CRL can be fetched, so no answer is "valid".
    gone = _shomei_verify(tmp_path, ca)
    assert gone.returncode == 2, gone.stdout + gone.stderr
    assert "could not fetch the CRL" in gone.stdout + gone.stderr
