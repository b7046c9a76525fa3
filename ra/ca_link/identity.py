"""The RA's link identity (docs/product.md §10): the key signing request batches and audit anchors.

The CA pins the RA's self-signed link certificate byte for byte (``trusted_ra`` of its
``ca.toml``), so the certificate asserts nothing beyond "batches signed by this key come from
the RA the operator installed it for".  The private key never lies unencrypted on disk: it is
an encrypted PKCS#8 PEM (RFC 5958 §3, PBES2 via ``BestAvailableEncryption``) whose passphrase
sits in a separate file readable only by the RA's user (``link_key_passphrase_file``).

:func:`create_link_identity` makes a fresh identity (demo, tests, a first installation) with
:func:`contract.batch.make_link_identity` and writes the three files without overwriting anything;
:func:`load_link_identity` loads it from :class:`ra.settings.LinkSettings` and checks that the
key belongs to the certificate.  :func:`load_ca_certificate` finds the issuing CA certificate
that result batches and CRLs are checked against.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from contract.batch import make_link_identity
from ra.settings import LinkSettings
from ra.store.vault import warn_if_shared
from shomei.errors import AlreadyExists, ConfigError, Conflict, Refused
from shomei.files import MAX_OBJECT, read_bytes, write_new
from signer.keys import SoftwareKey

_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class LinkIdentity:
    """The opened link key and its (self-signed) certificate."""

    key: SoftwareKey
    certificate: x509.Certificate


@dataclass(frozen=True)
class LinkFiles:
    """Where :func:`create_link_identity` wrote the identity."""

    key: Path
    passphrase: Path
    certificate: Path


def _read(path: Path | None, what: str, what_ja: str) -> bytes:
    if path is None:
        raise ConfigError(
            f"the RA settings do not name the {what} ([ra.link])",
            message_ja=f"RA 設定 ([ra.link]) に{what_ja}が指定されていません",
        )
    return read_bytes(path, what=what, what_ja=what_ja, limit=MAX_OBJECT)


def load_link_identity(link: LinkSettings) -> LinkIdentity:
    """Open the RA link key (encrypted PKCS#8 + passphrase file) and its certificate.

    Raises :class:`ConfigError` (not configured, wrong passphrase, not a key or certificate,
    key and certificate do not match) or :class:`NotFound` (a file is missing).
    """
    cert_bytes = _read(link.link_certificate, "link certificate", "連携証明書")
    key_bytes = _read(link.link_key, "link key", "連携鍵")
    passphrase = _read(
        link.link_key_passphrase_file, "link key passphrase file", "連携鍵のパスフレーズ"
    )
    if link.link_key_passphrase_file is not None:
        warn_if_shared(link.link_key_passphrase_file, "the link key passphrase file")
    try:
        certificate = x509.load_pem_x509_certificate(cert_bytes)
    except ValueError as exc:
        raise ConfigError(
            f"{link.link_certificate}: not a PEM certificate",
            message_ja=f"{link.link_certificate}: PEM 形式の証明書ではありません",
        ) from exc
    try:
        private = serialization.load_pem_private_key(key_bytes, password=passphrase.strip())
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{link.link_key}: cannot open the link key (wrong passphrase or not an encrypted "
            "PKCS#8 key)",
            message_ja=f"{link.link_key}: 連携鍵を開けません(パスフレーズ違いまたは形式不正)",
        ) from exc
    if not isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ConfigError(
            f"{link.link_key}: only RSA and ECDSA link keys are supported",
            message_ja=f"{link.link_key}: 連携鍵は RSA か ECDSA でなければなりません",
        )
    if private.public_key().public_bytes(*_SPKI) != certificate.public_key().public_bytes(*_SPKI):
        raise ConfigError(
            "the link key does not belong to the link certificate",
            message_ja="連携鍵が連携証明書の鍵と一致しません",
        )
    return LinkIdentity(key=SoftwareKey(private), certificate=certificate)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        write_new(path, data, mode=mode)
    except AlreadyExists as exc:
        raise AlreadyExists(
            f"{path} already exists; a link identity is never overwritten",
            message_ja=f"{path} は既にあります。連携鍵は上書きしません",
            path=str(path),
        ) from exc


def create_link_identity(
    name: str, folder: Path, *, now: dt.datetime, days: int = 730
) -> tuple[LinkIdentity, LinkFiles]:
    """Make a new link identity in ``folder``: ``ra-link.key`` (encrypted), ``ra-link.pass``
    (mode 0600) and ``ra-link.pem``.  Refuses (:class:`Refused`) if any of them exists."""
    files = LinkFiles(
        key=folder / "ra-link.key",
        passphrase=folder / "ra-link.pass",
        certificate=folder / "ra-link.pem",
    )
    paths = (files.passphrase, files.key, files.certificate)
    present = [p for p in paths if p.exists()]
    if present and not files.certificate.exists():
        # An earlier run stopped part-way (the certificate is written last): nobody can have
        # pinned an identity without its certificate, so the leftovers may simply go.
        names = ", ".join(str(p) for p in present)
        raise Conflict(
            f"an earlier run stopped part-way and left {names} without {files.certificate}; "
            "nothing uses them yet: delete them and run the command again",
            message_ja=f"以前の実行が途中で止まり {names} だけが残っています"
            f"({files.certificate} がありません)。使われていないので削除してやり直してください",
            path=str(present[0]),
        )
    if present:
        raise AlreadyExists(
            f"{present[0]} already exists; a link identity is never overwritten",
            message_ja=f"{present[0]} は既にあります。連携鍵は上書きしません",
            path=str(present[0]),
        )
    key, certificate = make_link_identity(name, now=now, days=days)
    passphrase = secrets.token_urlsafe(32).encode("ascii")
    pem_key = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    # Each file is written whole or not at all; the certificate, the part that is handed
    # to the CA, comes last.
    written: list[Path] = []
    try:
        for path, data, mode in (
            (files.passphrase, passphrase + b"\n", 0o600),
            (files.key, pem_key, 0o600),
            (files.certificate, certificate.public_bytes(serialization.Encoding.PEM), 0o644),
        ):
            _write_new(path, data, mode)
            written.append(path)
    except ConfigError as exc:  # the folder cannot be written (write_new says why)
        for path in written:  # all three files or none
            path.unlink(missing_ok=True)
        raise Refused(
            f"cannot write the link identity in {folder}: {exc.message}",
            message_ja=f"{folder} に連携鍵を書き込めません: {exc.message_ja}",
            path=str(folder),
        ) from exc
    return LinkIdentity(key=key, certificate=certificate), files


def load_ca_certificate(link: LinkSettings) -> x509.Certificate:
    """The issuing CA certificate results and CRLs are checked with.

    ``link.ca_certificate`` when set; in inline mode the CA home's own certificate otherwise.
    """
    path = link.ca_certificate
    if path is None and link.mode == "inline" and link.ca_home is not None:
        from ra.ca_link.inline_ca import ca_certificate_path

        path = ca_certificate_path(link)
    data = _read(path, "issuing CA certificate", "発行 CA 証明書")
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise ConfigError(
            f"{path}: not a certificate (PEM or DER)",
            message_ja=f"{path}: 証明書(PEM または DER)として読めません",
        ) from exc
