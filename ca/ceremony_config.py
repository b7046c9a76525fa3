"""The reviewed config file that drives one key ceremony (strict TOML).

A ceremony file names the CA home it works on, who is present, and an ordered list of
actions: ``create-root``, ``create-issuing``, ``root-crl`` and ``issuing-crl``.  Each action
reads its own table (``[root]``, ``[issuing]``, ``[crl]``).  A single-tier CA is a ceremony
without ``create-issuing``: the root then issues office certificates itself.  See
``conf/ceremonies/example.toml`` and docs/ca-operator-guide.md.

Loading checks each value on its own (types, ranges, names); whether the ceremony can run
on this machine today (the CA home, the profiles, the token, the shares folder) is checked
by :mod:`ca.ceremony_check` before any key is made.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from shomei import config

Action = Literal["create-root", "create-issuing", "root-crl", "issuing-crl"]
Algorithm = Literal["rsa2048", "rsa3072", "rsa4096", "p256", "p384"]

_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_URL = re.compile(r"^http://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$")
# The ceremony's name becomes part of its transcript's file name.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

# Bounds on what a ceremony may ask for.  A CA certificate longer than 30 years outlives any
# key size in use today; a CRL is valid at least an hour and an issuing CA's CRL at most a
# month (the CA must re-issue well before that to be revocable at all), the root's ARL at
# most a year and a day (it is issued at a yearly ceremony).
MAX_CA_VALIDITY = dt.timedelta(days=10950)
MIN_CRL_VALIDITY = dt.timedelta(hours=1)
MAX_ISSUING_CRL_VALIDITY = dt.timedelta(days=31)
MAX_ROOT_CRL_VALIDITY = dt.timedelta(days=366)


def duration_text(value: dt.timedelta) -> str:
    """``value`` as the config files write it: ``"7d"``, ``"36h"`` or ``"90m"``."""
    minutes = int(value.total_seconds()) // 60
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def check_name(what: str, value: str) -> None:
    """Refuse a name that cannot go into a certificate subject (RFC 5280 Appendix A.1)."""
    if not 0 < len(value) <= 64:
        raise ValueError(f"{what} must be 1 to 64 characters (RFC 5280 upper bound)")
    if value != value.strip():
        raise ValueError(f"{what} must not start or end with spaces")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
        raise ValueError(f"{what} contains control characters")


def check_range(what: str, value: dt.timedelta, low: dt.timedelta, high: dt.timedelta) -> None:
    """Refuse (``ValueError``, named by the loader) a duration outside ``[low, high]``."""
    if not low <= value <= high:
        raise ValueError(
            f"{what} must be between {duration_text(low)} and {duration_text(high)}, "
            f"not {duration_text(value)}"
        )


@dataclass(frozen=True)
class KeySpec:
    """How a new CA key is made and kept (see docs/key-custody.md)."""

    backend: Literal["file", "pkcs11"] = "file"
    algorithm: Algorithm = "rsa3072"
    m: int = 2
    n: int = 3
    module: Path | None = None
    token_label: str | None = None
    key_label: str | None = None

    def __post_init__(self) -> None:
        if self.backend == "file" and not 1 <= self.m <= self.n <= 16:
            raise ValueError("key: need 1 <= m <= n <= 16 custodian shares")
        if self.backend == "file" and self.m < 2 and self.n > 1:
            raise ValueError("key: m = 1 with several custodians lets any one open the key")
        if self.backend == "pkcs11":
            if not (self.module and self.token_label and self.key_label):
                raise ValueError(
                    'key: module, token_label and key_label are required with backend = "pkcs11"'
                )
            if self.algorithm not in ("rsa2048", "rsa3072", "p256"):
                raise ValueError("key: a PKCS#11 key must be rsa2048, rsa3072 or p256")


@dataclass(frozen=True)
class CASpec:
    """One CA certificate to create."""

    common_name: str
    validity: dt.timedelta
    key: KeySpec = field(default_factory=KeySpec)

    def __post_init__(self) -> None:
        check_name("common_name", self.common_name)
        check_range("validity", self.validity, dt.timedelta(days=1), MAX_CA_VALIDITY)


@dataclass(frozen=True)
class FederationSpec:
    """Who runs the CA and where its certificates and CRLs are published."""

    name: str
    crl_base_url: str
    ca_base_url: str
    policy_oid: str

    def __post_init__(self) -> None:
        check_name("federation name", self.name)
        for url in (self.crl_base_url, self.ca_base_url):
            if not _URL.match(url):
                # RFC 5280 §4.2.1.13 / §4.2.2.1: relying parties fetch these over plain HTTP;
                # RFC 3986 allows no spaces or non-ASCII characters in a URI.
                raise ValueError(
                    f"{url!r}: publication URLs must be http://HOST/PATH URLs in plain ASCII"
                )
        if not _OID.match(self.policy_oid):
            raise ValueError(f"policy_oid {self.policy_oid!r} is not a dotted OID")


@dataclass(frozen=True)
class CrlSpec:
    """Validity of the CRLs a ceremony issues."""

    root_validity: dt.timedelta = dt.timedelta(days=365)
    issuing_validity: dt.timedelta = dt.timedelta(days=7)

    def __post_init__(self) -> None:
        check_range("root_validity", self.root_validity, MIN_CRL_VALIDITY, MAX_ROOT_CRL_VALIDITY)
        check_range(
            "issuing_validity", self.issuing_validity, MIN_CRL_VALIDITY, MAX_ISSUING_CRL_VALIDITY
        )


@dataclass(frozen=True)
class CeremonyInfo:
    name: str
    ca_home: Path
    actions: list[Action]
    operator: str
    witnesses: list[str] = field(default_factory=list)
    profiles: Path | None = None
    shares_dir: Path | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(
                f"name {self.name!r}: use 1-64 letters, digits, '.', '_' or '-' (it names the "
                "transcript file)"
            )
        if not self.actions:
            raise ValueError("actions: at least one action is needed")
        if len(set(self.actions)) != len(self.actions):
            raise ValueError("actions: an action is listed twice")
        order = ["create-root", "create-issuing", "root-crl", "issuing-crl"]
        if [a for a in order if a in self.actions] != list(self.actions):
            raise ValueError(f"actions must keep this order: {', '.join(order)}")


@dataclass(frozen=True)
class CeremonyConfig:
    ceremony: CeremonyInfo
    federation: FederationSpec
    root: CASpec | None = None
    issuing: CASpec | None = None
    crl: CrlSpec = field(default_factory=CrlSpec)

    def __post_init__(self) -> None:
        if "create-root" in self.ceremony.actions and self.root is None:
            raise ValueError("create-root needs a [root] table")
        if "create-issuing" in self.ceremony.actions and self.issuing is None:
            raise ValueError("create-issuing needs an [issuing] table")
        if self.ceremony.shares_dir is None and any(
            spec.key.backend == "file" for spec in self.new_cas().values()
        ):
            # Without it the custodians' shares would never be written: a key no one can open.
            raise ValueError('ceremony.shares_dir is needed to create a key with backend = "file"')

    def new_cas(self) -> dict[str, CASpec]:
        """The CAs this ceremony creates, by name ("root", "issuing")."""
        made = {"root": self.root, "issuing": self.issuing}
        return {
            which: spec
            for which, spec in made.items()
            if spec is not None and f"create-{which}" in self.ceremony.actions
        }


def load_ceremony(path: str | Path) -> CeremonyConfig:
    """Read and validate a ceremony file; unknown keys are errors naming the key."""
    return config.load(path, CeremonyConfig)
