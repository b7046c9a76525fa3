"""The CA chain an office's download carries (ra.ca_link.identity.load_ca_chain)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ra.ca_link.identity import load_ca_chain
from ra.settings import LinkSettings
from shomei.errors import ConfigError
from tests.pki import Pki
from tests.ra.ca_fixture import CaHome, ca_home_fixture  # noqa: F401


def test_inline_mode_takes_the_ca_homes_chain(ca_home: CaHome) -> None:
    link = LinkSettings(mode="inline", ca_home=ca_home.home)
    chain = load_ca_chain(link)
    assert chain[0] == ca_home.ca_certificate
    root = chain[-1]
    assert len(chain) == 2 and root.subject == root.issuer == chain[0].issuer
    root.verify_directly_issued_by(root)
    chain[0].verify_directly_issued_by(root)


def test_offline_mode_names_the_files(pki: Pki, tmp_path: Path) -> None:
    issuing, root = tmp_path / "issuing.pem", tmp_path / "bundle.pem"
    issuing.write_bytes(pki.cert_pem("issuing"))
    # A bundle holding the issuing CA again and the root: the issuing CA is not repeated.
    root.write_bytes(pki.cert_pem("issuing") + pki.cert_pem("root"))
    link = LinkSettings(mode="offline", ca_certificate=issuing, ca_chain=[root])
    assert load_ca_chain(link) == [pki.certs["issuing"], pki.certs["root"]]
    assert load_ca_chain(LinkSettings(mode="offline", ca_certificate=issuing)) == [
        pki.certs["issuing"]
    ]
    root.write_bytes(b"not a certificate")
    with pytest.raises(ConfigError, match="not a certificate"):
        load_ca_chain(link)
