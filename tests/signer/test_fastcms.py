"""The fast detached-CMS check: same findings as the generic path, and it knows its limits."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from asn1crypto import cms as acms

from shomei.errors import MalformedInput, VerificationFailed
from signer import cms, fastcms
from signer.claims import sign_claim
from signer.verdict import Verdict
from signer.verifier import Verifier
from tests.pki import NOW, Pki
from tests.signer.conftest import CLAIM, credentials

DIGEST = hashlib.sha256(CLAIM).digest()


@pytest.mark.parametrize("name", ["office", "office_ec"])
def test_agrees_with_the_generic_path(pki: Pki, name: str) -> None:
    sig = sign_claim(CLAIM, credentials=credentials(pki, name), signing_time=NOW)
    fast = fastcms.check(sig, DIGEST, {})
    slow = cms.verify(sig, content=CLAIM)
    assert fast.signer.certificate == slow.signer
    assert fast.signing_time == slow.signing_time == NOW
    assert len(fast.certificates) == len(slow.certificates) == 2


def test_certificate_cache_is_used(pki: Pki) -> None:
    sig = sign_claim(CLAIM, credentials=credentials(pki, "office"), signing_time=NOW)
    cache: dict[bytes, fastcms.CertInfo] = {}
    first = fastcms.check(sig, DIGEST, cache)
    assert len(cache) >= 1
    assert fastcms.check(sig, DIGEST, cache).signer is first.signer


def test_generalized_time_after_2049(pki: Pki) -> None:
    # Built by hand: signer.cms.sign names the choice "general_time", which asn1crypto lacks.
    when = dt.datetime(2051, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

    def later(attrs: list[acms.CMSAttribute]) -> None:
        for i, attr in enumerate(attrs):
            if attr["type"].native == "signing_time":
                time = acms.Time(name="generalized_time", value=when)
                attrs[i] = acms.CMSAttribute({"type": "signing_time", "values": [time]})

    assert fastcms.check(_resigned(pki, later), DIGEST, {}).signing_time == when


def test_wrong_digest(pki: Pki) -> None:
    sig = sign_claim(CLAIM, credentials=credentials(pki, "office"), signing_time=NOW)
    with pytest.raises(VerificationFailed, match="digest differs") as err:
        fastcms.check(sig, hashlib.sha256(b"other").digest(), {})
    assert err.value.fields["reason"] == "digest"


def test_altered_signature_value(pki: Pki) -> None:
    sig = bytearray(sign_claim(CLAIM, credentials=credentials(pki, "office"), signing_time=NOW))
    sig[-10] ^= 1  # the RSA signature is the last element
    with pytest.raises(VerificationFailed, match="does not match the signer's key"):
        fastcms.check(bytes(sig), DIGEST, {})


def _resigned(pki: Pki, mutate: object) -> bytes:
    """Our signature with its signed attributes changed by ``mutate`` and signed again."""
    info = acms.ContentInfo.load(
        sign_claim(CLAIM, credentials=credentials(pki, "office"), signing_time=NOW)
    )
    si = info["content"]["signer_infos"][0]
    attrs = list(si["signed_attrs"])
    mutate(attrs)  # type: ignore[operator]
    signed = acms.CMSAttributes(attrs)
    # The signature covers the SET OF encoding (tag 0x31), not the [0] IMPLICIT one.
    si["signature"] = credentials(pki, "office").key.sign(signed.dump())
    si["signed_attrs"] = signed
    return info.dump(force=True)


def test_signing_certificate_v2_naming_another_certificate(pki: Pki) -> None:
    def swap_hash(attrs: list[acms.CMSAttribute]) -> None:
        for attr in attrs:
            if attr["type"].native == "signing_certificate_v2":
                ess = attr["values"][0]["certs"][0]
                ess["cert_hash"] = hashlib.sha256(b"another certificate").digest()

    sig = _resigned(pki, swap_hash)
    with pytest.raises(VerificationFailed, match="signing-certificate-v2"):
        fastcms.check(sig, DIGEST, {})


def test_unusual_shapes_take_the_generic_path(pki: Pki) -> None:
    def repeat_digest(attrs: list[acms.CMSAttribute]) -> None:
        attrs.append(next(a for a in attrs if a["type"].native == "message_digest"))

    for bad in (b"", b"\x30\x80\x00\x00", b"garbage", _resigned(pki, repeat_digest)):
        with pytest.raises(fastcms.NotFast):
            fastcms.check(bad, DIGEST, {})


def test_mutations_never_crash_and_fast_agrees_with_generic(pki: Pki) -> None:
    """Differential check: the two paths never disagree about the cryptography.

    The fast path does not parse what no check depends on (the digestAlgorithms set, string
    types inside attached certificates), where asn1crypto is strict; so the generic path may
    call such a mutation malformed, but it must never find a digest or signature bad that the
    fast path accepted.  The verifier as a whole never raises.
    """
    import random

    sig = sign_claim(CLAIM, credentials=credentials(pki, "office"), signing_time=NOW)
    rng = random.Random(5652)
    cache: dict[bytes, fastcms.CertInfo] = {}
    verifier = Verifier(trust_anchors=[pki.certs["root"]], crls=[pki.crl_der], clock=lambda: NOW)
    accepted = 0
    for _ in range(400):
        mutated = bytearray(sig)
        mutated[rng.randrange(len(sig))] ^= 1 << rng.randrange(8)
        assert isinstance(verifier.verify(CLAIM, bytes(mutated)), Verdict)
        try:
            fast = fastcms.check(bytes(mutated), DIGEST, cache)
        except (fastcms.NotFast, VerificationFailed):
            continue
        accepted += 1
        try:
            slow = cms.verify(bytes(mutated), content=CLAIM)
        except VerificationFailed as exc:
            pytest.fail(f"fast path accepted what the generic path finds bad: {exc}")
        except MalformedInput:
            continue
        assert slow.signer == fast.signer.certificate
    assert accepted < 400  # most flips break the signature or the structure
