"""The RA↔CA batch files: write, verify, parse strictly; forged and altered files are refused."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from contract import batch
from contract.batch import (
    Issued,
    IssueItem,
    IssueRefused,
    Revoked,
    RevokeItem,
    RevokeRefused,
    make_link_identity,
    read_request_batch,
    read_result_batch,
    write_request_batch,
    write_result_batch,
)
from shomei.errors import MalformedInput, Refused, VerificationFailed
from signer import cms
from signer.keys import SoftwareKey
from tests.pki import Pki

NOW = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
BATCH_ID = "0b0e7c1e-4a0f-4f52-9d5c-3f2f5e1b2a10"


@pytest.fixture(scope="module")
def link() -> tuple[SoftwareKey, x509.Certificate]:
    return make_link_identity("Test RA", now=NOW)


def _csr(office: str = "1310000001") -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, office)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    from cryptography.hazmat.primitives.serialization import Encoding

    return csr.public_bytes(Encoding.DER)


ITEMS = (
    IssueItem("req-1", b"\x30\x03\x02\x01\x01", "1310000001", "テスト事業所"),
    RevokeItem("rev-1", 0xABCDEF, "keyCompromise", NOW, "office"),
)


def _signed_json(document: dict[str, object], link: tuple[SoftwareKey, x509.Certificate]) -> bytes:
    key, cert = link
    content = json.dumps(document).encode()
    return cms.sign(content, key=key, certificate=cert, detached=False, signing_time=NOW)


def _document() -> dict[str, object]:
    return {
        "format": "shomei-request-batch",
        "version": 1,
        "batch_id": BATCH_ID,
        "created_at": "2026-11-01T09:00:00Z",
        "ra": "Test RA",
        "requests": [
            {
                "type": "issue",
                "id": "req-1",
                "profile": "office",
                "csr": base64.b64encode(_CSR).decode(),
                "office_number": "1310000001",
                "office_name": "テスト事業所",
            }
        ],
    }


_CSR = b"\x30\x03\x02\x01\x01"


def test_request_batch_round_trip(link: tuple[SoftwareKey, x509.Certificate]) -> None:
    key, cert = link
    data = write_request_batch(
        ITEMS, ra_name="Test RA", key=key, certificate=cert, now=NOW, batch_id=BATCH_ID
    )
    parsed = read_request_batch(data, trusted=[cert])
    assert parsed.batch_id == BATCH_ID and parsed.ra_name == "Test RA"
    assert parsed.created_at == NOW and parsed.requests == ITEMS
    assert parsed.signer == cert and len(parsed.sha256) == 64
    # A fresh batch id (UUID) is made when none is given.
    other = read_request_batch(
        write_request_batch(ITEMS, ra_name="Test RA", key=key, certificate=cert, now=NOW),
        trusted=[cert],
    )
    assert other.batch_id != BATCH_ID


def test_untrusted_signer_is_refused(link: tuple[SoftwareKey, x509.Certificate], pki: Pki) -> None:
    key, cert = link
    data = write_request_batch(ITEMS, ra_name="x", key=key, certificate=cert, now=NOW)
    impostor_key, impostor = make_link_identity("Test RA", now=NOW)
    with pytest.raises(VerificationFailed, match="not a RA link certificate this CA trusts"):
        read_request_batch(data, trusted=[impostor])
    # Same name, different key: pinning compares the whole certificate, not the name.
    forged = write_request_batch(
        ITEMS, ra_name="x", key=impostor_key, certificate=impostor, now=NOW
    )
    with pytest.raises(VerificationFailed):
        read_request_batch(forged, trusted=[cert, pki.certs["office"]])


def _flip_bytes(
    link: tuple[SoftwareKey, x509.Certificate], stride: int, deltas: tuple[int, ...]
) -> None:
    key, cert = link
    data = write_request_batch(ITEMS[1:], ra_name="x", key=key, certificate=cert, now=NOW)
    for i in range(0, len(data), stride):
        for delta in deltas:
            altered = bytearray(data)
            altered[i] ^= delta
            with pytest.raises((VerificationFailed, MalformedInput)):
                read_request_batch(bytes(altered), trusted=[cert])


def test_changed_bytes_are_refused(link: tuple[SoftwareKey, x509.Certificate]) -> None:
    # A sample across the whole file (envelope, certificate, content, signature); the slow
    # test below tries every byte.
    _flip_bytes(link, 7, (0x01,))


@pytest.mark.slow
def test_every_single_byte_change_is_refused(link: tuple[SoftwareKey, x509.Certificate]) -> None:
    _flip_bytes(link, 1, (0x01,))
    _flip_bytes(link, 3, (0x80,))  # flips the tag class/constructed bits and length forms


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(extra=1), "unknown key 'extra'"),
        (lambda d: d.pop("ra"), "missing key 'ra'"),
        (lambda d: d.update(version=2), "unsupported version"),
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.update(batch_id="not-a-uuid"), "UUID"),
        (lambda d: d.update(created_at="2026-11-01 09:00"), "UTC time"),
        (lambda d: d.update(requests={}), "must be list"),
        (lambda d: d["requests"].append(dict(d["requests"][0])), "appears twice"),
        (lambda d: d["requests"][0].update(type="renew"), "type must be"),
        (lambda d: d["requests"][0].update(csr="***"), "not base64"),
        (lambda d: d["requests"][0].update(office_number=1310000001), "must be str"),
        (lambda d: d["requests"][0].update(colour="red"), "unknown key 'colour'"),
        (lambda d: d["requests"][0].update(id="req-1\n"), "not a valid value"),
        (
            lambda d: d["requests"].append(
                {
                    "type": "revoke",
                    "id": "r2",
                    "serial": "12",
                    "reason": "certificateHold",
                    "revoked_at": "2026-11-01T09:00:00Z",
                    "requested_by": "office",
                }
            ),
            "certificateHold",
        ),
        (
            lambda d: d["requests"].append(
                {
                    "type": "revoke",
                    "id": "r2",
                    "serial": "0x12",
                    "reason": "superseded",
                    "revoked_at": "2026-11-01T09:00:00Z",
                    "requested_by": "office",
                }
            ),
            "serial",
        ),
    ],
)
def test_malformed_request_documents(
    link: tuple[SoftwareKey, x509.Certificate], change: object, message: str
) -> None:
    document = _document()
    change(document)  # type: ignore[operator]
    with pytest.raises(MalformedInput, match=message):
        read_request_batch(_signed_json(document, link), trusted=[link[1]])


def test_json_level_tricks_are_refused(link: tuple[SoftwareKey, x509.Certificate]) -> None:
    key, cert = link
    for content in (
        b'{"format": "a", "format": "b"}',
        b"[1, 2]",
        b"\xff\xfe",
        b'{"version": NaN}',
        b"not json",
    ):
        data = cms.sign(content, key=key, certificate=cert, detached=False, signing_time=NOW)
        with pytest.raises(MalformedInput):
            read_request_batch(data, trusted=[cert])


def test_size_limit(link: tuple[SoftwareKey, x509.Certificate]) -> None:
    key, cert = link
    data = write_request_batch(ITEMS, ra_name="x", key=key, certificate=cert, now=NOW)
    with pytest.raises(MalformedInput, match="over the limit"):
        read_request_batch(data, trusted=[cert], limit=len(data) - 1)


def test_writer_refuses_what_the_reader_would(link: tuple[SoftwareKey, x509.Certificate]) -> None:
    key, cert = link
    with pytest.raises(MalformedInput, match="appears twice"):
        write_request_batch(ITEMS + ITEMS, ra_name="x", key=key, certificate=cert, now=NOW)


def _crl(pki: Pki) -> bytes:
    return pki.crl_der


def _result(pki: Pki, link: tuple[SoftwareKey, x509.Certificate]) -> tuple[bytes, object]:
    key, cert = link
    request = read_request_batch(
        write_request_batch(ITEMS, ra_name="x", key=key, certificate=cert, now=NOW),
        trusted=[cert],
    )
    results = (
        Issued("req-1", pki.certs["office"]),
        IssueRefused("req-2", "weak_key", "the key is too weak", "鍵が弱すぎます"),
        Revoked("rev-1", 0xABCDEF, NOW),
        RevokeRefused("rev-2", 0x99, "unknown_serial", "unknown", "不明"),
    )
    data = write_result_batch(
        request=request,
        results=results,
        crl_der=_crl(pki),
        chain=[pki.certs["issuing"], pki.certs["root"]],
        ca_name="Test CA",
        key=SoftwareKey(pki.keys["issuing"]),
        certificate=pki.certs["issuing"],
        now=NOW,
    )
    return data, (request, results)


def test_result_batch_round_trip(pki: Pki, link: tuple[SoftwareKey, x509.Certificate]) -> None:
    data, (request, results) = _result(pki, link)  # type: ignore[misc]
    parsed = read_result_batch(data, ca_certificate=pki.certs["issuing"])
    assert parsed.batch_id == request.batch_id
    assert parsed.request_sha256 == request.sha256
    assert parsed.results == results
    assert parsed.crl_der == pki.crl_der
    assert parsed.chain == (pki.certs["issuing"], pki.certs["root"])
    assert parsed.ca_name == "Test CA"


def test_tampered_or_foreign_result_batch_is_refused(
    pki: Pki, link: tuple[SoftwareKey, x509.Certificate]
) -> None:
    data, _ = _result(pki, link)
    at = data.index(b"weak_key")
    altered = data[:at] + b"WEAK_KEY" + data[at + 8 :]
    with pytest.raises(VerificationFailed):
        read_result_batch(altered, ca_certificate=pki.certs["issuing"])
    with pytest.raises(VerificationFailed, match="not a CA certificate"):
        read_result_batch(data, ca_certificate=pki.certs["stranger"])


def test_result_with_certificate_of_another_ca_is_refused(
    pki: Pki, link: tuple[SoftwareKey, x509.Certificate]
) -> None:
    key, cert = link
    request = read_request_batch(
        write_request_batch(ITEMS, ra_name="x", key=key, certificate=cert, now=NOW),
        trusted=[cert],
    )
    data = write_result_batch(
        request=request,
        results=[Issued("req-1", pki.certs["stranger_office"])],
        crl_der=pki.crl_der,
        chain=[],
        ca_name="Test CA",
        key=SoftwareKey(pki.keys["issuing"]),
        certificate=pki.certs["issuing"],
        now=NOW,
    )
    with pytest.raises(VerificationFailed, match="not signed by the CA"):
        read_result_batch(data, ca_certificate=pki.certs["issuing"])


def test_make_link_identity(link: tuple[SoftwareKey, x509.Certificate]) -> None:
    key, cert = link
    assert cert.public_key() == key.public_key
    assert cert.subject == cert.issuer
    assert cert.not_valid_before_utc == NOW
    with pytest.raises(MalformedInput):
        make_link_identity("", now=NOW)
    with pytest.raises(TypeError):
        make_link_identity("x", now=dt.datetime(2026, 1, 1))  # naive time is a bug


def test_limits_are_sane() -> None:
    assert batch.MAX_REQUESTS >= 1000 and batch.MAX_REQUEST_BYTES > 1000 * 2000
    assert _csr()  # a real CSR is well under the per-request limit
    assert len(base64.b64encode(_csr())) < 64 * 1024


def test_writers_refuse_a_key_that_is_not_the_certificates(
    pki: Pki, link: tuple[SoftwareKey, x509.Certificate]
) -> None:
    key, cert = link
    with pytest.raises(Refused, match="does not belong"):
        write_request_batch(ITEMS, ra_name="x", key=key, certificate=pki.certs["office"], now=NOW)
    request = read_request_batch(
        write_request_batch(ITEMS, ra_name="x", key=key, certificate=cert, now=NOW),
        trusted=[cert],
    )
    with pytest.raises(Refused, match="does not belong"):
        write_result_batch(
            request=request,
            results=[],
            crl_der=pki.crl_der,
            chain=[],
            ca_name="Test CA",
            key=SoftwareKey(pki.keys["root"]),
            certificate=pki.certs["issuing"],
            now=NOW,
        )
