"""Certification path validation of a signer certificate (RFC 5280 §6.1), by pyhanko-certvalidator.

The path is built from the signer certificate through the intermediates that came with the
signature (or were configured) to one of the trust anchors, and validated at the signing time:
signatures, names, basic constraints, CA key usage, validity, policies and critical extensions.
Revocation is deliberately left out here (``soft-fail`` with no revocation data and fetching
off): :mod:`signer.verifier` checks it against the CRL index, which is O(1) per serial where
certvalidator scans the CRL on every check.  The result is the path, anchor first, or a
:class:`signer.verdict.Verdict` saying what failed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko_certvalidator import CertificateValidator, ValidationContext, errors

from shomei.errors import MalformedInput
from signer.verdict import Verdict, invalid


def validate(
    signer_der: bytes,
    *,
    intermediates: Sequence[ax509.Certificate],
    anchors: Sequence[x509.Certificate],
    moment: dt.datetime,
) -> tuple[x509.Certificate, ...] | Verdict:
    """The validated path (anchor first, signer last) at ``moment``, or why there is none."""
    context = ValidationContext(
        trust_roots=[ax509.Certificate.load(a.public_bytes(Encoding.DER)) for a in anchors],
        other_certs=list(intermediates),
        moment=moment,
        revocation_mode="soft-fail",
        allow_fetching=False,
    )
    validator = CertificateValidator(
        ax509.Certificate.load(signer_der),
        intermediate_certs=list(intermediates),
        validation_context=context,
    )
    try:
        path = asyncio.run(validator.async_validate_path())
    except errors.PathBuildingError:
        return invalid(
            "untrusted",
            "the signer certificate does not chain to a trusted root (untrusted issuer)",
            "署名者の証明書が信頼できる認証局につながりません(発行者が信頼されていません)",
        )
    except errors.ExpiredError:
        return invalid(
            "expired",
            f"a certificate of the chain had expired at the signing time {_when(moment)}",
            f"署名時刻 {_when(moment)} に証明書の有効期限が切れていました",
        )
    except errors.NotYetValidError:
        return invalid(
            "not_yet_valid",
            f"a certificate of the chain was not yet valid at the signing time {_when(moment)}",
            f"署名時刻 {_when(moment)} に証明書がまだ有効になっていませんでした",
        )
    except errors.RevokedError:  # not reached without revocation data; kept for completeness
        return invalid("revoked", "a certificate of the chain is revoked", "証明書が失効しています")
    except (errors.PathValidationError, errors.DisallowedAlgorithmError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return invalid(
            "bad_chain",
            f"the certificate chain is not valid: {detail}",
            f"証明書チェーンが正しくありません: {detail}",
        )
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        # asn1crypto parses lazily: a broken attached certificate surfaces only here.
        raise MalformedInput(
            f"an attached certificate is unreadable ({type(exc).__name__})",
            message_ja="添付された証明書が読めません",
        ) from exc
    ders = [c.dump() for c in path.iter_certs(include_root=True)]
    return tuple(x509.load_der_x509_certificate(d) for d in ders)


def _when(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


__all__ = ["validate"]
