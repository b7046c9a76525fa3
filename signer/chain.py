"""Certification path validation of a signer certificate (RFC 5280 §6.1), by pyhanko-certvalidator.

The path is built from the signer certificate through the intermediates that came with the
signature (or were configured) to one of the trust anchors, and validated at a given time:
signatures, names, basic constraints, CA key usage, validity, policies and critical extensions.
(The verifier validates at the verification time and then checks the signing time against the
validity window of the path, so that one shared context serves every claim.  Intermediates
given with one signature stay in the shared context and may complete a later path; they are
hints only, as a path must still end at a trust anchor.)
Revocation is deliberately left out here (``soft-fail`` with no revocation data and fetching
off): :mod:`signer.verifier` checks it against the CRL index, which is O(1) per serial where
certvalidator scans the CRL on every check.  The result is the path, anchor first, or a
:class:`signer.verdict.Verdict` saying what failed.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import os
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko_certvalidator import CertificateValidator, ValidationContext, errors

from shomei.errors import MalformedInput
from signer.verdict import Verdict, invalid

T = TypeVar("T")


class PathValidator:
    """Validate many signer certificates against the same anchors, cheaply.

    A ValidationContext and an event loop cost more than the validation of one more leaf under
    an already validated CA (measured: ~2.7 ms fresh against ~0.4 ms shared), so one context per
    validation time is kept and reused, and the coroutines run on one loop per process.
    """

    def __init__(
        self, anchors: Sequence[x509.Certificate], untrusted: Sequence[x509.Certificate] = ()
    ) -> None:
        self._anchors = [ax509.Certificate.load(a.public_bytes(Encoding.DER)) for a in anchors]
        self._untrusted = [ax509.Certificate.load(c.public_bytes(Encoding.DER)) for c in untrusted]
        self._contexts: dict[dt.datetime, ValidationContext] = {}

    def _context(self, moment: dt.datetime) -> ValidationContext:
        context = self._contexts.get(moment)
        if context is None:
            if len(self._contexts) >= 8:
                self._contexts.clear()  # the moments are few: now, and rare retries
            context = ValidationContext(
                trust_roots=self._anchors,
                other_certs=self._untrusted,
                moment=moment,
                revocation_mode="soft-fail",
                allow_fetching=False,
            )
            self._contexts[moment] = context
        return context

    def validate(
        self,
        signer_der: bytes,
        *,
        intermediates: Sequence[ax509.Certificate],
        moment: dt.datetime,
    ) -> tuple[x509.Certificate, ...] | Verdict:
        """The validated path (anchor first, signer last) at ``moment``, or why there is none."""
        try:
            validator = CertificateValidator(
                ax509.Certificate.load(signer_der),
                intermediate_certs=list(intermediates),
                validation_context=self._context(moment),
            )
            path = _run(validator.async_validate_path())
            ders = [c.dump() for c in path.iter_certs(include_root=True)]
            return tuple(x509.load_der_x509_certificate(d) for d in ders)
        except errors.PathBuildingError:
            return invalid(
                "untrusted",
                "the signer certificate does not chain to a trusted root (untrusted issuer)",
                "署名者の証明書が信頼できる認証局につながりません(発行者が信頼されていません)",
            )
        except errors.ExpiredError:
            return invalid(
                "expired",
                f"a certificate of the chain had expired at {_when(moment)}",
                f"{_when(moment)} に証明書の有効期限が切れていました",
            )
        except errors.NotYetValidError:
            return invalid(
                "not_yet_valid",
                f"a certificate of the chain was not yet valid at {_when(moment)}",
                f"{_when(moment)} に証明書がまだ有効になっていませんでした",
            )
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
                "a certificate attached to the signature cannot be decoded (broken DER): the "
                "signature file is damaged, or was made by faulty software",
                message_ja="署名に添付された証明書を復号できません(DER が壊れています)。"
                "署名ファイルの破損、または作成ソフトの不具合です",
            ) from exc


def validate(
    signer_der: bytes,
    *,
    intermediates: Sequence[ax509.Certificate],
    anchors: Sequence[x509.Certificate],
    moment: dt.datetime,
) -> tuple[x509.Certificate, ...] | Verdict:
    """One validation with a context of its own (see :class:`PathValidator` for many)."""
    return PathValidator(anchors).validate(signer_der, intermediates=intermediates, moment=moment)


_LOOP: tuple[int, asyncio.AbstractEventLoop] | None = None


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on this process's loop (a forked worker makes a loop of its own)."""
    global _LOOP
    if _LOOP is None or _LOOP[0] != os.getpid():
        _LOOP = (os.getpid(), asyncio.new_event_loop())
        atexit.register(_LOOP[1].close)
    return _LOOP[1].run_until_complete(coroutine)


def _when(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


__all__ = ["validate"]
