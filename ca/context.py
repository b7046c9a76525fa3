"""An opened CA: its settings, certificates, signing key, ledger and profiles, in one object.

:func:`open_ca` is the one way the CLI and the inline RA mode get a :class:`CA`: it reads the
certificates named in ``ca.toml`` first (cheap, and a mistake there should not cost the
custodians a round of typing shares), then opens the key with the custodians' shares or the
token PIN, checks that the key belongs to the CA certificate (RFC 5280 §4.1.2.7: the subject
public key is what relying parties verify against), and opens the ledger.

The ledger is opened and checked (:func:`open_ledger`: it exists, is sound, is not older than
its record or than the CRL folder) before the key, so that a lost or older ledger stops the
command before anyone types a share; the CLI opens it even before it asks for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ca.crlcheck import crl_folder, newest_crl
from ca.custody.shares import Share
from ca.ledger import Ledger
from ca.settings import CASettings
from contract.profile import Profile, load_profiles
from shomei.errors import ConfigError, CustodyError
from shomei.files import MAX_OBJECT, read_bytes
from signer.keys import SigningKey


class CA:
    """One opened issuing CA (or single-tier root).  Close it to release the ledger."""

    def __init__(
        self,
        *,
        settings: CASettings,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate],
        key: SigningKey,
        ledger: Ledger,
        trusted_ra: Sequence[x509.Certificate] = (),
        profiles: Mapping[str, Profile] | None = None,
    ) -> None:
        _check_key(certificate, key)
        self.settings = settings
        self.certificate = certificate
        self.chain = tuple(chain)  # above the CA certificate, up to the root
        self.key = key
        self.ledger = ledger
        self.trusted_ra = tuple(trusted_ra)
        self._profiles = None if profiles is None else dict(profiles)

    @property
    def profiles(self) -> Mapping[str, Profile]:
        """The certificate profiles in force, loaded on first use (a CRL needs none)."""
        if self._profiles is None:
            self._profiles = load_profiles(self.settings.profiles_dir)
        return self._profiles

    @property
    def crl_dir(self) -> Path:
        """Where every CRL is kept as ``NUMBER.crl`` (``crl/`` beside the ledger by default)."""
        return crl_folder(self.settings)

    @property
    def full_chain(self) -> tuple[x509.Certificate, ...]:
        """The CA certificate followed by its chain: what a result batch carries."""
        return (self.certificate, *self.chain)

    def close(self) -> None:
        self.ledger.close()

    def __enter__(self) -> CA:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _spki(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _check_key(certificate: x509.Certificate, key: SigningKey) -> None:
    if _spki(key.public_key) != _spki(certificate.public_key()):
        raise CustodyError(
            "the opened key does not belong to the CA certificate "
            f"{certificate.subject.rfc4514_string()}",
            message_ja="開いた鍵が CA 証明書の鍵と一致しません",
        )


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM (one or more) or DER file, or in the *.pem of a folder."""
    if path.is_dir():
        return [c for p in sorted(path.glob("*.pem")) for c in load_certificates(p)]
    data = read_bytes(path, what="certificate file", what_ja="証明書ファイル", limit=MAX_OBJECT)
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise ConfigError(
            f"{path}: not a certificate (PEM or DER)",
            message_ja=f"{path}: 証明書(PEM または DER)として読めません",
            path=str(path),
        ) from exc


def _one_certificate(path: Path) -> x509.Certificate:
    certs = load_certificates(path)
    if len(certs) != 1:
        raise ConfigError(
            f"{path}: expected exactly one certificate, found {len(certs)}",
            message_ja=f"{path}: 証明書が 1 つではありません({len(certs)} 個)",
            path=str(path),
        )
    return certs[0]


def _load_parts(
    settings: CASettings,
) -> tuple[x509.Certificate, list[x509.Certificate], list[x509.Certificate]]:
    certificate = _one_certificate(settings.certificate)
    chain = [c for p in settings.chain for c in load_certificates(p)]
    from ca.trust import trusted_link_certificates

    return certificate, chain, trusted_link_certificates(settings)


def open_ledger(settings: CASettings, *, certificate: x509.Certificate | None = None) -> Ledger:
    """The CA's ledger, opened and checked against its record and the CRL folder.

    Needs no key.  Raises :class:`StateError` for a ledger that is missing, damaged, older
    than its record, or that does not know a revocation the newest kept CRL lists.
    """
    certificate = certificate or _one_certificate(settings.certificate)
    ledger = Ledger(settings.ledger)
    try:
        newest_crl(ledger, crl_folder(settings), certificate)
    except BaseException:
        ledger.close()
        raise
    return ledger


def open_ca_with_key(settings: CASettings, key: SigningKey, *, ledger: Ledger | None = None) -> CA:
    """A :class:`CA` around an already opened ``key`` (ceremonies, inline mode, tests).

    ``ledger``, when given, was opened with :func:`open_ledger`; the CA then owns it.
    """
    try:
        certificate, chain, trusted = _load_parts(settings)
        _check_key(certificate, key)
        if ledger is None:
            ledger = open_ledger(settings, certificate=certificate)
    except BaseException:
        if ledger is not None:
            ledger.close()
        raise
    return CA(
        settings=settings,
        certificate=certificate,
        chain=chain,
        key=key,
        ledger=ledger,
        trusted_ra=trusted,
    )


def open_ca(
    settings: CASettings,
    *,
    shares: Sequence[Share] = (),
    pin: str | None = None,
    ledger: Ledger | None = None,
) -> CA:
    """Open the CA of ``settings``: certificates, then the ledger, then the key (shares or PIN).

    Raises :class:`NotFound`/:class:`ConfigError` for missing or unreadable certificates,
    :class:`StateError` for a ledger that may not be used (:func:`open_ledger`) and
    :class:`CustodyError` when the key cannot be opened or is not the CA certificate's.
    ``ledger``, when given, was opened with :func:`open_ledger`; the CA then owns it.
    """
    from ca.custody import open_ca_key

    # Fail on a bad certificate or ledger before the key is opened.
    certificate, _, _ = _load_parts(settings)
    if ledger is None:
        ledger = open_ledger(settings, certificate=certificate)
    try:
        key = open_ca_key(settings.key, shares=shares, pin=pin)
    except BaseException:
        ledger.close()
        raise
    return open_ca_with_key(settings, key, ledger=ledger)
