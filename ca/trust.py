"""Pinning an RA link certificate in a CA home (``trusted_ra`` of ``ca.toml``).

The CA signs only request batches signed by a link certificate it pins (docs/product.md §10).
Adding one copies the certificate into ``trusted-ra/`` under a name derived from its SHA-256 and
adds that path to the one-line ``trusted_ra = [...]`` list the ceremony wrote; the file is then
re-read strictly, and replaced atomically only if it still loads.

Only an RA link certificate may be pinned, as :func:`contract.batch.make_link_identity` makes it
(``shomei ra link-identity``): self-signed, an end entity (basicConstraints cA FALSE, RFC 5280
§4.2.1.9), key usage digitalSignature without keyCertSign or cRLSign (§4.2.1.3), subject
O = "Shomei RA link".  A CA certificate, an office certificate or any other certificate is
refused by :func:`check_link_certificate`, both when pinning and when the CA loads its pins.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ca.settings import CASettings, load_ca_settings
from shomei.errors import ConfigError, MalformedInput, Refused
from shomei.files import MAX_TEXT, read_bytes, write_new

LINK_ORGANIZATION = "Shomei RA link"
_LINE = re.compile(r"^trusted_ra\s*=\s*\[(?P<items>[^\]\n]*)\]\s*$", re.MULTILINE)


def _not_link(cert: x509.Certificate, why: str, why_ja: str) -> Refused:
    subject = cert.subject.rfc4514_string()
    return Refused(
        f"{subject} is not an RA link certificate: {why} (the RA operator makes the link "
        "certificate with shomei ra link-identity)",
        message_ja=f"{subject} は RA 連携証明書ではありません: {why_ja}",
        subject=subject,
    )


def check_link_certificate(cert: x509.Certificate) -> None:
    """Refuse (:class:`Refused`) a certificate that is not an RA link certificate."""
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise _not_link(
            cert, "it lacks basicConstraints or keyUsage", "基本制約または鍵用途がありません"
        ) from None
    except ValueError as exc:  # an extension that cryptography cannot parse
        raise _not_link(cert, "its extensions do not parse", "拡張を解析できません") from exc
    if bc.ca:
        raise _not_link(cert, "it is a CA certificate (basicConstraints CA=TRUE)", "CA 証明書です")
    signing_only = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    if ku != signing_only:
        raise _not_link(
            cert,
            "its key usage is not digitalSignature alone",
            "鍵用途が digitalSignature のみではありません",
        )
    organization = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    if organization != [LINK_ORGANIZATION]:
        raise _not_link(
            cert,
            f"its subject O is not {LINK_ORGANIZATION!r}",
            f"O が {LINK_ORGANIZATION} ではありません",
        )
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        raise _not_link(
            cert,
            f"it is not self-signed (issued by {cert.issuer.rfc4514_string()})",
            "自己署名ではありません",
        ) from None


def trusted_link_certificates(settings: CASettings) -> list[x509.Certificate]:
    """The pinned link certificates of ``settings``, each checked to be a link certificate."""
    from ca.context import load_certificates

    certs = [c for p in settings.trusted_ra for c in load_certificates(p)]
    for cert in certs:
        try:
            check_link_certificate(cert)
        except Refused as exc:
            raise ConfigError(
                f"trusted_ra in ca.toml: {exc.message}",
                message_ja=f"ca.toml の trusted_ra: {exc.message_ja}",
            ) from exc
    return certs


def pin_ra_certificate(
    ca_home: Path, certificate_pem: bytes, *, now: dt.datetime | None = None
) -> Path:
    """Pin the RA link certificate; returns where it was stored.  Pinning twice is a no-op.

    Refuses a file that is not exactly one PEM certificate, a certificate that is not an RA
    link certificate and (with ``now``) one that has expired.
    """
    settings_path = ca_home / "ca.toml"
    load_ca_settings(settings_path)  # a missing or broken ca.toml is a ConfigError
    try:
        certs = x509.load_pem_x509_certificates(certificate_pem)
    except ValueError as exc:
        raise MalformedInput(
            "not a PEM certificate", message_ja="PEM 形式の証明書ではありません"
        ) from exc
    if len(certs) != 1:
        raise MalformedInput(
            f"the file holds {len(certs)} certificates; give the RA link certificate alone",
            message_ja=f"ファイルに証明書が {len(certs)} 個あります(連携証明書 1 つだけにします)",
        )
    cert = certs[0]
    check_link_certificate(cert)
    if now is not None and cert.not_valid_after_utc <= now:
        raise Refused(
            f"the link certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}; ask the RA "
            "for a new one",
            message_ja=f"連携証明書の有効期限が切れています({cert.not_valid_after_utc:%Y-%m-%d})",
        )
    digest = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()[:16]
    relative = f"trusted-ra/ra-link-{digest}.pem"
    target = ca_home / relative
    raw = read_bytes(settings_path, what="CA settings", what_ja="CA 設定", limit=MAX_TEXT)
    text = raw.decode("utf-8")  # load_ca_settings read it as UTF-8 already
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
    if not target.exists():
        write_new(target, cert.public_bytes(Encoding.PEM))
    new_text = text[: match.start()] + f"trusted_ra = [{', '.join(items)}]" + text[match.end() :]
    temp = settings_path.with_name(".ca.toml.new")
    temp.unlink(missing_ok=True)
    write_new(temp, new_text.encode("utf-8"), mode=os.stat(settings_path).st_mode & 0o777)
    try:
        load_ca_settings(temp)
    except ConfigError:
        temp.unlink()
        raise
    os.replace(temp, settings_path)
    return target
