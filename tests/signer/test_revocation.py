"""Which CRL may decide which certificate (RFC 5280 §5.2.4, §5.2.5, §6.3.3), seen from the
verifier: a CRL whose scope does not cover the signer is never used to call it valid."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from crl import der
from shomei.errors import MalformedInput, Refused
from shomei.keys import SoftwareKey
from signer.claims import sign_claim
from signer.credentials import Credentials
from signer.verdict import Status, Verdict
from signer.verifier import Verifier
from tests.pki import NOW, Pki
from tests.signer.conftest import CLAIM

URL = "http://repository.shomei.example/crl/issuing.crl"
OTHER_URL = "http://repository.shomei.example/crl/issuing-2.crl"
ReasonSet = frozenset[x509.ReasonFlags]


def _leaf(
    pki: Pki,
    *,
    points: Sequence[x509.DistributionPoint] | None = None,
    ca: bool = False,
) -> x509.Certificate:
    """A signing certificate of the issuing CA (the office's key), with these CRL DPs."""
    key = pki.keys["office"]
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "配布点事業所"),
                ]
            )
        )
        .issuer_name(pki.certs["issuing"].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, ca, ca, False, False), critical=True
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                pki.keys["issuing"].public_key()  # type: ignore[arg-type]
            ),
            critical=False,
        )
    )
    if points is not None:
        builder = builder.add_extension(x509.CRLDistributionPoints(points), critical=False)
    return builder.sign(pki.keys["issuing"], hashes.SHA256())  # type: ignore[arg-type]


def _point(url: str = URL, reasons: ReasonSet | None = None) -> x509.DistributionPoint:
    return x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, reasons, None)


def _idp(
    *,
    names: Sequence[x509.GeneralName] | None = None,
    relative: x509.RelativeDistinguishedName | None = None,
    user: bool = False,
    ca: bool = False,
    attribute: bool = False,
    reasons: ReasonSet | None = None,
    indirect: bool = False,
) -> x509.IssuingDistributionPoint:
    return x509.IssuingDistributionPoint(
        full_name=list(names) if names is not None else None,
        relative_name=relative,
        only_contains_user_certs=user,
        only_contains_ca_certs=ca,
        only_some_reasons=reasons,
        indirect_crl=indirect,
        only_contains_attribute_certs=attribute,
    )


def _crl(
    pki: Pki,
    *,
    issuer: str = "issuing",
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    revoked: Sequence[int] = (),
    number: int = 3,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
    entry_extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.certs[issuer].subject)
        .last_update(this_update or NOW - dt.timedelta(hours=1))
        .next_update(next_update or NOW + dt.timedelta(days=7))
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    for serial in revoked:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(NOW - dt.timedelta(hours=3))
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
        )
        for extension, critical in entry_extensions:
            entry = entry.add_extension(extension, critical=critical)
        builder = builder.add_revoked_certificate(entry.build())
    crl = builder.sign(pki.keys[issuer], hashes.SHA256())  # type: ignore[arg-type]
    return crl.public_bytes(serialization.Encoding.DER)


def _verdict(pki: Pki, cert: x509.Certificate, crls: Sequence[bytes]) -> Verdict:
    key = pki.keys["office"]
    creds = Credentials(SoftwareKey(key), cert, (pki.certs["issuing"],), key)
    verifier = Verifier(trust_anchors=[pki.certs["root"]], crls=crls, clock=lambda: NOW)
    return verifier.verify(CLAIM, sign_claim(CLAIM, credentials=creds, signing_time=NOW))


def _undecided(verdict: Verdict, code: str = "crl_scope") -> str:
    assert verdict.status is Status.UNDECIDED, verdict
    assert verdict.exit_code == 2
    assert verdict.reasons[0].code == code, verdict.reasons
    return verdict.summary()


# -- the distribution point name (§5.2.5, §6.3.3 (b)(2)(i)) -----------------------------------


def test_a_crl_of_the_certificates_distribution_point_decides(pki: Pki) -> None:
    cert = _leaf(pki, points=[_point()])
    idp = _idp(names=[x509.UniformResourceIdentifier(URL)])
    assert _verdict(pki, cert, [_crl(pki, extensions=[(idp, True)])]).ok
    listed = _crl(pki, extensions=[(idp, True)], revoked=[cert.serial_number])
    assert _verdict(pki, cert, [listed]).reasons[0].code == "revoked"


def test_a_crl_of_another_distribution_point_is_not_used(pki: Pki) -> None:
    cert = _leaf(pki, points=[_point()])
    idp = _idp(names=[x509.UniformResourceIdentifier(OTHER_URL)])
    text = _undecided(_verdict(pki, cert, [_crl(pki, extensions=[(idp, True)])]))
    assert OTHER_URL in text and URL in text


def test_a_partitioned_crl_does_not_cover_a_certificate_without_distribution_points(
    pki: Pki,
) -> None:
    cert = _leaf(pki)  # no cRLDistributionPoints at all
    idp = _idp(names=[x509.UniformResourceIdentifier(URL)])
    assert "none" in _undecided(_verdict(pki, cert, [_crl(pki, extensions=[(idp, True)])]))
    # Without a distribution point name the CRL covers every certificate of its issuer.
    assert _verdict(pki, cert, [_crl(pki, extensions=[(_idp(user=True), True)])]).ok


def test_the_issuers_own_name_is_every_certificates_distribution_point(pki: Pki) -> None:
    cert = _leaf(pki)
    idp = _idp(names=[x509.DirectoryName(pki.certs["issuing"].subject)])
    assert _verdict(pki, cert, [_crl(pki, extensions=[(idp, True)])]).ok


def test_names_relative_to_the_issuer_are_completed_before_matching(pki: Pki) -> None:
    part = x509.RelativeDistinguishedName(
        [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "partition 1")]
    )
    other = x509.RelativeDistinguishedName(
        [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "partition 2")]
    )
    cert = _leaf(pki, points=[x509.DistributionPoint(None, part, None, None)])
    assert _verdict(pki, cert, [_crl(pki, extensions=[(_idp(relative=part), True)])]).ok
    _undecided(_verdict(pki, cert, [_crl(pki, extensions=[(_idp(relative=other), True)])]))


def test_the_newest_crl_in_scope_decides(pki: Pki) -> None:
    cert = _leaf(pki, points=[_point()])
    mine = _idp(names=[x509.UniformResourceIdentifier(URL)])
    other = _idp(names=[x509.UniformResourceIdentifier(OTHER_URL)])
    listed_elsewhere = _crl(pki, extensions=[(other, True)], number=9)
    assert _verdict(pki, cert, [_crl(pki, extensions=[(mine, True)]), listed_elsewhere]).ok


# -- kinds of certificates (§6.3.3 (b)(2)(ii)-(iv)) --------------------------------------------


def test_a_crl_of_ca_certificates_only_does_not_cover_an_office(pki: Pki) -> None:
    cert = _leaf(pki)
    text = _undecided(_verdict(pki, cert, [_crl(pki, extensions=[(_idp(ca=True), True)])]))
    assert "only CA certificates" in text


def test_a_crl_of_attribute_certificates_only_covers_nothing(pki: Pki) -> None:
    cert = _leaf(pki)
    crl = _crl(pki, extensions=[(_idp(attribute=True), True)])
    assert "attribute" in _undecided(_verdict(pki, cert, [crl]))


def test_a_crl_of_end_entities_only_does_not_cover_the_issuing_ca(pki: Pki) -> None:
    # The root's CRL is given, so the issuing CA's status is checked with it; one limited to
    # end-entity certificates cannot say that a CA certificate is not revoked.
    cert = _leaf(pki)
    root_crl = _crl(pki, issuer="root", extensions=[(_idp(user=True), True)])
    text = _undecided(_verdict(pki, cert, [_crl(pki), root_crl]))
    assert "CA Shomei Test Issuing CA" in text or "Issuing CA" in text


def test_an_authority_revocation_list_decides_the_issuing_ca(pki: Pki) -> None:
    cert = _leaf(pki)
    arl = _crl(pki, issuer="root", extensions=[(_idp(ca=True), True)])
    assert _verdict(pki, cert, [_crl(pki), arl]).ok
    revoked = _crl(
        pki,
        issuer="root",
        extensions=[(_idp(ca=True), True)],
        revoked=[pki.certs["issuing"].serial_number],
        number=4,
    )
    verdict = _verdict(pki, cert, [_crl(pki), revoked])
    assert verdict.status is Status.INVALID and verdict.reasons[0].code == "revoked"
    assert "Issuing CA" in verdict.summary()


def test_a_ca_certificate_signing_is_checked_against_a_crl_for_ca_certificates(pki: Pki) -> None:
    cert = _leaf(pki, ca=True)
    crl = _crl(pki, extensions=[(_idp(user=True), True)])
    assert "CA certificate" in _undecided(_verdict(pki, cert, [crl]))
    assert _verdict(pki, cert, [_crl(pki, extensions=[(_idp(ca=True), True)])]).ok


# -- reasons (§6.3.3 (d)) ---------------------------------------------------------------------

SOME = frozenset({x509.ReasonFlags.key_compromise, x509.ReasonFlags.ca_compromise})


def test_a_crl_of_some_reasons_alone_cannot_say_not_revoked(pki: Pki) -> None:
    cert = _leaf(pki)
    crl = _crl(pki, extensions=[(_idp(reasons=SOME), True)])
    assert "only some revocation reasons" in _undecided(_verdict(pki, cert, [crl]))


def test_a_crl_of_some_reasons_proves_a_revocation(pki: Pki) -> None:
    cert = _leaf(pki)
    partial = _crl(pki, extensions=[(_idp(reasons=SOME), True)], revoked=[cert.serial_number])
    verdict = _verdict(pki, cert, [partial])
    assert verdict.status is Status.INVALID and verdict.reasons[0].code == "revoked"
    # ... even beside an older complete CRL that does not list the certificate yet.
    older = _crl(pki, this_update=NOW - dt.timedelta(days=1), number=2)
    assert _verdict(pki, cert, [older, partial]).reasons[0].code == "revoked"


def test_a_distribution_point_for_some_reasons_is_partial(pki: Pki) -> None:
    cert = _leaf(pki, points=[_point(reasons=SOME)])
    idp = _idp(names=[x509.UniformResourceIdentifier(URL)])
    _undecided(_verdict(pki, cert, [_crl(pki, extensions=[(idp, True)])]))
    # A CRL that is not partitioned still covers it through the issuer's implicit point.
    assert _verdict(pki, cert, [_crl(pki)]).ok


# -- delta and indirect CRLs (§5.2.4, §5.2.5) are refused when given, never ignored ----------


def test_a_delta_crl_is_refused_even_beside_a_complete_one(pki: Pki) -> None:
    delta = _crl(pki, extensions=[(x509.DeltaCRLIndicator(2), True)], number=4)
    with pytest.raises(Refused, match="delta CRL on base CRL number 2"):
        Verifier(trust_anchors=[pki.certs["root"]], crls=[pki.crl_der, delta])


def test_an_indirect_crl_is_refused(pki: Pki) -> None:
    indirect = _crl(pki, extensions=[(_idp(indirect=True), True)])
    with pytest.raises(Refused, match="indirect"):
        Verifier(trust_anchors=[pki.certs["root"]], crls=[indirect])


# -- the rest of the class: never VALID while in doubt ---------------------------------------


def test_unknown_critical_entry_extension_makes_the_crl_unusable(pki: Pki) -> None:
    cert = _leaf(pki)
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4"), b"\x05\x00")
    crl = _crl(pki, revoked=[12345], entry_extensions=[(odd, True)])
    assert "critical entry extension" in _undecided(_verdict(pki, cert, [crl]), "bad_crl")


def test_unknown_critical_crl_extension_makes_the_crl_unusable(pki: Pki) -> None:
    cert = _leaf(pki)
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4"), b"\x05\x00")
    crl = _crl(pki, extensions=[(odd, True)])
    assert "critical CRL extension" in _undecided(_verdict(pki, cert, [crl]), "bad_crl")


def test_crl_issued_in_the_future_is_not_current(pki: Pki) -> None:
    cert = _leaf(pki)
    crl = _crl(pki, this_update=NOW + dt.timedelta(hours=2))
    assert "clock" in _undecided(_verdict(pki, cert, [crl]), "crl_not_yet_valid")


def test_crl_without_next_update_is_never_current(pki: Pki) -> None:
    cert = _leaf(pki)
    crl = x509.load_der_x509_crl(_crl(pki))
    # cryptography always writes a nextUpdate: cut it out and sign the TBS again.
    tbs = crl.tbs_certlist_bytes
    start, end = der.expect(tbs, 0, len(tbs), der.TAG_SEQUENCE, "tbs")
    stamp = der.encode_time(crl.next_update_utc)  # type: ignore[arg-type]
    body = tbs[start:end].replace(stamp, b"", 1)
    new_tbs = der.tlv(der.TAG_SEQUENCE, body)
    key = SoftwareKey(pki.keys["issuing"])
    algorithm = der.sequence(der.encode_oid("1.2.840.113549.1.1.11"), der.tlv(der.TAG_NULL, b""))
    signature = der.tlv(der.TAG_BIT_STRING, b"\x00" + key.sign(new_tbs))
    cut = der.sequence(new_tbs, algorithm, signature)
    assert "none" in _undecided(_verdict(pki, cert, [cut]), "stale_crl")


def test_crl_signed_by_another_key_in_the_issuers_name(pki: Pki) -> None:
    cert = _leaf(pki)
    forged = x509.load_der_x509_crl(_crl(pki, issuer="stranger"))
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.certs["issuing"].subject)
        .last_update(forged.last_update_utc)
        .next_update(forged.next_update_utc)  # type: ignore[arg-type]
        .add_extension(x509.CRLNumber(99), critical=False)
    )
    data = builder.sign(pki.keys["stranger"], hashes.SHA256()).public_bytes(  # type: ignore[arg-type]
        serialization.Encoding.DER
    )
    _undecided(_verdict(pki, cert, [data]), "bad_crl")
    # Beside a genuine CRL it is not used, and not passed over either: it might have been the
    # newest CRL, damaged.  A revocation that a usable CRL proves still stands.
    _undecided(_verdict(pki, cert, [data, _crl(pki)]), "bad_crl")
    listed = _crl(pki, revoked=[cert.serial_number])
    assert _verdict(pki, cert, [data, listed]).reasons[0].code == "revoked"


def test_a_newer_unusable_crl_is_not_passed_over(pki: Pki) -> None:
    cert = _leaf(pki)
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4"), b"\x05\x00")
    newer = _crl(pki, extensions=[(odd, True)], revoked=[cert.serial_number], number=8)
    older = _crl(pki, number=7, this_update=NOW - dt.timedelta(hours=5))
    assert "critical CRL extension" in _undecided(_verdict(pki, cert, [older, newer]), "bad_crl")


def test_garbage_crl_is_refused_when_given(pki: Pki) -> None:
    with pytest.raises(MalformedInput):
        Verifier(trust_anchors=[pki.certs["root"]], crls=[pki.crl_der[:-1]])


def test_an_office_certificate_is_never_a_trust_anchor(pki: Pki) -> None:
    # A trust anchor is not checked for revocation: the revoked office, given as one (say in
    # a chain file passed to --trust), would otherwise sign VALID claims.
    for anchors in ([pki.certs["revoked"]], [pki.certs["root"], pki.certs["revoked"]]):
        with pytest.raises(Refused, match="not a CA certificate"):
            Verifier(trust_anchors=anchors, crls=[pki.crl_der])


def _fetched_verdict(
    pki: Pki, cert: x509.Certificate, answers: dict[str, bytes | Exception]
) -> tuple[Verdict, list[str]]:
    """Verify with a fetcher that answers from ``answers``; also the URLs it was asked for."""
    from signer.fetch import CrlFetcher

    asked: list[str] = []

    def fetch(url: str) -> bytes:
        asked.append(url)
        answer = answers.get(url, MalformedInput("no answer", message_ja="応答なし"))
        if isinstance(answer, Exception):
            raise answer
        return answer

    key = pki.keys["office"]
    creds = Credentials(SoftwareKey(key), cert, (pki.certs["issuing"],), key)
    verifier = Verifier(
        trust_anchors=[pki.certs["root"]], clock=lambda: NOW, fetcher=CrlFetcher(fetch)
    )
    signature = sign_claim(CLAIM, credentials=creds, signing_time=NOW)
    first = verifier.verify(CLAIM, signature)
    again = verifier.verify(CLAIM, signature)
    assert again.status is first.status
    return first, asked


def test_a_fetched_crl_decides_and_is_fetched_once(pki: Pki) -> None:
    cert = _leaf(pki, points=[_point()])
    verdict, asked = _fetched_verdict(pki, cert, {URL: _crl(pki)})
    assert verdict.status is Status.VALID and asked == [URL]
    verdict, _asked = _fetched_verdict(pki, cert, {URL: _crl(pki, revoked=[cert.serial_number])})
    assert verdict.status is Status.INVALID


@pytest.mark.parametrize(
    "answer",
    [
        MalformedInput("could not fetch the CRL from x: timed out", message_ja="取得できません"),
        b"not a crl",
    ],
)
def test_a_failed_fetch_is_could_not_decide(pki: Pki, answer: bytes | Exception) -> None:
    verdict, _asked = _fetched_verdict(pki, _leaf(pki, points=[_point()]), {URL: answer})
    _undecided(verdict, "crl_unavailable")


def test_a_fetched_crl_of_another_issuer_proves_nothing(pki: Pki) -> None:
    """A CRL signed by another key (a forged answer at the URL) is not used: undecided."""
    forged = _crl(pki, issuer="root")
    verdict, _asked = _fetched_verdict(pki, _leaf(pki, points=[_point()]), {URL: forged})
    assert verdict.status is Status.UNDECIDED
