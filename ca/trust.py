"""Pinning an RA link certificate in a CA home (``trusted_ra`` of ``ca.toml``).

The CA signs only request batches signed by a link certificate it pins (SPEC §5).  Adding one
copies the certificate into ``trusted-ra/`` under a name derived from its SHA-256 and adds
that path to the one-line ``trusted_ra = [...]`` list the ceremony wrote; the file is then
re-read strictly, and replaced atomically only if it still loads.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca.settings import load_ca_settings
from shomei.errors import ConfigError, MalformedInput

_LINE = re.compile(r"^trusted_ra\s*=\s*\[(?P<items>[^\]\n]*)\]\s*$", re.MULTILINE)


def pin_ra_certificate(ca_home: Path, certificate_pem: bytes) -> Path:
    """Pin the RA link certificate; returns where it was stored.  Pinning twice is a no-op."""
    try:
        cert = x509.load_pem_x509_certificate(certificate_pem)
    except ValueError as exc:
        raise MalformedInput(
            "not a PEM certificate", message_ja="PEM 形式の証明書ではありません"
        ) from exc
    digest = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()[:16]
    relative = f"trusted-ra/ra-link-{digest}.pem"
    target = ca_home / relative
    settings_path = ca_home / "ca.toml"
    text = settings_path.read_text(encoding="utf-8")
    match = _LINE.search(text)
    if match is None:
        raise ConfigError(
            f"{settings_path}: no one-line 'trusted_ra = [...]'; add {relative} by hand",
            message_ja=(
                f"{settings_path}: 'trusted_ra = [...]' の行がありません。手で追加してください"
            ),
        )
    items = [i.strip() for i in match.group("items").split(",") if i.strip()]
    quoted = f'"{relative}"'
    if quoted not in items:
        items.append(quoted)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.write_bytes(cert.public_bytes(Encoding.PEM))
    new_text = text[: match.start()] + f"trusted_ra = [{', '.join(items)}]" + text[match.end() :]
    temp = settings_path.with_name(".ca.toml.new")
    temp.write_text(new_text, encoding="utf-8")
    try:
        load_ca_settings(temp)
    except ConfigError:
        temp.unlink()
        raise
    os.replace(temp, settings_path)
    return target
