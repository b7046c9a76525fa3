"""Signing claim files, and the certification path check underneath verification."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from asn1crypto import x509 as ax509
from cryptography.hazmat.primitives.serialization import Encoding

from shomei.errors import NotFound, Refused
from signer import chain, cms
from signer.claims import sign_claim, sign_file
from signer.verdict import Verdict
from tests.pki import NOW, Pki
from tests.signer.conftest import CLAIM, credentials


def test_sign_claim_is_detached_with_chain(pki: Pki) -> None:
    sig = sign_claim(CLAIM, credentials=credentials(pki, "office"), signing_time=NOW)
    assert CLAIM not in sig
    checked = cms.verify(sig, content=CLAIM)
    assert set(checked.certificates) == {pki.certs["office"], pki.certs["issuing"]}  # a SET OF
    assert checked.signing_time == NOW


def test_sign_claim_defaults_to_now_and_refuses_naive_times(pki: Pki) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    sig = sign_claim(CLAIM, credentials=credentials(pki, "office"))
    signing_time = cms.verify(sig, content=CLAIM).signing_time
    assert signing_time is not None and signing_time >= before
    with pytest.raises(TypeError, match="timezone-aware"):
        sign_claim(
            CLAIM, credentials=credentials(pki, "office"), signing_time=dt.datetime(2026, 1, 1)
        )


def test_sign_file(pki: Pki, tmp_path: Path) -> None:
    claim = tmp_path / "請求.csv"
    claim.write_bytes(CLAIM)
    out = sign_file(claim, credentials=credentials(pki, "office"), signing_time=NOW)
    assert out.name == "請求.csv.p7s"
    assert cms.verify(out.read_bytes(), content=CLAIM).signer == pki.certs["office"]
    with pytest.raises(Refused, match="already exists"):
        sign_file(claim, credentials=credentials(pki, "office"))
    sign_file(claim, credentials=credentials(pki, "office_ec"), overwrite=True)
    assert cms.verify(out.read_bytes(), content=CLAIM).signer == pki.certs["office_ec"]
    with pytest.raises(NotFound, match="claim not found"):
        sign_file(tmp_path / "missing.csv", credentials=credentials(pki, "office"))


def _a(pki: Pki, name: str) -> ax509.Certificate:
    return ax509.Certificate.load(pki.certs[name].public_bytes(Encoding.DER))


def test_chain_path_and_failures(pki: Pki) -> None:
    office = pki.certs["office"].public_bytes(Encoding.DER)
    path = chain.validate(
        office, intermediates=[_a(pki, "issuing")], anchors=[pki.certs["root"]], moment=NOW
    )
    assert path == (pki.certs["root"], pki.certs["issuing"], pki.certs["office"])
    missing = chain.validate(office, intermediates=[], anchors=[pki.certs["root"]], moment=NOW)
    assert isinstance(missing, Verdict) and missing.reasons[0].code == "untrusted"
    early = chain.validate(
        office,
        intermediates=[_a(pki, "issuing")],
        anchors=[pki.certs["root"]],
        moment=NOW - dt.timedelta(days=5),
    )
    assert isinstance(early, Verdict) and early.reasons[0].code == "not_yet_valid"
