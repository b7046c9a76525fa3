"""Tests of ca.custody.open_ca_key: one entry point for file keys and PKCS#11 keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from ca.custody import create_key_file, open_ca_key
from ca.settings import KeyRef
from shomei.errors import CustodyError
from signer.keys import SigningKey, verify_signature
from signer.pkcs11 import Pkcs11Key, generate_pkcs11_key
from tests import softhsm as _softhsm
from tests.softhsm import SoftHsmToken

# Fixtures of tests.softhsm, bound here so pytest finds them.
softhsm = _softhsm.softhsm
softhsm_token = _softhsm.softhsm_token


def test_file_key_opens_with_shares(tmp_path: Path) -> None:
    path = tmp_path / "issuing.p8"
    created, shares = create_key_file(path, algorithm="p256", m=2, n=3, key_id="issuing")
    key = open_ca_key(KeyRef(backend="file", path=path), shares=shares[1:])
    assert isinstance(key, SigningKey)
    verify_signature(created.public_key, key.sign(b"crl"), b"crl")


def test_file_key_needs_shares_not_a_pin(tmp_path: Path) -> None:
    path = tmp_path / "issuing.p8"
    _, shares = create_key_file(path, algorithm="p256", m=2, n=3, key_id="issuing")
    ref = KeyRef(backend="file", path=path)
    with pytest.raises(CustodyError, match="shares are needed") as info:
        open_ca_key(ref)
    assert "分割鍵が必要" in info.value.message_ja
    with pytest.raises(CustodyError, match="not with a PIN"):
        open_ca_key(ref, shares=shares, pin="1234")
    with pytest.raises(CustodyError, match="needs 2 of 3"):
        open_ca_key(ref, shares=shares[:1])


def test_pkcs11_key_needs_a_pin_not_shares(tmp_path: Path) -> None:
    ref = KeyRef(backend="pkcs11", module=tmp_path / "lib.so", token_label="t", key_label="issuing")
    with pytest.raises(CustodyError, match="PIN is needed"):
        open_ca_key(ref)
    _, shares = create_key_file(tmp_path / "k.p8", algorithm="p256", m=1, n=1)
    with pytest.raises(CustodyError, match="not with shares"):
        open_ca_key(ref, shares=shares, pin="1234")


@pytest.mark.softhsm
def test_pkcs11_key_opens_with_pin(softhsm_token: SoftHsmToken) -> None:
    generate_pkcs11_key(
        module=softhsm_token.module,
        token_label=softhsm_token.label,
        key_label="issuing",
        pin=softhsm_token.pin,
        algorithm="p256",
    ).close()
    ref = KeyRef(
        backend="pkcs11",
        module=softhsm_token.module,
        token_label=softhsm_token.label,
        key_label="issuing",
    )
    key = open_ca_key(ref, pin=softhsm_token.pin)
    try:
        assert isinstance(key, Pkcs11Key)
        verify_signature(key.public_key, key.sign(b"batch"), b"batch")
    finally:
        key.close()
    with pytest.raises(CustodyError, match="wrong PIN"):
        open_ca_key(ref, pin="not-the-pin")
