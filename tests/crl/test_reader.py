"""crl.reader: load_crl against cryptography's own parse, and every way a CRL can be bad."""

from __future__ import annotations

import base64
import datetime as dt
import random

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from crl import der
from crl.builder import RevokedEntry, build_crl, encode_entry
from crl.reader import CrlNotCurrent, LoadedCrl, load_crl
from shomei.errors import MalformedInput, Refused, Undecided, VerificationFailed
from shomei.keys import SoftwareKey
from tests.crl.conftest import CrlMaker, resign, revoked, tbs_of
from tests.pki import NOW, Pki

REASON_EXT = bytes.fromhex("300a0603551d1504030a01")  # one reasonCode Extension, code to add


def _ours(
    issuing: x509.Certificate, key: SoftwareKey, entries: list[RevokedEntry], **kw: object
) -> bytes:
    args: dict[str, object] = {
        "issuer": issuing,
        "key": key,
        "number": 3,
        "this_update": NOW - dt.timedelta(hours=1),
        "next_update": NOW + dt.timedelta(days=1),
        "entries": entries,
    }
    args.update(kw)
    return build_crl(**args)  # type: ignore[arg-type]


def _crypto_view(data: bytes) -> list[tuple[int, dt.datetime, x509.ReasonFlags | None]]:
    """What cryptography reads in a CRL: (serial, date, reason) per entry, in order."""
    out = []
    for r in x509.load_der_x509_crl(data):
        try:
            reason: x509.ReasonFlags | None = r.extensions.get_extension_for_class(
                x509.CRLReason
            ).value.reason
        except x509.ExtensionNotFound:
            reason = None
        out.append((r.serial_number, r.revocation_date_utc, reason))
    return out


def _our_view(loaded: LoadedCrl) -> list[tuple[int, dt.datetime, x509.ReasonFlags | None]]:
    out = []
    for serial in loaded.index:
        found = loaded.index.lookup(serial)
        assert found is not None and found.serial == serial
        out.append((found.serial, found.revoked_at, found.reason))
    return out


# -- happy paths ------------------------------------------------------------------------------


def test_the_test_pki_crl(pki: Pki, issuing: x509.Certificate) -> None:
    loaded = load_crl(pki.crl_der, issuer=issuing, now=NOW)
    assert loaded.issuer == issuing.subject
    assert loaded.number == 1
    assert loaded.this_update == NOW - dt.timedelta(hours=1)
    assert loaded.next_update == NOW + dt.timedelta(days=7)
    assert loaded.is_current(NOW)
    assert len(loaded.index) == 1
    assert pki.certs["revoked"].serial_number in loaded.index
    assert pki.certs["office"].serial_number not in loaded.index
    assert loaded.index.lookup(pki.certs["office"].serial_number) is None
    found = loaded.index.lookup(pki.certs["revoked"].serial_number)
    assert found is not None
    assert found.revoked_at == NOW - dt.timedelta(hours=2)
    assert found.reason is x509.ReasonFlags.key_compromise
    import hashlib

    assert loaded.sha256 == hashlib.sha256(pki.crl_der).digest()


def test_pem_is_accepted(pki: Pki, issuing: x509.Certificate) -> None:
    body = base64.encodebytes(pki.crl_der)
    pem = b"-----BEGIN X509 CRL-----\n" + body + b"-----END X509 CRL-----\n"
    assert load_crl(pem, issuer=issuing).sha256 == load_crl(pki.crl_der, issuer=issuing).sha256
    assert len(load_crl(bytearray(pki.crl_der), issuer=issuing).index) == 1
    crlf = b"\r\n  " + pem.replace(b"\n", b"\r\n")
    assert load_crl(crlf, issuer=issuing).number == 1


def test_a_forged_stale_crl_is_invalid_not_undecided(
    crypto_crl: CrlMaker, issuing: x509.Certificate
) -> None:
    """Currency is judged last: a forgery is reported as such even when it is also stale."""
    forged = crypto_crl(signer="stranger", issuer="issuing", extensions=[])
    with pytest.raises(VerificationFailed):
        load_crl(forged, issuer=issuing, now=NOW + dt.timedelta(days=30))


def test_random_crls_match_cryptography(
    issuing: x509.Certificate, issuing_key: SoftwareKey
) -> None:
    """5,000 entries (more than one 4,096-entry chunk) with every serial length and reason."""
    rnd = random.Random(11)
    reasons = [None, *(r for r in x509.ReasonFlags if r is not x509.ReasonFlags.remove_from_crl)]
    entries: dict[int, RevokedEntry] = {}
    while len(entries) < 5000:
        serial = rnd.getrandbits(rnd.randrange(1, 160)) or 1
        when = dt.datetime(rnd.randrange(1990, 2080), 1, 1, tzinfo=dt.UTC) + dt.timedelta(
            seconds=rnd.randrange(360 * 86400)
        )
        entries[serial] = RevokedEntry(serial, when, rnd.choice(reasons))
    data = _ours(issuing, issuing_key, list(entries.values()))
    loaded = load_crl(data, issuer=issuing, now=NOW)
    assert _our_view(loaded) == [
        (s, t, None if r is x509.ReasonFlags.unspecified else r) for s, t, r in _crypto_view(data)
    ]
    assert len(loaded.index) == 5000
    absent = [rnd.getrandbits(64) for _ in range(200)]
    assert [s in loaded.index for s in absent] == [s in entries for s in absent]


def _raw_entry(serial_content: bytes, when: bytes, extensions: bytes = b"") -> bytes:
    body = der.tlv(der.TAG_INTEGER, serial_content) + when
    if extensions:
        body += der.sequence(extensions)
    return der.sequence(body)


def _crl_with_raw_entries(
    issuing: x509.Certificate, key: SoftwareKey, raw: list[bytes], number: int = 3
) -> bytes:
    """A CRL of entries encoded here by hand, wrapped and signed by our builder."""
    return _ours(issuing, key, [], encoded_entries=raw, number=number)


def test_unusual_entries_match_cryptography(
    issuing: x509.Certificate, issuing_key: SoftwareKey
) -> None:
    """Shapes the fast path does not take, mixed with ones it does."""
    utc = der.encode_time(NOW - dt.timedelta(days=3))
    gen = b"\x18\x0f20600101000000Z"
    invalidity = der.sequence(
        der.encode_oid("2.5.29.24"), der.tlv(der.TAG_OCTET_STRING, b"\x18\x0f20250101000000Z")
    )
    unknown = der.sequence(
        der.encode_oid("1.2.3.4.5"), der.tlv(der.TAG_OCTET_STRING, der.tlv(0x04, b"x" * 120))
    )
    reason_hold = REASON_EXT + b"\x06"
    reason_unspecified = REASON_EXT + b"\x00"
    raw = [
        _raw_entry(b"\x00\x80", utc),  # leading 00 before a high bit: the fast path
        _raw_entry(b"\x01", gen, reason_hold),
        _raw_entry(b"\x7f" * 20, utc, invalidity),  # invalidityDate: the general decoder
        _raw_entry(b"\x00" + b"\xee" * 20, utc, unknown),  # 21 octets, entry > 127 (long form)
        _raw_entry(b"\x12\x34", utc, reason_unspecified + invalidity),
        *(_raw_entry(bytes((0x40, i)), utc) for i in range(10)),
        _raw_entry(b"\x55" * 30, gen),  # longer than 21 octets: the general decoder
    ]
    data = _crl_with_raw_entries(issuing, issuing_key, raw)
    loaded = load_crl(data, issuer=issuing)
    assert _our_view(loaded) == _crypto_view(data)
    assert 0x80 in loaded.index and 1 in loaded.index
    assert loaded.index.lookup(0x1234).reason is x509.ReasonFlags.unspecified  # type: ignore[union-attr]


def test_negative_serials_are_indexed(issuing: x509.Certificate, issuing_key: SoftwareKey) -> None:
    """RFC 5280 §4.1.2.2 asks users to handle negative serials gracefully."""
    utc = der.encode_time(NOW)
    raw = [_raw_entry(b"\xff\x7f", utc), _raw_entry(b"\x80", utc), _raw_entry(b"\x05", utc)]
    loaded = load_crl(_crl_with_raw_entries(issuing, issuing_key, raw), issuer=issuing)
    assert list(loaded.index) == [-129, -128, 5]
    assert -128 in loaded.index and 128 not in loaded.index


def test_a_serial_listed_twice_keeps_the_last_entry(
    issuing: x509.Certificate, issuing_key: SoftwareKey
) -> None:
    first = RevokedEntry(77, NOW - dt.timedelta(days=2))
    second = RevokedEntry(77, NOW - dt.timedelta(days=1), x509.ReasonFlags.superseded)
    loaded = load_crl(_ours(issuing, issuing_key, [first, second]), issuer=issuing)
    assert len(loaded.index) == 1
    assert loaded.index.lookup(77).revoked_at == second.revoked_at  # type: ignore[union-attr]


def test_index_ignores_non_integers(pki: Pki, issuing: x509.Certificate) -> None:
    index = load_crl(pki.crl_der, issuer=issuing).index
    serial = pki.certs["revoked"].serial_number
    assert str(serial) not in index
    assert index.lookup(str(serial)) is None  # type: ignore[arg-type]
    assert True not in index


def test_known_extensions_are_accepted(
    crypto_crl: CrlMaker, pki: Pki, issuing: x509.Certificate
) -> None:
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.keys["issuing"].public_key())  # type: ignore[arg-type]
    idp = x509.IssuingDistributionPoint(
        full_name=[x509.UniformResourceIdentifier("http://crl.example.jp/issuing.crl")],
        relative_name=None,
        only_contains_user_certs=True,
        only_contains_ca_certs=False,
        only_some_reasons=None,
        indirect_crl=False,
        only_contains_attribute_certs=False,
    )
    data = crypto_crl(
        extensions=[
            (aki, False),
            (x509.CRLNumber(9), False),
            (idp, True),
            (x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4"), b"\x05\x00"), False),
        ],
        entries=[revoked(5, NOW, (x509.InvalidityDate(NOW - dt.timedelta(days=9)), False))],
    )
    loaded = load_crl(data, issuer=issuing)
    assert loaded.number == 9 and 5 in loaded.index


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, CRL",
        b"\x30",
        b"\x30\x80\x00\x00",  # indefinite length (BER, not DER)
        b"\x30\x81\x05\x02\x01\x01\x05\x00",  # length not in its shortest form
        b"-----BEGIN X509 CRL-----\n!!!!\n-----END X509 CRL-----\n",
        b"-----BEGIN X509 CRL-----\nMAA=\n",
        bytes(range(256)),
    ],
)
def test_garbage_is_malformed(data: bytes, issuing: x509.Certificate) -> None:
    with pytest.raises(MalformedInput) as caught:
        load_crl(data, issuer=issuing)
    assert caught.value.message_ja


def test_truncated_and_trailing_bytes_are_malformed(pki: Pki, issuing: x509.Certificate) -> None:
    for cut in (1, 10, len(pki.crl_der) // 2, len(pki.crl_der) - 1):
        with pytest.raises(MalformedInput):
            load_crl(pki.crl_der[:cut], issuer=issuing)
    with pytest.raises(MalformedInput, match="after the CRL"):
        load_crl(pki.crl_der + b"\x00", issuer=issuing)


def test_truncated_big_crl_is_malformed(
    issuing: x509.Certificate, issuing_key: SoftwareKey
) -> None:
    data = _ours(issuing, issuing_key, [RevokedEntry(i, NOW) for i in range(1, 3000)])
    # Keep the outer lengths consistent but cut inside the entries: re-wrap a shortened TBS.
    tbs = tbs_of(data)
    with pytest.raises(MalformedInput):
        load_crl(resign(tbs[: len(tbs) // 2], issuing_key), issuer=issuing)


def test_unsupported_version_is_malformed(
    pki: Pki, issuing: x509.Certificate, issuing_key: SoftwareKey
) -> None:
    tbs = tbs_of(pki.crl_der)
    start, _ = der.expect(tbs, 0, len(tbs), der.TAG_SEQUENCE, "tbs")
    assert tbs[start : start + 3] == b"\x02\x01\x01"
    v3 = tbs[:start] + b"\x02\x01\x02" + tbs[start + 3 :]
    with pytest.raises(MalformedInput, match="version"):
        load_crl(resign(v3, issuing_key), issuer=issuing)


def test_mismatched_algorithms_are_malformed(
    pki: Pki, issuing: x509.Certificate, issuing_key: SoftwareKey
) -> None:
    tbs = tbs_of(pki.crl_der)
    sha256_rsa = bytes.fromhex("300d06092a864886f70d01010b0500")
    sha384_rsa = bytes.fromhex("300d06092a864886f70d01010c0500")
    with pytest.raises(MalformedInput, match="differ"):
        load_crl(
            der.sequence(tbs, sha384_rsa, der.tlv(3, b"\x00" + issuing_key.sign(tbs))),
            issuer=issuing,
        )
    other = tbs.replace(sha256_rsa, sha384_rsa, 1)
    with pytest.raises(VerificationFailed, match="algorithm"):
        load_crl(
            der.sequence(other, sha384_rsa, der.tlv(3, b"\x00" + issuing_key.sign(other))),
            issuer=issuing,
        )


def test_another_issuers_crl_is_refused(
    crypto_crl: CrlMaker, pki: Pki, issuing: x509.Certificate
) -> None:
    with pytest.raises(VerificationFailed, match="another issuer") as caught:
        load_crl(crypto_crl(signer="stranger", issuer="stranger"), issuer=issuing)
    assert caught.value.message_ja == "別の発行者の CRL です"
    # The issuing CA's name, but the stranger's key (its AKI gives it away).
    with pytest.raises(VerificationFailed, match="another issuer"):
        load_crl(crypto_crl(signer="stranger", issuer="issuing"), issuer=issuing)
    # No AKI at all: only the signature can tell.
    forged = crypto_crl(
        signer="stranger", issuer="issuing", extensions=[(x509.CRLNumber(1), False)]
    )
    with pytest.raises(VerificationFailed, match="signature"):
        load_crl(forged, issuer=issuing)


def test_flipped_bytes_break_the_signature(pki: Pki, issuing: x509.Certificate) -> None:
    data = bytearray(pki.crl_der)
    data[-5] ^= 0x01  # inside the signature value
    with pytest.raises(VerificationFailed):
        load_crl(bytes(data), issuer=issuing)
    data = bytearray(pki.crl_der)
    serial = pki.certs["revoked"].serial_number
    at = bytes(data).index(serial.to_bytes((serial.bit_length() + 8) // 8, "big"))
    data[at + 3] ^= 0x40  # another serial: a forgery that still parses
    with pytest.raises(VerificationFailed):
        load_crl(bytes(data), issuer=issuing)


@pytest.mark.parametrize(
    ("now", "ok"),
    [
        (NOW - dt.timedelta(hours=1), True),
        (NOW + dt.timedelta(days=7) - dt.timedelta(seconds=1), True),
        (NOW - dt.timedelta(hours=1, seconds=1), False),  # not yet valid
        (NOW + dt.timedelta(days=7), False),  # stale
    ],
)
def test_currency(now: dt.datetime, ok: bool, pki: Pki, issuing: x509.Certificate) -> None:
    if ok:
        assert load_crl(pki.crl_der, issuer=issuing, now=now).is_current(now)
        return
    with pytest.raises(CrlNotCurrent) as caught:
        load_crl(pki.crl_der, issuer=issuing, now=now)
    assert isinstance(caught.value, Undecided)
    assert caught.value.fields["this_update"] == NOW - dt.timedelta(hours=1)
    assert caught.value.fields["next_update"] == NOW + dt.timedelta(days=7)
    assert not load_crl(pki.crl_der, issuer=issuing).is_current(now)


def test_no_next_update_is_never_current(crypto_crl: CrlMaker, issuing: x509.Certificate) -> None:
    data = crypto_crl(next_update=None)
    loaded = load_crl(data, issuer=issuing)
    assert loaded.next_update is None and not loaded.is_current(NOW)
    with pytest.raises(CrlNotCurrent, match="no nextUpdate"):
        load_crl(data, issuer=issuing, now=NOW)


def test_unknown_critical_extensions_are_malformed(
    crypto_crl: CrlMaker, issuing: x509.Certificate
) -> None:
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4"), b"\x05\x00")
    with pytest.raises(MalformedInput, match="critical CRL extension"):
        load_crl(crypto_crl(extensions=[(odd, True)]), issuer=issuing)
    entry = revoked(9, NOW, (odd, True))
    with pytest.raises(MalformedInput, match="critical entry extension"):
        load_crl(crypto_crl(entries=[entry]), issuer=issuing)
    # The same extension, not critical, is simply ignored.
    ok = crypto_crl(entries=[revoked(9, NOW, (odd, False))], extensions=[(odd, False)])
    assert 9 in load_crl(ok, issuer=issuing).index


def test_delta_and_indirect_crls_are_refused(
    crypto_crl: CrlMaker, pki: Pki, issuing: x509.Certificate
) -> None:
    with pytest.raises(Refused, match="delta"):
        load_crl(crypto_crl(extensions=[(x509.DeltaCRLIndicator(4), True)]), issuer=issuing)
    other = x509.CertificateIssuer([x509.DirectoryName(pki.certs["stranger"].subject)])
    with pytest.raises(Refused, match="indirect"):
        load_crl(crypto_crl(entries=[revoked(9, NOW, (other, True))]), issuer=issuing)
    idp = x509.IssuingDistributionPoint(
        full_name=None,
        relative_name=None,
        only_contains_user_certs=False,
        only_contains_ca_certs=False,
        only_some_reasons=None,
        indirect_crl=True,
        only_contains_attribute_certs=False,
    )
    with pytest.raises(Refused, match="indirect"):
        load_crl(crypto_crl(extensions=[(idp, True)]), issuer=issuing)


def test_remove_from_crl_reason_is_malformed(
    issuing: x509.Certificate, issuing_key: SoftwareKey
) -> None:
    raw = [_raw_entry(b"\x05", der.encode_time(NOW), REASON_EXT + b"\x08")]
    with pytest.raises(MalformedInput, match="reasonCode 8"):
        load_crl(_crl_with_raw_entries(issuing, issuing_key, raw), issuer=issuing)


def test_bad_entries_are_malformed(issuing: x509.Certificate, issuing_key: SoftwareKey) -> None:
    good_time = der.encode_time(NOW)
    bad = {
        "shortest": _raw_entry(b"\x00\x05", good_time),
        "revocationDate": _raw_entry(b"\x05", b"\x17\x0d2601010000000"),  # no Z
        "time": _raw_entry(b"\x05", b"\x17\x0d26013100000aZ"),
        "month": _raw_entry(b"\x05", b"\x17\x0d261301000000Z"),  # found on lookup
        "reasonCode": _raw_entry(b"\x05", good_time, REASON_EXT[:-3] + b"\x02\x01\x01"),
    }
    for what, entry in bad.items():
        data = _crl_with_raw_entries(
            issuing, issuing_key, [encode_entry(RevokedEntry(1, NOW)), entry]
        )
        with pytest.raises(MalformedInput) as caught:
            loaded = load_crl(data, issuer=issuing)
            loaded.index.lookup(5)  # a bad time is found when its details are read
        assert caught.value.message_ja, what


def test_issuer_without_crl_sign_is_refused(pki: Pki) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "No CRL CA")])
    usage = x509.KeyUsage(False, False, False, False, False, True, False, False, False)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(name)
        .last_update(NOW)
        .next_update(NOW + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives.serialization import Encoding

    with pytest.raises(VerificationFailed, match="cRLSign"):
        load_crl(crl.public_bytes(Encoding.DER), issuer=cert)


def test_bad_arguments(pki: Pki, issuing: x509.Certificate) -> None:
    with pytest.raises(MalformedInput):
        load_crl(pki.crl_der, issuer=issuing, now=NOW.replace(tzinfo=None))
    with pytest.raises(MalformedInput):
        load_crl(pki.crl_der.hex(), issuer=issuing)  # type: ignore[arg-type]
    with pytest.raises(MalformedInput):
        load_crl(pki.crl_der, issuer=pki.crl_der)  # type: ignore[arg-type]


def test_mutations_raise_only_shomei_errors(
    crypto_crl: CrlMaker, pki: Pki, issuing: x509.Certificate, issuing_key: SoftwareKey
) -> None:
    """Random byte changes, re-signed so that every check is reached: never a traceback."""
    from shomei.errors import ShomeiError

    idp = x509.IssuingDistributionPoint(
        full_name=[x509.UniformResourceIdentifier("http://crl.example.jp/issuing.crl")],
        relative_name=None,
        only_contains_user_certs=True,
        only_contains_ca_certs=False,
        only_some_reasons=None,
        indirect_crl=False,
        only_contains_attribute_certs=False,
    )
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(
        pki.keys["issuing"].public_key()  # type: ignore[arg-type]
    )
    base = crypto_crl(
        extensions=[(aki, False), (x509.CRLNumber(7), False), (idp, True)],
        entries=[
            revoked(5, NOW, (x509.CRLReason(x509.ReasonFlags.superseded), False)),
            revoked(6, NOW, (x509.InvalidityDate(NOW - dt.timedelta(days=1)), False)),
            revoked(1 << 100, NOW),
        ],
    )
    tbs = tbs_of(base)
    rnd = random.Random(99)
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(300):
        mutated = bytearray(tbs)
        for _ in range(rnd.randrange(1, 3)):
            mutated[rnd.randrange(len(mutated))] = rnd.randrange(256)
        try:
            loaded = load_crl(resign(bytes(mutated), issuing_key), issuer=issuing)
            for serial in loaded.index:
                loaded.index.lookup(serial)
            outcomes["loaded"] += 1
        except ShomeiError as exc:
            assert exc.message and exc.message_ja
            outcomes["refused"] += 1
    assert outcomes["refused"] > 100
