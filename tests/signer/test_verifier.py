"""The claim verifier: every check of the issue, each with the verdict a person can act on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from shomei.errors import MalformedInput, Undecided, VerificationFailed
from signer import cms
from signer.claims import sign_claim, sign_file
from signer.verdict import Status
from signer.verifier import Verifier, load_verifier
from tests.pki import NOW, Pki
from tests.signer.conftest import CLAIM, credentials, make_crl

MakeVerifier = Callable[..., Verifier]


def _sig(pki: Pki, name: str, content: bytes = CLAIM, when: dt.datetime = NOW) -> bytes:
    return sign_claim(content, credentials=credentials(pki, name), signing_time=when)


@pytest.mark.parametrize("name", ["office", "office_ec"])
def test_valid_claim(pki: Pki, make_verifier: MakeVerifier, name: str) -> None:
    verdict = make_verifier().verify(CLAIM, _sig(pki, name))
    assert verdict.status is Status.VALID, verdict.reasons
    assert verdict.signer_serial == pki.certs[name].serial_number
    assert verdict.signing_time == NOW
    assert verdict.raise_for_status() is verdict
    assert verdict.exit_code == 0


def test_one_byte_changed_is_invalid(pki: Pki, make_verifier: MakeVerifier) -> None:
    tampered = bytearray(CLAIM)
    tampered[100] ^= 1
    verdict = make_verifier().verify(bytes(tampered), _sig(pki, "office"))
    assert verdict.status is Status.INVALID
    assert verdict.reasons[0].code == "digest"
    assert "does not match" in verdict.summary()
    with pytest.raises(VerificationFailed) as err:
        verdict.raise_for_status()
    assert "一致しません" in err.value.message_ja


def test_signature_over_another_file(pki: Pki, make_verifier: MakeVerifier) -> None:
    other = _sig(pki, "office", content=b"another claim")
    verdict = make_verifier().verify(CLAIM, other)
    assert verdict.status is Status.INVALID and verdict.reasons[0].code == "digest"


def test_revoked_signer(pki: Pki, make_verifier: MakeVerifier) -> None:
    verdict = make_verifier().verify(CLAIM, _sig(pki, "revoked"))
    assert verdict.status is Status.INVALID
    assert verdict.reasons[0].code == "revoked"
    assert "revoked" in verdict.summary() and "keyCompromise" in verdict.summary()
    assert "失効" in verdict.summary("ja")


def test_revoked_even_when_crl_is_stale(pki: Pki, make_verifier: MakeVerifier) -> None:
    # A revocation stays a revocation; only "not listed" needs a current CRL.
    verifier = make_verifier(now=NOW + dt.timedelta(days=30))
    verdict = verifier.verify(CLAIM, _sig(pki, "revoked"))
    assert verdict.reasons[0].code == "revoked"


def test_expired_crl_is_not_valid(pki: Pki, make_verifier: MakeVerifier) -> None:
    stale = make_crl(
        pki,
        this_update=NOW - dt.timedelta(days=10),
        next_update=NOW - dt.timedelta(days=3),
    )
    verdict = make_verifier([stale]).verify(CLAIM, _sig(pki, "office"))
    assert verdict.status is Status.UNDECIDED
    assert verdict.reasons[0].code == "stale_crl"
    assert "latest CRL" in verdict.summary()
    with pytest.raises(Undecided):
        verdict.raise_for_status()
    assert verdict.exit_code == 2


def test_crl_that_goes_stale_while_the_verifier_runs(pki: Pki) -> None:
    clock = [NOW]
    verifier = Verifier(
        trust_anchors=[pki.certs["root"]], crls=[pki.crl_der], clock=lambda: clock[0]
    )
    sig = _sig(pki, "office")
    assert verifier.verify(CLAIM, sig).ok
    clock[0] = NOW + dt.timedelta(days=8)  # past the CRL's nextUpdate; the chain is cached
    assert verifier.verify(CLAIM, sig).reasons[0].code == "stale_crl"


def test_missing_crl_is_not_valid(pki: Pki, make_verifier: MakeVerifier) -> None:
    verdict = make_verifier([]).verify(CLAIM, _sig(pki, "office"))
    assert verdict.status is Status.UNDECIDED
    assert verdict.reasons[0].code == "no_crl"
    assert "Shomei Test Issuing CA" in verdict.summary()


def test_crl_of_another_issuer(pki: Pki, make_verifier: MakeVerifier) -> None:
    verdict = make_verifier([make_crl(pki, issuer="stranger")]).verify(CLAIM, _sig(pki, "office"))
    assert verdict.status is Status.UNDECIDED and verdict.reasons[0].code == "no_crl"
    assert "Stranger CA" in verdict.summary()  # names the CRL that was given instead


def test_forged_crl_is_not_used(pki: Pki, make_verifier: MakeVerifier) -> None:
    forged = make_crl(pki, key_of="stranger")  # the issuing CA's name, another key
    verdict = make_verifier([forged]).verify(CLAIM, _sig(pki, "office"))
    assert verdict.status is Status.UNDECIDED and verdict.reasons[0].code == "bad_crl"


def test_newest_crl_wins(pki: Pki, make_verifier: MakeVerifier) -> None:
    older = make_crl(pki, number=5)
    newer = make_crl(pki, number=6, revoked=["office"])
    verdict = make_verifier([newer, older]).verify(CLAIM, _sig(pki, "office"))
    assert verdict.reasons[0].code == "revoked"


def test_garbage_crl_is_refused(pki: Pki, make_verifier: MakeVerifier) -> None:
    with pytest.raises(MalformedInput, match="not a readable CRL"):
        make_verifier([b"not a crl"])


def test_untrusted_chain(pki: Pki, make_verifier: MakeVerifier) -> None:
    verdict = make_verifier().verify(CLAIM, _sig(pki, "stranger_office"))
    assert verdict.status is Status.INVALID and verdict.reasons[0].code == "untrusted"
    assert "信頼" in verdict.summary("ja")


def test_expired_signer_certificate(pki: Pki, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier()
    verdict = verifier.verify(CLAIM, _sig(pki, "expired"))
    assert verdict.status is Status.INVALID and verdict.reasons[0].code == "expired"
    assert "renew" in verdict.summary() and "更新" in verdict.summary("ja")
    # The path was validated once (at the end of the signer's validity) and is cached: a
    # second claim is decided by the validity window alone, with the same verdict.
    assert pki.certs["expired"].public_bytes(Encoding.DER) in verifier._signers
    assert verifier.verify(CLAIM, _sig(pki, "expired")).reasons[0].code == "expired"


def test_signed_before_the_certificate_was_valid(pki: Pki, make_verifier: MakeVerifier) -> None:
    verdict = make_verifier().verify(CLAIM, _sig(pki, "office", when=NOW - dt.timedelta(days=3)))
    assert verdict.status is Status.INVALID and verdict.reasons[0].code == "not_yet_valid"


def test_signed_while_valid_but_expired_since(pki: Pki, make_verifier: MakeVerifier) -> None:
    # Within the validity of the expired office and of its CAs (made 30 days ago).
    sig = _sig(pki, "expired", when=NOW - dt.timedelta(days=20))
    verdict = make_verifier().verify(CLAIM, sig)
    assert verdict.status is Status.UNDECIDED and verdict.reasons[0].code == "expired_since"


def test_signing_time_in_the_future(pki: Pki, make_verifier: MakeVerifier) -> None:
    sig = _sig(pki, "office", when=NOW + dt.timedelta(days=1))
    verdict = make_verifier().verify(CLAIM, sig)
    assert verdict.status is Status.INVALID and verdict.reasons[0].code == "future"


def test_key_usage_without_signing(pki: Pki, make_verifier: MakeVerifier) -> None:
    # The issuing CA's key usage is keyCertSign/cRLSign only: not for claims.  Its CRL comes
    # from the root, which the test PKI does not issue, so give one.
    root_crl = make_crl(pki, issuer="root")
    verdict = make_verifier([pki.crl_der, root_crl]).verify(CLAIM, _sig(pki, "issuing"))
    assert verdict.status is Status.INVALID and verdict.reasons[0].code == "key_usage"


def test_garbage_and_truncated_signatures(pki: Pki, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier()
    sig = _sig(pki, "office")
    for bad in (b"", b"garbage", sig[: len(sig) // 2], sig + b"\x00"):
        verdict = verifier.verify(CLAIM, bad)
        assert verdict.status is Status.UNDECIDED, bad[:10]
        assert verdict.reasons[0].code == "malformed"
        with pytest.raises(MalformedInput):
            verdict.raise_for_status()


def test_generic_path_gives_the_same_verdicts(pki: Pki, make_verifier: MakeVerifier) -> None:
    # A PEM signature does not take the fast path; it must be judged the same.
    import base64

    sig = _sig(pki, "office")
    pem = b"-----BEGIN CMS-----\n" + base64.encodebytes(sig) + b"-----END CMS-----\n"
    verifier = make_verifier()
    assert verifier.verify(CLAIM, pem).ok
    assert verifier.verify(CLAIM + b"x", pem).reasons[0].code == "digest"
    revoked = base64.encodebytes(_sig(pki, "revoked"))
    pem_revoked = b"-----BEGIN CMS-----\n" + revoked + b"-----END CMS-----\n"
    assert verifier.verify(CLAIM, pem_revoked).reasons[0].code == "revoked"


def test_attached_signature_is_checked_against_the_file(
    pki: Pki, make_verifier: MakeVerifier
) -> None:
    attached = cms.sign(
        CLAIM,
        key=credentials(pki, "office").key,
        certificate=pki.certs["office"],
        chain=[pki.certs["issuing"]],
        detached=False,
        signing_time=NOW,
    )
    verifier = make_verifier()
    assert verifier.verify(CLAIM, attached).ok
    assert verifier.verify(b"other", attached).status is Status.INVALID


def test_verify_files(pki: Pki, make_verifier: MakeVerifier, tmp_path: Path) -> None:
    claim = tmp_path / "claim.csv"
    claim.write_bytes(CLAIM)
    out = sign_file(claim, credentials=credentials(pki, "office"), signing_time=NOW)
    assert out == tmp_path / "claim.csv.p7s"
    verifier = make_verifier()
    assert verifier.verify_files(claim).ok
    missing = verifier.verify_files(tmp_path / "nope.csv")
    assert missing.status is Status.UNDECIDED and "not found" in missing.summary()


def test_verifier_needs_a_trust_anchor() -> None:
    with pytest.raises(MalformedInput, match="trust anchor"):
        Verifier(trust_anchors=[])


def test_load_verifier_from_files(pki: Pki) -> None:
    verifier = load_verifier(trust=[pki.cert_pem("root")], crls=[pki.crl_der], clock=lambda: NOW)
    assert verifier.verify(CLAIM, _sig(pki, "office")).ok
    with pytest.raises(MalformedInput, match="certificate"):
        load_verifier(trust=[b"junk"])


def test_intermediate_from_untrusted_when_not_attached(pki: Pki) -> None:
    bare = credentials(pki, "office")
    bare = type(bare)(bare.key, bare.certificate, (), bare.private_key)  # no chain attached
    sig = sign_claim(CLAIM, credentials=bare, signing_time=NOW)
    without = Verifier(trust_anchors=[pki.certs["root"]], crls=[pki.crl_der], clock=lambda: NOW)
    assert without.verify(CLAIM, sig).reasons[0].code == "untrusted"
    with_files = load_verifier(
        trust=[pki.cert_pem("root")],
        crls=[pki.crl_der],
        untrusted=[pki.cert_pem("issuing")],
        clock=lambda: NOW,
    )
    assert with_files.verify(CLAIM, sig).ok


def test_issuing_ca_as_the_trust_anchor(pki: Pki, make_verifier: MakeVerifier) -> None:
    verdict = make_verifier(anchors=("issuing",)).verify(CLAIM, _sig(pki, "office"))
    assert verdict.ok, verdict.reasons


def test_add_crl_drops_cached_decisions(pki: Pki, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier()
    sig = _sig(pki, "office")
    assert verifier.verify(CLAIM, sig).ok
    verifier.add_crl(make_crl(pki, number=9, revoked=["office"]))
    assert verifier.verify(CLAIM, sig).reasons[0].code == "revoked"
    with pytest.raises(MalformedInput):
        verifier.add_crl(b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")


def test_long_running_verifier_moves_its_validation_time(pki: Pki) -> None:
    clock = [NOW]
    verifier = Verifier(
        trust_anchors=[pki.certs["root"]], crls=[pki.crl_der], clock=lambda: clock[0]
    )
    assert verifier.verify(CLAIM, _sig(pki, "office")).ok
    clock[0] = NOW + dt.timedelta(hours=3)  # a new shared validation time is taken
    later = _sig(pki, "office_ec", when=NOW + dt.timedelta(hours=2))
    assert verifier.verify(CLAIM, later).ok
    assert verifier._moment == NOW + dt.timedelta(hours=3)
