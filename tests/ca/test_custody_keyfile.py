"""Tests of ca.custody.keyfile: encrypted PKCS#8 CA keys opened by M-of-N custodian shares."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ca.custody.keyfile import (
    create_key_file,
    key_file_info,
    open_key_file,
    public_key_sha256,
    reshare_key_file,
)
from ca.custody.shares import Share, parse_share, split_secret
from shomei.errors import CustodyError, MalformedInput, NotFound, Refused
from signer.keys import SoftwareKey, verify_signature

KeyFile = tuple[Path, SoftwareKey, list[Share]]
NOW = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def p256_file(tmp_path_factory: pytest.TempPathFactory) -> KeyFile:
    path = tmp_path_factory.mktemp("keys") / "issuing.p8"
    key, shares = create_key_file(path, algorithm="p256", m=2, n=3, key_id="issuing-2026", now=NOW)
    return path, key, shares


def test_any_two_of_three_open_the_key(p256_file: KeyFile) -> None:
    path, created, shares = p256_file
    assert len(shares) == 3
    for pair in itertools.permutations(shares, 2):
        # Through the printed form, as custodians would type them.
        typed = [parse_share(s.encode()) for s in pair]
        key = open_key_file(path, typed)
        assert key.public_key == created.public_key
        data = b"TBS bytes"
        verify_signature(key.public_key, key.sign(data), data)


def test_one_share_is_refused(p256_file: KeyFile) -> None:
    path, _, shares = p256_file
    for share in shares:
        with pytest.raises(CustodyError, match="needs 2 of 3") as info:
            open_key_file(path, [share])
        assert "必要です" in info.value.message_ja


def test_share_given_twice_is_refused(p256_file: KeyFile) -> None:
    path, _, shares = p256_file
    with pytest.raises(CustodyError, match="given twice"):
        open_key_file(path, [shares[2], parse_share(shares[2].encode())])


def test_shares_of_another_key_are_refused(p256_file: KeyFile, tmp_path: Path) -> None:
    path, _, shares = p256_file
    _, other = create_key_file(tmp_path / "other.p8", algorithm="p256", m=2, n=3, key_id="other")
    with pytest.raises(CustodyError, match="shares of key other cannot open key issuing-2026"):
        open_key_file(path, other[:2])
    with pytest.raises(CustodyError, match="shares of key other"):
        open_key_file(path, [shares[0], other[1]])


def test_wrong_reconstruction_is_caught_by_the_commitment(
    p256_file: KeyFile,
) -> None:
    # Shares with the right key id and threshold but of another secret (an earlier split,
    # say) pass every structural check; the commitment must stop them before decryption.
    path, _, _ = p256_file
    stale = split_secret(bytes(16), m=2, n=3, key_id="issuing-2026")
    with pytest.raises(CustodyError, match="do not rebuild the secret") as info:
        open_key_file(path, stale[:2])
    assert "復元できません" in info.value.message_ja


def test_file_is_encrypted_and_private(p256_file: KeyFile) -> None:
    path, _, _ = p256_file
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert b"BEGIN PRIVATE KEY" not in pem and b"BEGIN EC PRIVATE KEY" not in pem
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(pem, password=None)
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(pem, password=b"0" * 32)
    for p in (path, path.with_suffix(".json")):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600


def test_key_file_info(p256_file: KeyFile) -> None:
    path, key, _ = p256_file
    info = key_file_info(path)
    assert (info.key_id, info.algorithm, info.m, info.n) == ("issuing-2026", "p256", 2, 3)
    assert info.created_at == NOW and info.created_at.tzinfo is not None
    assert info.public_key_sha256 == public_key_sha256(key.public_key)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert set(meta) >= {"key_id", "algorithm", "m", "n", "commitment", "created_at"}
    assert len(meta["commitment"]) == 64


def test_key_file_info_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="key metadata not found"):
        key_file_info(tmp_path / "absent.p8")
    bad = tmp_path / "bad.p8"
    bad.with_suffix(".json").write_text('{"format": "shomei-keyfile-1", "surprise": 1}')
    with pytest.raises(MalformedInput, match="unknown fields \\['surprise'\\]"):
        key_file_info(bad)
    bad.with_suffix(".json").write_text("not json")
    with pytest.raises(MalformedInput, match="not JSON"):
        key_file_info(bad)
    with pytest.raises(MalformedInput, match=r"must not end in \.json"):
        key_file_info(tmp_path / "x.json")


def test_create_refuses_to_overwrite(p256_file: KeyFile, tmp_path: Path) -> None:
    path, _, _ = p256_file
    before = path.read_bytes()
    with pytest.raises(Refused, match="already exists"):
        create_key_file(path, algorithm="p256", m=2, n=3)
    assert path.read_bytes() == before
    # A stray metadata file alone also blocks creation, and no key file is left behind.
    lone = tmp_path / "lone.p8"
    lone.with_suffix(".json").write_text("{}")
    with pytest.raises(Refused):
        create_key_file(lone, algorithm="p256", m=2, n=3)
    assert not lone.exists()


def test_create_refuses_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(MalformedInput, match="unsupported key algorithm"):
        create_key_file(tmp_path / "k.p8", algorithm="ed25519", m=2, n=3)  # type: ignore[arg-type]
    with pytest.raises(MalformedInput, match="invalid threshold"):
        create_key_file(tmp_path / "k.p8", algorithm="p256", m=3, n=2)
    with pytest.raises(MalformedInput, match="invalid key id"):
        create_key_file(tmp_path / "k.p8", algorithm="p256", m=2, n=3, key_id="UPPER")
    assert list(tmp_path.iterdir()) == []


def test_rsa_key_file(tmp_path: Path) -> None:
    path = tmp_path / "root.p8"
    key, shares = create_key_file(path, algorithm="rsa2048", m=3, n=5)
    assert isinstance(key.private_key, rsa.RSAPrivateKey)
    info = key_file_info(path)
    assert len(info.key_id) == 16  # a random id was chosen
    opened = open_key_file(path, [shares[4], shares[0], shares[2]])
    verify_signature(key.public_key, opened.sign(b"x"), b"x")


def pem_to_der(pem: bytes) -> bytes:
    return base64.b64decode(b"".join(pem.strip().splitlines()[1:-1]))


def der_to_pem(der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"\n".join([PEM_BEGIN, *lines, PEM_END]) + b"\n"


PEM_BEGIN = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
PEM_END = b"-----END ENCRYPTED PRIVATE KEY-----"


def test_tampered_and_unencrypted_key_files(p256_file: KeyFile, tmp_path: Path) -> None:
    path, _, shares = p256_file
    # The same metadata beside a different encrypted key: the secret is right (commitment
    # passes) but the file does not decrypt.
    copy = tmp_path / "copy.p8"
    copy.with_suffix(".json").write_bytes(path.with_suffix(".json").read_bytes())
    der = bytearray(pem_to_der(path.read_bytes()))
    der[-20] ^= 0x01  # one bit of the ciphertext
    copy.write_bytes(der_to_pem(bytes(der)))
    with pytest.raises(CustodyError, match="cannot be decrypted"):
        open_key_file(copy, shares[:2])
    plain = tmp_path / "plain.p8"
    plain.with_suffix(".json").write_bytes(path.with_suffix(".json").read_bytes())
    plain.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(CustodyError, match="not an encrypted PKCS#8 key file"):
        open_key_file(plain, shares[:2])
    missing = tmp_path / "missing.p8"
    missing.with_suffix(".json").write_bytes(path.with_suffix(".json").read_bytes())
    with pytest.raises(NotFound, match=r"key file not found: .*missing.p8"):
        open_key_file(missing, shares[:2])
    # A folder where the key file should be: one clear refusal, not a traceback.
    folder = tmp_path / "folder.p8"
    folder.mkdir()
    folder.with_suffix(".json").write_bytes(path.with_suffix(".json").read_bytes())
    with pytest.raises(Refused, match=r"the key file .*folder\.p8 is a folder, not a file"):
        open_key_file(folder, shares[:2])


def test_reshare_after_a_custodian_leaves(p256_file: KeyFile, tmp_path: Path) -> None:
    path, key, shares = p256_file
    new_path = tmp_path / "issuing-r1.p8"
    new_shares = reshare_key_file(
        path, new_path, shares[:2], m=2, n=4, key_id="issuing-2026-r1", now=NOW
    )
    assert len(new_shares) == 4 and {s.key_id for s in new_shares} == {"issuing-2026-r1"}
    reopened = open_key_file(new_path, new_shares[2:])
    assert reopened.public_key == key.public_key
    # The old shares do not open the new file, and the new ones do not open the old file.
    with pytest.raises(CustodyError, match="cannot open key"):
        open_key_file(new_path, shares[:2])
    with pytest.raises(CustodyError, match="cannot open key"):
        open_key_file(path, new_shares[:2])
    with pytest.raises(Refused, match="new key id"):
        reshare_key_file(path, tmp_path / "again.p8", shares[:2], m=2, n=3, key_id="issuing-2026")
    with pytest.raises(Refused, match="already exists"):
        reshare_key_file(path, new_path, shares[:2], m=2, n=3, key_id="issuing-2026-r2")
