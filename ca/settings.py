"""Settings of one CA machine: its ``ca.toml`` (made by the ceremonies, reviewed, then fixed).

A *CA home* is the folder that holds everything the offline CA owns::

    ca.toml                 these settings
    root/root.pem           the root certificate (and, for the root's own key custody, root.key.*)
    issuing/issuing.pem     the issuing CA certificate (absent for a single-tier CA)
    */KEY.p8 + KEY.json     an encrypted PKCS#8 key and its custody metadata (file backend)
    ledger.sqlite           the CA ledger: batches, serials, CRLs
    crl/                    every CRL issued, by number
    transcripts/            the signed, hash-chained transcript of each ceremony
    profiles/               certificate profiles in force (copied from conf/profiles)
    trusted-ra/             the RA link certificates whose batches this CA accepts

Loaded once with :func:`load_ca_settings`; unknown keys are errors that name the key.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from shomei import config


@dataclass(frozen=True)
class KeyRef:
    """Where a CA private key is kept.

    ``backend = "file"``: an encrypted PKCS#8 file (``path``) whose passphrase is split among
    custodians; its metadata (key id, M, N, commitment) is ``path`` with suffix ``.json``.
    ``backend = "pkcs11"``: a key on a token, found by ``token_label`` and ``key_label`` in
    the PKCS#11 ``module``.
    """

    backend: Literal["file", "pkcs11"]
    path: Path | None = None
    module: Path | None = None
    token_label: str | None = None
    key_label: str | None = None

    def __post_init__(self) -> None:
        if self.backend == "file" and self.path is None:
            raise ValueError('key.path is required with backend = "file"')
        if self.backend == "pkcs11" and not (self.module and self.token_label and self.key_label):
            raise ValueError(
                'key.module, key.token_label and key.key_label are required with backend = "pkcs11"'
            )


@dataclass(frozen=True)
class CrlPolicy:
    """When CRLs are issued and how long they are valid (RFC 5280 §5.1.2.4-5)."""

    validity: dt.timedelta = dt.timedelta(days=7)
    # Entries stay listed this long after the certificate expires (RFC 5280 §3.3 allows
    # removal after expiry; we keep them a little longer for claims signed just before).
    keep_after_expiry: dt.timedelta = dt.timedelta(days=30)

    def __post_init__(self) -> None:
        # The same bounds as the ceremony that wrote them (ca.ceremony_config).
        low, high = dt.timedelta(hours=1), dt.timedelta(days=31)
        if not low <= self.validity <= high:
            raise ValueError("crl.validity must be between 1h and 31d")
        if not dt.timedelta(0) <= self.keep_after_expiry <= dt.timedelta(days=3650):
            raise ValueError("crl.keep_after_expiry must be between 0d and 3650d")


@dataclass(frozen=True)
class CASettings:
    """One issuing CA (or a single-tier root that issues office certificates)."""

    name: str
    certificate: Path
    key: KeyRef
    ledger: Path
    profiles_dir: Path
    chain: list[Path] = field(default_factory=list)
    default_profile: str = "office"
    trusted_ra: list[Path] = field(default_factory=list)
    crl: CrlPolicy = field(default_factory=CrlPolicy)
    crl_dir: Path | None = None


def load_ca_settings(path: str | Path) -> CASettings:
    """Read ``ca.toml`` (table ``[ca]``) strictly."""
    return config.load(path, CASettings, section="ca")
