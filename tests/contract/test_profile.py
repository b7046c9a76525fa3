"""contract.profile: strict loading of certificate profiles."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

from contract.profile import Profile, key_type_name, load_profile, load_profiles
from shomei.errors import ConfigError, NotFound

CONF = Path(__file__).resolve().parents[2] / "conf" / "profiles"
OFFICE = (CONF / "office.toml").read_text(encoding="utf-8")


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_office_profile() -> None:
    profile = load_profile(CONF / "office.toml")
    assert profile.name == "office"
    assert profile.key_types == ("rsa2048", "rsa3072", "p256")
    assert profile.default_key_type == "rsa2048"
    assert profile.signature_hash == "sha256"
    assert profile.validity == dt.timedelta(days=1095)
    ext = profile.extensions
    assert ext.key_usage == ("digitalSignature", "nonRepudiation")
    assert ext.key_usage_critical is True
    assert [o.dotted_string for o in ext.eku_oids()] == ["1.3.6.1.5.5.7.3.36", "1.3.6.1.5.5.7.3.2"]
    assert ext.extended_key_usage_critical is False
    assert ext.crl_distribution_point.startswith("http://")
    assert ext.ca_issuers.startswith("http://")
    assert len(ext.policies) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.validity = dt.timedelta(days=1)  # type: ignore[misc]


def test_load_profiles_folder() -> None:
    profiles = load_profiles(CONF)
    assert "office" in profiles
    assert all(isinstance(p, Profile) and p.name == n for n, p in profiles.items())


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "office", OFFICE + '\nvalidty = "30d"\n')
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert "validty" in info.value.message
    assert "不明なキー" in info.value.message_ja


def test_unknown_extension_key_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "office", OFFICE.replace("[extensions]", "[extensions]\nocsp = 'x'"))
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert "extensions.ocsp" in info.value.message


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('default_key_type = "rsa2048"', 'default_key_type = "rsa4096"', "default_key_type"),
        ('key_types = ["rsa2048", "rsa3072", "p256"]', 'key_types = ["rsa1024"]', "key_types"),
        ('key_types = ["rsa2048", "rsa3072", "p256"]', "key_types = []", "key_types"),
        ('federation = "証明連合会"', f'federation = "{"連" * 65}"', "federation"),
        ('federation = "証明連合会"', 'federation = " 連合会"', "federation"),
        ('signature_hash = "sha256"', 'signature_hash = "sha1"', "signature_hash"),
        ('validity = "1095d"', 'validity = "12h"', "validity"),
        ('name = "office"', 'name = "Office!"', "name"),
        ('name = "office"', 'name = "office\\n"', "name"),
        (
            'policies = ["1.3.6.1.4.1.32473.1.1"]',
            'policies = ["2.25.329800735698586629295641978511506172918"]',
            "policies",
        ),
        ('policies = ["1.3.6.1.4.1.32473.1.1"]', 'policies = ["not.an.oid"]', "policies"),
        ('"documentSigning", "clientAuth"]', '"documentSigning", "clientAuht"]', "extended_key"),
        ('key_usage = ["digitalSignature"', 'key_usage = ["digitalSignatur"', "key_usage"),
        ("key_usage_critical = true", 'key_usage_critical = "yes"', "key_usage_critical"),
    ],
)
def test_bad_values_are_config_errors(tmp_path: Path, old: str, new: str, key: str) -> None:
    assert old in OFFICE
    path = _write(tmp_path, "office", OFFICE.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert key in info.value.message
    assert str(path) in info.value.message
    assert info.value.message_ja != info.value.message


def test_name_must_match_file(tmp_path: Path) -> None:
    _write(tmp_path, "other", OFFICE)
    with pytest.raises(ConfigError) as info:
        load_profiles(tmp_path)
    assert "other" in info.value.message


def test_missing_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_profiles(tmp_path / "absent")
    with pytest.raises(ConfigError):
        load_profiles(tmp_path)
    with pytest.raises(ConfigError):
        load_profile(tmp_path / "absent.toml")


def test_key_type_names() -> None:
    assert key_type_name(rsa.generate_private_key(65537, 2048).public_key()) == "rsa2048"
    assert key_type_name(rsa.generate_private_key(3, 2048).public_key()) is None
    assert key_type_name(ec.generate_private_key(ec.SECP256R1()).public_key()) == "p256"
    assert key_type_name(ec.generate_private_key(ec.SECP384R1()).public_key()) == "p384"
    assert key_type_name(ec.generate_private_key(ec.SECP256K1()).public_key()) is None
    assert key_type_name(ed25519.Ed25519PrivateKey.generate().public_key()) is None
    assert key_type_name(dsa.generate_private_key(2048).public_key()) is None


def test_allows() -> None:
    profile = load_profile(CONF / "office.toml")
    assert profile.allows("p256") and profile.allows("rsa3072")
    assert not profile.allows("p384") and not profile.allows(None)
