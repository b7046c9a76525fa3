"""Office keys: scrypt-wrapped PKCS#8 that openssl reads, and the checks on an office's CSR."""

from __future__ import annotations

import dataclasses
import random
import subprocess
from pathlib import Path

import pytest
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from contract.profile import Profile, load_profiles
from ra.crypto import keys
from ra.people.passwords import WrongPassword
from shomei.errors import MalformedInput

REPO = Path(__file__).resolve().parents[3]
PASSWORD = "ABCD-EFGH-JKMN"


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profiles(REPO / "conf" / "profiles")["office"]


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_generate_key_follows_the_profile(profile: Profile) -> None:
    key = keys.generate_key(profile)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    ec_profile = dataclasses.replace(profile, default_key_type="p256")
    ec_key = keys.generate_key(ec_profile)
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey) and ec_key.curve.name == "secp256r1"


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_wrap_unwrap_and_openssl_reads_it(
    kind: str, rsa_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    key = rsa_key if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    wrapped = keys.wrap_key(key, PASSWORD, rng=random.Random(1).randbytes)
    plain = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert plain not in wrapped
    back = keys.unwrap_key(wrapped, PASSWORD)
    assert (
        back.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        == plain
    )
    path = tmp_path / "key.p8"
    path.write_bytes(wrapped)
    parsed = subprocess.run(
        ["openssl", "asn1parse", "-inform", "DER", "-in", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ":PBES2" in parsed and ":scrypt" in parsed and ":aes-256-cbc" in parsed
    out = subprocess.run(
        [
            "openssl",
            "pkcs8",
            "-inform",
            "DER",
            "-in",
            str(path),
            "-passin",
            f"pass:{PASSWORD}",
            "-outform",
            "DER",
            "-nocrypt",
            "-topk8",
        ],
        capture_output=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert serialization.load_der_private_key(out.stdout, None).public_key() == key.public_key()
    wrong = subprocess.run(
        ["openssl", "pkcs8", "-inform", "DER", "-in", str(path), "-passin", "pass:nope"],
        capture_output=True,
        check=False,
    )
    assert wrong.returncode != 0


def test_wrapping_is_salted(rsa_key: rsa.RSAPrivateKey) -> None:
    rng = random.Random(2).randbytes
    assert keys.wrap_key(rsa_key, PASSWORD, rng=rng) != keys.wrap_key(rsa_key, PASSWORD, rng=rng)


def test_wrong_password_and_malformed_blobs(rsa_key: rsa.RSAPrivateKey) -> None:
    wrapped = keys.wrap_key(rsa_key, PASSWORD)
    with pytest.raises(WrongPassword) as info:
        keys.unwrap_key(wrapped, "ABCD-EFGH-JKMP")
    assert info.value.message_ja
    with pytest.raises(MalformedInput):
        keys.unwrap_key(b"\x30\x03\x02\x01\x00", PASSWORD)
    with pytest.raises(MalformedInput):
        keys.unwrap_key(b"garbage", PASSWORD)
    # A PBKDF2-encrypted PKCS#8 is well-formed but not what the RA writes: refused as such.
    pbkdf2 = rsa_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSWORD.encode()),
    )
    with pytest.raises(MalformedInput):
        keys.unwrap_key(pbkdf2, PASSWORD)
    # A stored blob asking for an absurd scrypt cost is refused before any work is done.
    info = keys._EncryptedPrivateKeyInfo.load(wrapped)
    params = keys._Pbes2Params.load(info["encryption_algorithm"]["parameters"].dump())
    scrypt = keys._ScryptParams.load(params["key_derivation_func"]["parameters"].dump())
    scrypt["cost_parameter"] = 1 << 30
    params["key_derivation_func"]["parameters"] = core.Any.load(scrypt.dump(force=True))
    info["encryption_algorithm"]["parameters"] = core.Any.load(params.dump(force=True))
    greedy = info.dump(force=True)
    assert greedy != wrapped
    with pytest.raises(MalformedInput):
        keys.unwrap_key(greedy, PASSWORD)


def _csr(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return keys.make_csr(key, office_number="1310000001", office_name="テスト事業所")


def test_check_csr_accepts_allowed_keys_in_pem_or_der(
    profile: Profile, rsa_key: rsa.RSAPrivateKey
) -> None:
    der = _csr(rsa_key)
    assert keys.check_csr(der, profile) == der
    pem = x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM)
    assert keys.check_csr(b"\n" + pem, profile) == der
    p256 = _csr(ec.generate_private_key(ec.SECP256R1()))
    assert keys.check_csr(p256, profile) == p256


def test_check_csr_refuses_bad_requests(profile: Profile, rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(MalformedInput, match="readable"):
        keys.check_csr(b"not a csr", profile)
    with pytest.raises(MalformedInput, match="larger than"):
        keys.check_csr(_csr(rsa_key) + b"\0" * keys.MAX_CSR_BYTES, profile)
    tampered = bytearray(_csr(rsa_key))
    tampered[-3] ^= 0x01
    with pytest.raises(MalformedInput, match="self-signature"):
        keys.check_csr(bytes(tampered), profile)
    with pytest.raises(MalformedInput, match="not allowed") as info:
        keys.check_csr(_csr(ec.generate_private_key(ec.SECP384R1())), profile)
    assert info.value.fields["key_type"] == "p384"
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - weak on purpose
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak")]))
        .sign(weak, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    with pytest.raises(MalformedInput, match="not allowed"):
        keys.check_csr(csr, profile)
