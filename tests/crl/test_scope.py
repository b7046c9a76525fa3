"""The scope of a CRL (RFC 5280 §5.2.5): parsed from its issuingDistributionPoint, asked per
certificate, and refused by default where the RA expects a CRL of everything."""

from __future__ import annotations

import pytest
from cryptography import x509

from crl.reader import check_usable, load_crl
from crl.scope import ALL_REASONS, Scope, parse_idp
from shomei.errors import MalformedInput, Refused
from tests.crl.conftest import CrlMaker
from tests.pki import Pki

IDP = x509.ObjectIdentifier("2.5.29.28")


def _raw_idp(value: bytes) -> tuple[x509.ExtensionType, bool]:
    return x509.UnrecognizedExtension(IDP, value), True


def _idp(**flags: object) -> tuple[x509.ExtensionType, bool]:
    values: dict[str, object] = {
        "full_name": None,
        "relative_name": None,
        "only_contains_user_certs": False,
        "only_contains_ca_certs": False,
        "only_some_reasons": None,
        "indirect_crl": False,
        "only_contains_attribute_certs": False,
    }
    values.update(flags)
    return x509.IssuingDistributionPoint(**values), True  # type: ignore[arg-type]


def test_no_idp_is_everything(pki: Pki, issuing: x509.Certificate) -> None:
    loaded = load_crl(pki.crl_der, issuer=issuing)
    assert loaded.scope == Scope() and not loaded.scope.narrowed
    cover = loaded.scope.coverage(pki.certs["office"])
    assert cover.complete and cover.reasons == ALL_REASONS


def test_narrowed_scopes_are_refused_unless_the_caller_asks_per_certificate(
    crypto_crl: CrlMaker, issuing: x509.Certificate, pki: Pki
) -> None:
    some = frozenset({x509.ReasonFlags.key_compromise})
    for ext in (
        _idp(only_contains_ca_certs=True),
        _idp(only_contains_attribute_certs=True),
        _idp(only_some_reasons=some),
    ):
        data = crypto_crl(extensions=[ext])
        with pytest.raises(Refused, match="limited"):
            load_crl(data, issuer=issuing)
        loaded = load_crl(data, issuer=issuing, any_scope=True)
        assert loaded.scope.narrowed
        assert not loaded.scope.coverage(pki.certs["office"]).complete
    partial = load_crl(
        crypto_crl(extensions=[_idp(only_some_reasons=some)]), issuer=issuing, any_scope=True
    )
    assert partial.scope.coverage(pki.certs["office"]).reasons == {"key_compromise"}


def test_one_kind_of_certificate_at_most(crypto_crl: CrlMaker, issuing: x509.Certificate) -> None:
    both = crypto_crl(extensions=[_raw_idp(b"\x30\x06\x81\x01\xff\x82\x01\xff")])
    with pytest.raises(MalformedInput, match="more than one onlyContains"):
        load_crl(both, issuer=issuing, any_scope=True)


def test_empty_or_broken_idp_is_malformed(crypto_crl: CrlMaker, issuing: x509.Certificate) -> None:
    with pytest.raises(MalformedInput, match="empty issuingDistributionPoint"):
        load_crl(crypto_crl(extensions=[_raw_idp(b"\x30\x00")]), issuer=issuing)
    with pytest.raises(MalformedInput, match="bad issuingDistributionPoint"):
        load_crl(crypto_crl(extensions=[_raw_idp(b"\x30\x03\x81\x01")]), issuer=issuing)
    with pytest.raises(MalformedInput):
        parse_idp(b"\x04\x00", b"\x30\x00")


def test_check_usable_refuses_delta_and_indirect_without_an_issuer(
    crypto_crl: CrlMaker, pki: Pki
) -> None:
    check_usable(pki.crl_der)  # a complete CRL passes
    with pytest.raises(Refused, match="delta CRL on base CRL number 7"):
        check_usable(crypto_crl(extensions=[(x509.DeltaCRLIndicator(7), True)]))
    with pytest.raises(Refused, match="indirect"):
        check_usable(crypto_crl(extensions=[_idp(indirect_crl=True)]))
    with pytest.raises(MalformedInput):
        check_usable(b"not a CRL")
