"""Verdicts: frozen, never ambiguous, and raising the error that matches."""

from __future__ import annotations

import dataclasses

import pytest

from shomei.errors import MalformedInput, Undecided, VerificationFailed
from signer.verdict import Reason, Status, Verdict, from_error, invalid, undecided


def test_valid_verdict() -> None:
    verdict = Verdict(Status.VALID, signer_subject="CN=x")
    assert verdict.ok and verdict.exit_code == 0
    assert verdict.raise_for_status() is verdict
    assert verdict.summary() == "signature valid (CN=x)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.status = Status.INVALID  # type: ignore[misc]


def test_ambiguous_verdicts_are_refused() -> None:
    with pytest.raises(ValueError, match="no reasons"):
        Verdict(Status.VALID, (Reason("x", "x", "x"),))
    with pytest.raises(ValueError, match="at least one"):
        Verdict(Status.INVALID)


def test_failed_verdicts_raise() -> None:
    with pytest.raises(VerificationFailed, match="bad") as err:
        invalid("digest", "bad", "悪い").raise_for_status()
    assert err.value.message_ja == "悪い" and err.value.fields["reason"] == "digest"
    with pytest.raises(Undecided):
        undecided("no_crl", "no CRL", "CRL なし").raise_for_status()
    with pytest.raises(MalformedInput):
        undecided("malformed", "junk", "不正").raise_for_status()


def test_from_error() -> None:
    assert from_error(VerificationFailed("x", reason="revoked")).status is Status.INVALID
    verdict = from_error(MalformedInput("junk", message_ja="不正"))
    assert verdict.status is Status.UNDECIDED and verdict.reasons[0].code == "malformed"
    assert verdict.summary("ja") == "不正" and verdict.exit_code == 2
