"""crl.builder: CRLs that cryptography, openssl and pkilint accept, and refusals of bad input."""

from __future__ import annotations

import datetime as dt
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from crl import der
from crl.builder import RevokedEntry, build_crl, encode_entry
from shomei.errors import MalformedInput, Refused
from shomei.keys import SoftwareKey
from tests.pki import NOW, Pki

LINT_CRL = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "lint_crl"
REASONS = [r for r in x509.ReasonFlags if r is not x509.ReasonFlags.remove_from_crl]


def _entries(count: int, seed: int = 7) -> list[RevokedEntry]:
    """Distinct random serials of many lengths, random times and reasons."""
    rnd = random.Random(seed)
    out: dict[int, RevokedEntry] = {}
    while len(out) < count:
        serial = rnd.getrandbits(rnd.choice([1, 7, 8, 63, 64, 127, 128, 159])) | 1
        when = NOW - dt.timedelta(seconds=rnd.randrange(10**8))
        out[serial] = RevokedEntry(serial, when, rnd.choice([None, *REASONS]))
    return list(out.values())


def _build(issuing: x509.Certificate, key: SoftwareKey, **kw: object) -> bytes:
    args: dict[str, object] = {
        "issuer": issuing,
        "key": key,
        "number": 42,
        "this_update": NOW,
        "next_update": NOW + dt.timedelta(days=7),
    }
    args.update(kw)
    return build_crl(**args)  # type: ignore[arg-type]


def test_round_trip_through_cryptography(
    issuing: x509.Certificate, issuing_key: SoftwareKey
) -> None:
    entries = _entries(300)
    entries.append(RevokedEntry(0x80, dt.datetime(2051, 3, 4, 5, 6, 7, tzinfo=dt.UTC)))
    data = _build(issuing, issuing_key, entries=entries)
    crl = x509.load_der_x509_crl(data)
    assert crl.is_signature_valid(issuing.public_key())  # type: ignore[arg-type]
    assert crl.issuer == issuing.subject
    assert crl.last_update_utc == NOW
    assert crl.next_update_utc == NOW + dt.timedelta(days=7)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 42
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.key_identifier
    got = []
    for r in crl:
        try:
            reason: x509.ReasonFlags | None = r.extensions.get_extension_for_class(
                x509.CRLReason
            ).value.reason
        except x509.ExtensionNotFound:
            reason = None
        got.append((r.serial_number, r.revocation_date_utc, reason))
    want = [
        (
            e.serial,
            e.revoked_at,
            None if e.reason is x509.ReasonFlags.unspecified else e.reason,
        )
        for e in entries
    ]
    assert got == want


def test_times_use_utctime_then_generalizedtime(
    issuing: x509.Certificate, issuing_key: SoftwareKey
) -> None:
    later = dt.datetime(2050, 1, 1, tzinfo=dt.UTC)
    data = _build(issuing, issuing_key, this_update=NOW, next_update=later)
    assert der.encode_time(NOW) in data and der.encode_time(NOW)[0] == der.TAG_UTC_TIME
    assert b"\x18\x0f20500101000000Z" in data
    assert x509.load_der_x509_crl(data).next_update_utc == later


def test_empty_crl_omits_revoked_certificates(
    issuing: x509.Certificate, issuing_key: SoftwareKey
) -> None:
    data = _build(issuing, issuing_key)
    tbs = x509.load_der_x509_crl(data).tbs_certlist_bytes
    # version, signature, issuer, thisUpdate, nextUpdate, then directly the [0] extensions.
    stamp = der.encode_time(NOW + dt.timedelta(days=7))
    assert tbs[tbs.index(stamp) + len(stamp)] == der.TAG_CONTEXT_0
    assert len(x509.load_der_x509_crl(data)) == 0


def test_encoded_entries_are_the_same_as_entries(
    issuing: x509.Certificate, issuing_key: SoftwareKey
) -> None:
    entries = _entries(50)
    a = _build(issuing, issuing_key, entries=entries)
    b = _build(issuing, issuing_key, encoded_entries=[encode_entry(e) for e in entries])
    c = _build(
        issuing,
        issuing_key,
        entries=entries[:20],
        encoded_entries=[encode_entry(e) for e in entries[20:]],
    )
    # RSA PKCS#1 v1.5 is deterministic, so equal TBS means equal CRLs.
    assert a == b == c


def test_encode_entry_bytes() -> None:
    entry = RevokedEntry(0x0102, dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    assert encode_entry(entry) == bytes.fromhex(
        "3013020201 02170d3236303130323033303430355a".replace(" ", "")
    )
    with_reason = RevokedEntry(0xFF, entry.revoked_at, x509.ReasonFlags.key_compromise)
    assert encode_entry(with_reason).endswith(bytes.fromhex("300c300a0603551d1504030a0101"))
    assert encode_entry(with_reason)[2:6] == b"\x02\x02\x00\xff"


@pytest.mark.parametrize(
    "entry",
    [
        RevokedEntry(0, NOW),
        RevokedEntry(-5, NOW),
        RevokedEntry(1 << 160, NOW),
        RevokedEntry(True, NOW),  # type: ignore[arg-type]
        RevokedEntry(5, NOW.replace(tzinfo=None)),
        RevokedEntry(5, "2026-01-01"),  # type: ignore[arg-type]
        RevokedEntry(5, NOW, x509.ReasonFlags.remove_from_crl),
        RevokedEntry(5, NOW, "keyCompromise"),  # type: ignore[arg-type]
    ],
)
def test_bad_entries_are_refused(
    entry: RevokedEntry, issuing: x509.Certificate, issuing_key: SoftwareKey
) -> None:
    with pytest.raises(MalformedInput) as single:
        encode_entry(entry)
    assert single.value.message_ja != single.value.message
    with pytest.raises(MalformedInput):
        _build(issuing, issuing_key, entries=[RevokedEntry(9, NOW), entry])


def test_encode_entry_refuses_non_entries() -> None:
    with pytest.raises(MalformedInput):
        encode_entry((5, NOW))  # type: ignore[arg-type]


def test_encoded_entries_must_be_bytes(issuing: x509.Certificate, issuing_key: SoftwareKey) -> None:
    with pytest.raises(MalformedInput):
        _build(issuing, issuing_key, encoded_entries=["3013..."])


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"number": -1}, MalformedInput),
        ({"number": 1 << 160}, MalformedInput),
        ({"next_update": NOW}, MalformedInput),
        ({"next_update": NOW - dt.timedelta(days=1)}, MalformedInput),
        ({"this_update": NOW.replace(tzinfo=None)}, MalformedInput),
        ({"this_update": "now"}, MalformedInput),
    ],
)
def test_bad_parameters_are_refused(
    kw: dict[str, object],
    error: type[Exception],
    issuing: x509.Certificate,
    issuing_key: SoftwareKey,
) -> None:
    with pytest.raises(error):
        _build(issuing, issuing_key, **kw)


def test_wrong_key_or_non_ca_issuer_is_refused(pki: Pki, issuing_key: SoftwareKey) -> None:
    with pytest.raises(Refused, match="does not belong"):
        _build(pki.certs["issuing"], SoftwareKey(pki.keys["root"]))
    # An office certificate has a keyUsage without cRLSign.
    with pytest.raises(Refused, match="cRLSign"):
        _build(pki.certs["office"], SoftwareKey(pki.keys["office"]))
    with pytest.raises(MalformedInput):
        _build("issuing", issuing_key)  # type: ignore[arg-type]


def test_ecdsa_issuer(pki: Pki) -> None:
    """An ECDSA CA signs with ecdsa-with-SHA256 (made here: the test PKI's CAs are RSA)."""
    from cryptography.hazmat.primitives import hashes

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "EC CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    data = _build(cert, SoftwareKey(key), entries=_entries(10))
    crl = x509.load_der_x509_crl(data)
    assert crl.signature_algorithm_oid == x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256
    assert crl.is_signature_valid(key.public_key())


def test_issuer_without_ski_is_refused() -> None:
    """The CRL's AKI is the issuer's SKI (RFC 5280 §5.2.1); without one there is nothing to copy."""
    from cryptography.hazmat.primitives import hashes

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "CA without SKI")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(MalformedInput, match="subjectKeyIdentifier"):
        _build(cert, SoftwareKey(key))


def test_openssl_verifies_our_crl(
    issuing: x509.Certificate, issuing_key: SoftwareKey, pki_dir: Path, tmp_path: Path
) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    path = tmp_path / "ours.crl"
    path.write_bytes(_build(issuing, issuing_key, entries=_entries(100)))
    done = subprocess.run(
        [
            "openssl",
            "crl",
            "-inform",
            "DER",
            "-in",
            str(path),
            "-CAfile",
            str(pki_dir / "issuing.pem"),
            "-noout",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "verify OK" in done.stderr + done.stdout


@pytest.mark.parametrize("count", [0, 120])
def test_pkilint_finds_nothing(
    count: int, issuing: x509.Certificate, issuing_key: SoftwareKey, tmp_path: Path
) -> None:
    if not LINT_CRL.exists():
        pytest.skip(f"pkilint's lint_crl is not installed at {LINT_CRL}")
    path = tmp_path / "ours.crl"
    path.write_bytes(_build(issuing, issuing_key, entries=_entries(count)))
    done = subprocess.run(
        [str(LINT_CRL), "lint", "-t", "CRL", "-p", "PKIX", "-s", "WARNING", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""
