"""The layout of a CA home and the files the ceremony writes into it.

:class:`HomePaths` names every place (see :mod:`ca.settings` for what each holds);
:func:`settings_text` writes the reviewed ``ca.toml`` of the CA that issues office
certificates, and :func:`federation_profile` sets a certificate profile to the federation's
name, publication URLs and policy OID while keeping every other line (and comment) as reviewed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ca.ceremony_config import CeremonyConfig, FederationSpec
from ca.settings import KeyRef


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string (JSON's escaping is valid TOML; Japanese kept)."""
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class HomePaths:
    """Where the ceremony puts things inside a CA home (see :mod:`ca.settings`)."""

    home: Path

    def cert(self, which: str) -> Path:
        return self.home / which / f"{which}.pem"

    def cert_der(self, which: str) -> Path:
        return self.home / which / f"{which}.crt"

    def key_file(self, which: str) -> Path:
        return self.home / which / f"{which}.key.p8"

    def key_ref(self, which: str) -> Path:
        return self.home / which / "key.toml"

    def crl_dir(self, which: str) -> Path:
        return self.home / "crl" / which

    @property
    def settings(self) -> Path:
        return self.home / "ca.toml"

    @property
    def ledger(self) -> Path:
        return self.home / "ledger.sqlite"

    @property
    def profiles(self) -> Path:
        return self.home / "profiles"


def settings_text(cfg: CeremonyConfig, which: str, key_ref: KeyRef, *, now: dt.datetime) -> str:
    """The ``ca.toml`` for the CA ``which`` ("issuing", or "root" for a single tier)."""
    q = toml_string
    chain = q("root/root.pem") if which == "issuing" else ""
    if key_ref.backend == "file":
        key_line = f'key = {{ backend = "file", path = {q(f"{which}/{which}.key.p8")} }}'
    else:
        key_line = (
            f'key = {{ backend = "pkcs11", module = {q(str(key_ref.module))}, '
            f"token_label = {q(key_ref.token_label or '')}, "
            f"key_label = {q(key_ref.key_label or '')} }}"
        )
    return (
        f"# Settings of this CA machine, written by the ceremony {q(cfg.ceremony.name)} "
        f"on {now.isoformat()}.\n"
        "# Review, then keep under change control. Unknown keys are refused.\n"
        "[ca]\n"
        f"name = {q(f'{cfg.federation.name} {which} CA')}\n"
        f"certificate = {q(f'{which}/{which}.pem')}\n"
        f"chain = [{chain}]\n"
        f"{key_line}\n"
        'ledger = "ledger.sqlite"\n'
        'profiles_dir = "profiles"\n'
        'default_profile = "office"\n'
        f"crl_dir = {q(f'crl/{which}')}\n"
        "# The RA link certificates (PEM) whose request batches this CA signs\n"
        "# (add one with `shomei ca trust-ra`).\n"
        "trusted_ra = []\n\n"
        "[ca.crl]\n"
        f'validity = "{cfg.crl.issuing_validity.days}d"\n'
        'keep_after_expiry = "30d"\n'
    )


def federation_profile(text: str, federation: FederationSpec, which: str) -> str:
    """A profile file's ``text`` set to ``federation`` for certificates issued by ``which``.

    The lines ``federation``, ``crl_distribution_point``, ``ca_issuers`` and ``policies`` are
    replaced; everything else is kept as it was reviewed.
    """
    values = {
        "federation": federation.name,
        "crl_distribution_point": f"{federation.crl_base_url.rstrip('/')}/{which}.crl",
        "ca_issuers": f"{federation.ca_base_url.rstrip('/')}/{which}.crt",
    }
    lines = {key: f"{key} = {toml_string(value)}" for key, value in values.items()}
    lines["policies"] = f"policies = [{toml_string(federation.policy_oid)}]"
    for key, line in lines.items():
        # A function as the replacement, so a backslash in a value is never read as an escape.
        text = re.sub(rf"(?m)^{key}\s*=.*$", _constant(line), text)
    return text


def _constant(line: str) -> Callable[[re.Match[str]], str]:
    return lambda _match: line
