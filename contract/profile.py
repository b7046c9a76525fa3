"""Certificate profiles: what an office certificate contains (RFC 5280 §4.1, §4.2).

A profile is one TOML file in ``conf/profiles/`` (copied into the CA home's ``profiles/``),
loaded strictly through :func:`shomei.config.load` into the frozen :class:`Profile`.  A key
the dataclass does not declare is a :class:`shomei.errors.ConfigError` that names it.
It is part of the RA↔CA contract: the CA issues under its copy (the CA home's ``profiles/``)
and the RA checks applications and CSRs against its own (``ra.profile_files``).

The profile decides everything in the certificate that is not the office's own data: the key
types it accepts, the signature hash, the validity, the federation's name (O), key usage,
extended key usage, the CRL distribution point, the AIA caIssuers URL and the certificate
policy.  The subject layout itself is fixed by the product (C=JP, O=federation, OU=office
number, CN=office name) and is built by :mod:`ca.issue`.

Loading checks the structure (names, OIDs, key types, the RFC 5280 Appendix A upper bound of
64 characters on O).  Whether a certificate built from the profile obeys RFC 5280 as a whole
(key usage that suits an end entity and its key type, a non-empty EKU, URI syntax) is judged
by pkilint on every certificate before it is signed (:mod:`ca.lint`), so a bad profile
change is refused at issuance and never reaches the real CA key.  ``docs/certificate-profile.md``
describes each field.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shomei import config
from shomei.errors import ConfigError, NotFound

KeyTypeName = Literal["rsa2048", "rsa3072", "rsa4096", "p256", "p384"]
KeyUsageName = Literal[
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
]

# Friendly names accepted in ``extended_key_usage`` besides dotted OIDs.
EKU_NAMES: dict[str, str] = {
    "documentSigning": "1.3.6.1.5.5.7.3.36",  # RFC 9336
    "clientAuth": "1.3.6.1.5.5.7.3.2",  # RFC 5280 §4.2.1.12
    "emailProtection": "1.3.6.1.5.5.7.3.4",
    "codeSigning": "1.3.6.1.5.5.7.3.3",
    "serverAuth": "1.3.6.1.5.5.7.3.1",
}

# ub-organization-name and ub-common-name in RFC 5280 Appendix A.1.
UB_NAME = 64
# Many X.509 decoders keep each OID arc in 32 bits (pkilint's DER decoder, Mozilla's
# convention, OpenSSL's text conversion after CVE-2023-2650).  A 2.25.<UUID> OID (X.667) has a
# 128-bit arc: certificates carrying it fail pkilint and other parsers, so it is refused here.
MAX_OID_ARC = (1 << 32) - 1

_PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")


def _bad(key: str, problem: str, problem_ja: str) -> ConfigError:
    return ConfigError(
        f"profile: {key}: {problem}", message_ja=f"プロファイル: {key}: {problem_ja}", key=key
    )


def _check_oid(key: str, value: str) -> None:
    if not _OID.fullmatch(value):
        raise _bad(key, f"{value!r} is not a dotted OID", f"{value!r} は OID ではありません")
    arcs = [int(a) for a in value.split(".")]
    if arcs[0] < 2 and arcs[1] > 39:
        raise _bad(key, f"{value!r} is not a valid OID", f"{value!r} は正しい OID ではありません")
    if any(a > MAX_OID_ARC for a in arcs):
        raise _bad(
            key,
            f"{value!r} has an arc above 2^32-1, which many X.509 decoders (and pkilint) reject; "
            "use an OID under an arc registered for the federation",
            f"{value!r} には 2^32-1 を超える数字があり、多くの X.509 実装(pkilint を含む)が"
            "読めません。連合会の登録済み OID を使ってください",
        )


def _check_text(key: str, value: str, limit: int) -> None:
    if not value.strip() or value != value.strip():
        raise _bad(key, "must not be empty or start/end with spaces", "空や前後の空白は使えません")
    if len(value) > limit:
        raise _bad(
            key,
            f"is {len(value)} characters; RFC 5280 allows at most {limit}",
            f"{len(value)} 文字あります。RFC 5280 の上限は {limit} 文字です",
        )
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
        raise _bad(key, "contains control characters", "制御文字が含まれています")


@dataclass(frozen=True)
class Extensions:
    """The extensions of an office certificate (RFC 5280 §4.2)."""

    # §4.2.1.13: where relying parties fetch the CRL (an http URL).
    crl_distribution_point: str
    # §4.2.2.1: where the issuing CA certificate can be downloaded (an http URL).
    ca_issuers: str
    # §4.2.1.4: the federation's certificate policy OIDs.
    policies: tuple[str, ...]
    # §4.2.1.3: what the key may do; critical, as §4.2.1.3 recommends.
    key_usage: tuple[KeyUsageName, ...] = ("digitalSignature", "nonRepudiation")
    key_usage_critical: bool = True
    # §4.2.1.12: document signing (RFC 9336) and TLS client authentication (the portal).
    extended_key_usage: tuple[str, ...] = ("documentSigning", "clientAuth")
    extended_key_usage_critical: bool = False

    def __post_init__(self) -> None:
        for i, eku in enumerate(self.extended_key_usage):
            if eku not in EKU_NAMES:
                _check_oid(f"extensions.extended_key_usage[{i}]", eku)
        for i, oid in enumerate(self.policies):
            _check_oid(f"extensions.policies[{i}]", oid)
        if len(set(self.key_usage)) != len(self.key_usage):
            raise _bad("extensions.key_usage", "repeats a value", "同じ値が重複しています")
        for key, url in (
            ("extensions.crl_distribution_point", self.crl_distribution_point),
            ("extensions.ca_issuers", self.ca_issuers),
        ):
            if not url:
                raise _bad(key, "must not be empty", "空にできません")

    def eku_oids(self) -> list[x509.ObjectIdentifier]:
        """The extended key usages as OIDs, in file order."""
        return [x509.ObjectIdentifier(EKU_NAMES.get(e, e)) for e in self.extended_key_usage]


@dataclass(frozen=True)
class Profile:
    """One certificate profile, loaded from ``conf/profiles/NAME.toml``."""

    name: str
    # The federation's name, the subject's O (UTF8String, at most 64 characters).
    federation: str
    extensions: Extensions
    description: str = ""
    key_types: tuple[KeyTypeName, ...] = ("rsa2048", "rsa3072", "p256")
    # The key the RA generates for an office that does not bring its own CSR.
    default_key_type: KeyTypeName = "rsa2048"
    signature_hash: Literal["sha256"] = "sha256"
    validity: dt.timedelta = field(default=dt.timedelta(days=1095))

    def __post_init__(self) -> None:
        if not _PROFILE_NAME.fullmatch(self.name):
            raise _bad(
                "name",
                f"{self.name!r} must be 1-32 lower-case letters, digits, '-' or '_'",
                f"{self.name!r} は英小文字・数字・'-'・'_' の 1〜32 文字にしてください",
            )
        _check_text("federation", self.federation, UB_NAME)
        if not self.key_types:
            raise _bad("key_types", "must list at least one key type", "鍵の種類が空です")
        if len(set(self.key_types)) != len(self.key_types):
            raise _bad("key_types", "repeats a value", "同じ値が重複しています")
        if self.default_key_type not in self.key_types:
            raise _bad(
                "default_key_type",
                f"{self.default_key_type!r} is not in key_types",
                f"{self.default_key_type!r} が key_types にありません",
            )
        if self.validity < dt.timedelta(days=1):
            raise _bad("validity", "must be at least one day", "1 日以上にしてください")

    def allows(self, key_type: str | None) -> bool:
        """True if a subject key of type ``key_type`` (see :func:`key_type_name`) is allowed."""
        return key_type is not None and key_type in self.key_types


def key_type_name(public_key: object) -> str | None:
    """The profile name of a public key ("rsa2048", "p256", ...), or None if it has none.

    RSA keys count only with the public exponent 65537 (a small or unusual exponent is a known
    source of weakness and of interoperability trouble).
    """
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.public_numbers().e != 65537:
            return None
        return f"rsa{public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "p256", "secp384r1": "p384"}.get(public_key.curve.name)
    return None


def load_profile(path: str | Path) -> Profile:
    """Load one profile file strictly; any problem is a :class:`ConfigError` naming the key."""
    try:
        return config.load(path, Profile)
    except ConfigError as exc:
        if exc.message.startswith(str(path)):
            raise
        # A check in __post_init__ does not know the file; add it so the operator can find it.
        raise ConfigError(
            f"{path}: {exc.message}", message_ja=f"{path}: {exc.message_ja}", **exc.fields
        ) from exc


def load_profiles(folder: str | Path) -> dict[str, Profile]:
    """Load every ``*.toml`` in ``folder``, keyed by profile name (which must be the file stem).

    Raises :class:`shomei.errors.NotFound` if the folder does not exist and
    :class:`shomei.errors.ConfigError` for a bad file, a name that differs from its file name,
    or a folder without profiles.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotFound(
            f"profile folder not found: {folder}",
            message_ja=f"プロファイルのフォルダが見つかりません: {folder}",
            path=str(folder),
        )
    profiles: dict[str, Profile] = {}
    for path in sorted(folder.glob("*.toml")):
        profile = load_profile(path)
        if profile.name != path.stem:
            raise ConfigError(
                f"{path}: name = {profile.name!r} must match the file name {path.stem!r}",
                message_ja=f"{path}: name ({profile.name!r}) はファイル名 {path.stem!r} と"
                "同じにしてください",
                key="name",
            )
        profiles[profile.name] = profile
    if not profiles:
        raise ConfigError(
            f"no profiles (*.toml) in {folder}",
            message_ja=f"{folder} にプロファイル(*.toml)がありません",
            path=str(folder),
        )
    return profiles
