"""Can this CA home issue office certificates?  What ``shomei ca status`` checks besides CRLs.

A CA home can look complete (``ca.toml``, certificates, a ledger) and still be unable to issue
anything: no profiles, no ``office`` profile, a key file gone, a CA certificate expired, no RA
link certificate pinned.  :func:`issuing_problems` names each such problem without opening the
key (no custodian is needed), so the operator learns it from ``status`` and not from the first
batch.
"""

from __future__ import annotations

import datetime as dt

from ca.settings import CASettings
from shomei.errors import ShomeiError


def issuing_problems(settings: CASettings, *, now: dt.datetime) -> list[str]:
    """Why the CA of ``settings`` cannot issue office certificates now (empty: it can)."""
    from ca.context import load_certificates
    from ca.custody.keyfile import key_file_info
    from ca.trust import trusted_link_certificates
    from contract.profile import load_profiles

    problems: list[str] = []
    try:
        certs = load_certificates(settings.certificate)
        if certs and certs[0].not_valid_after_utc <= now:
            problems.append(
                f"the CA certificate {settings.certificate} expired on "
                f"{certs[0].not_valid_after_utc:%Y-%m-%d}"
            )
    except ShomeiError as exc:
        problems.append(exc.message)
    try:
        if settings.key.backend == "file":
            assert settings.key.path is not None  # KeyRef guarantees it
            key_file_info(settings.key.path)
            if not settings.key.path.is_file():
                problems.append(f"the CA key file {settings.key.path} is missing")
        elif settings.key.module is not None and not settings.key.module.is_file():
            problems.append(f"the PKCS#11 module {settings.key.module} is missing")
    except ShomeiError as exc:
        problems.append(exc.message)
    try:
        profiles = load_profiles(settings.profiles_dir)
        if settings.default_profile not in profiles:
            problems.append(
                f"the default profile {settings.default_profile!r} is not in "
                f"{settings.profiles_dir}"
            )
    except ShomeiError as exc:
        problems.append(exc.message)
    try:
        if not trusted_link_certificates(settings):
            problems.append(
                "no RA link certificate is pinned, so no request batch can be signed "
                "(shomei ca trust-ra)"
            )
    except ShomeiError as exc:
        problems.append(exc.message)
    return problems


__all__ = ["issuing_problems"]
