"""The layout of a CA home and the files the ceremony writes into it.

:class:`HomePaths` names every place (see :mod:`ca.settings` for what each holds);
:func:`settings_text` writes the reviewed ``ca.toml`` of the CA that issues office
certificates, and :func:`federation_profile` sets a certificate profile to the federation's
name, publication URLs and policy OID while keeping every other line (and comment) as reviewed.
:func:`profile_copies` says, before anything is written, which profile goes where and which
values the ceremony sets in it, so the plan and the transcript can show them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ca.ceremony_config import CeremonyConfig, FederationSpec, duration_text
from ca.settings import KeyRef
from shomei.errors import ShomeiError
from shomei.files import read_text


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

    @property
    def transcripts(self) -> Path:
        return self.home / "transcripts"


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
        f'validity = "{duration_text(cfg.crl.issuing_validity)}"\n'
        'keep_after_expiry = "30d"\n'
    )


def federation_values(federation: FederationSpec, which: str) -> dict[str, Any]:
    """What the ceremony sets in every profile for certificates issued by ``which``."""
    return {
        "federation": federation.name,
        "crl_distribution_point": f"{federation.crl_base_url.rstrip('/')}/{which}.crl",
        "ca_issuers": f"{federation.ca_base_url.rstrip('/')}/{which}.crt",
        "policies": [federation.policy_oid],
    }


def federation_profile(text: str, federation: FederationSpec, which: str) -> str:
    """A profile file's ``text`` set to ``federation`` for certificates issued by ``which``.

    The lines ``federation``, ``crl_distribution_point``, ``ca_issuers`` and ``policies`` are
    replaced; everything else is kept as it was reviewed.  A value written over several lines
    is not replaced: :func:`check_profile_text` then refuses the result.
    """
    for key, value in federation_values(federation, which).items():
        rendered = (
            f"[{', '.join(toml_string(v) for v in value)}]"
            if isinstance(value, list)
            else toml_string(value)
        )
        # A function as the replacement, so a backslash in a value is never read as an escape.
        text = re.sub(rf"(?m)^{key}\s*=.*$", _constant(f"{key} = {rendered}"), text)
    return text


def _constant(line: str) -> Callable[[re.Match[str]], str]:
    return lambda _match: line


@dataclass(frozen=True)
class ProfileChange:
    """One value the ceremony sets in a profile (``old`` as the source file had it)."""

    key: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ProfileCopy:
    """A profile the ceremony copies into the CA home, and what it sets in it."""

    source: Path
    target: Path
    changes: tuple[ProfileChange, ...]


def _profile_values(data: dict[str, Any]) -> dict[str, Any]:
    ext = data.get("extensions")
    ext = ext if isinstance(ext, dict) else {}
    return {
        "federation": data.get("federation"),
        "crl_distribution_point": ext.get("crl_distribution_point"),
        "ca_issuers": ext.get("ca_issuers"),
        "policies": ext.get("policies"),
    }


def profile_copies(cfg: CeremonyConfig, which: str, home: Path) -> list[ProfileCopy]:
    """Each ``*.toml`` of the ceremony's profiles folder, its place in ``home``, its changes.

    Reads the source files only; a file that is not TOML shows no old values here (the
    ceremony's checks refuse it).  Nothing is written.
    """
    source = cfg.ceremony.profiles
    if source is None or not source.is_dir():
        return []
    wanted = federation_values(cfg.federation, which)
    copies: list[ProfileCopy] = []
    for path in sorted(source.glob("*.toml")):
        try:
            text = read_text(path, what="profile", what_ja="プロファイル")
            old = _profile_values(tomllib.loads(text))
        except (ShomeiError, tomllib.TOMLDecodeError):
            old = dict.fromkeys(wanted)
        changes = tuple(ProfileChange(k, old[k], v) for k, v in wanted.items())
        copies.append(ProfileCopy(path, home / "profiles" / path.name, changes))
    return copies


def check_profile_text(text: str, federation: FederationSpec, which: str) -> str | None:
    """Why the rewritten profile ``text`` does not carry the federation's values, or None."""
    try:
        have = _profile_values(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        return f"not valid TOML after the ceremony set its values ({exc})"
    for key, value in federation_values(federation, which).items():
        if have[key] != value:
            return (
                f"the ceremony cannot set {key} (write it as one line '{key} = ...' in "
                f"{'the [extensions] table' if key != 'federation' else 'the top table'})"
            )
    return None
