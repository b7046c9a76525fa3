"""The CA inside the RA's process (``ra.link.mode = "inline"``): the one door from ra/ to ca/.

The RA and the CA otherwise share only the batch contract (:mod:`contract`).  In inline mode
(the embedded default, the demo and the tests) there is no air gap: the dispatch opens the CA
home named by ``ra.link.ca_home`` with the custodian share files (or the PKCS#11 PIN file) the
settings list, and hands it each signed request batch (:func:`sign_batch`, the same code the
offline ``shomei ca sign-batch`` runs).  Every other module of ``ra/`` stays free of ``ca/``,
which ``tests/test_boundaries.py`` checks; callers import this module lazily, so an RA in
offline mode never loads the CA code at all.
"""

from __future__ import annotations

from pathlib import Path

from ca.batchstore import Busy
from ca.context import CA, open_ca
from ca.custody.secretfile import read_pin_file, read_share_file
from ca.custody.shares import parse_share
from ca.settings import load_ca_settings
from ca.signbatch import sign_batch
from ra.settings import LinkSettings, RASettings
from shomei.errors import ConfigError

__all__ = ["CA", "Busy", "ca_certificate_path", "ca_chain_paths", "open_inline_ca", "sign_batch"]


def _ca_home(link: LinkSettings) -> Path:
    if link.ca_home is None:
        raise ConfigError(
            "inline mode needs ra.link.ca_home", message_ja="インライン連携には ca_home が必要です"
        )
    return link.ca_home


def open_inline_ca(settings: RASettings) -> CA:
    """Open the CA home of ``ra.link.ca_home`` with the key material the settings name."""
    link = settings.link
    ca_settings = load_ca_settings(_ca_home(link) / "ca.toml")
    shares = [parse_share(read_share_file(p)) for p in link.ca_share_files]
    pin = read_pin_file(link.ca_pin_file) if link.ca_pin_file else None
    return open_ca(ca_settings, shares=shares, pin=pin)


def ca_certificate_path(link: LinkSettings) -> Path:
    """The issuing CA certificate of the inline CA home (when ``ca_certificate`` is not set)."""
    return load_ca_settings(_ca_home(link) / "ca.toml").certificate


def ca_chain_paths(link: LinkSettings) -> list[Path]:
    """The certificates above the inline CA's issuing CA (its root), as its settings list them."""
    return list(load_ca_settings(_ca_home(link) / "ca.toml").chain)
