"""CA certificates (root and issuing CA) for the key ceremonies, issued in two steps.

RFC 5280 §4.2.1.9 (basicConstraints: CA, critical; the issuing CA's pathLenConstraint 0),
§4.2.1.3 (keyUsage keyCertSign + cRLSign, critical; the issuing CA also has
digitalSignature because it signs result batches), §4.2.1.1-2 (AKI, SKI), and for the issuing
CA the root's CRL distribution point (§4.2.1.13), AIA caIssuers (§4.2.2.1) and the
federation's certificate policy (§4.2.1.4).  As for office certificates (docs/product.md §2), the
draft is signed with a throwaway key of the issuer's kind and linted with pkilint (a warning stops
the ceremony); only then does the real key sign the same TBS.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from ca import lint
from ca.ceremony_config import FederationSpec
from ca.certasm import certificate_from_tbs, throwaway_key
from ca.serials import new_serial
from signer.keys import SigningKey


def build_ca_certificate(
    *,
    common_name: str,
    federation: FederationSpec,
    validity: dt.timedelta,
    subject_key: SigningKey,
    issuer_key: SigningKey,
    issuer_cert: x509.Certificate | None,
    now: dt.datetime,
) -> x509.Certificate:
    """A linted CA certificate signed by ``issuer_key`` (self-signed when no ``issuer_cert``).

    Raises :class:`shomei.errors.VerificationFailed` when pkilint finds anything of WARNING
    severity or worse; then nothing was signed with the real key.
    """
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, federation.name),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    not_after = now + validity
    if issuer_cert is not None:
        not_after = min(not_after, issuer_cert.not_valid_after_utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key)
    issuer_ski = (
        ski
        if issuer_cert is None
        else issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer_cert is None else issuer_cert.subject)
        .public_key(subject_key.public_key)
        .serial_number(new_serial())
        .not_valid_before(now)
        .not_valid_after(not_after)
        .add_extension(
            x509.BasicConstraints(ca=True, path_length=None if issuer_cert is None else 0),
            critical=True,
        )
        .add_extension(
            x509.KeyUsage(
                # The issuing CA also signs result batches (CMS), hence digitalSignature.
                digital_signature=issuer_cert is not None,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
            critical=False,
        )
    )
    if issuer_cert is not None:
        base = federation.crl_base_url.rstrip("/")
        builder = (
            builder.add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            full_name=[x509.UniformResourceIdentifier(f"{base}/root.crl")],
                            relative_name=None,
                            reasons=None,
                            crl_issuer=None,
                        )
                    ]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
                            x509.UniformResourceIdentifier(
                                f"{federation.ca_base_url.rstrip('/')}/root.crt"
                            ),
                        )
                    ]
                ),
                critical=False,
            )
            .add_extension(
                x509.CertificatePolicies(
                    [x509.PolicyInformation(x509.ObjectIdentifier(federation.policy_oid), None)]
                ),
                critical=False,
            )
        )
    # Step one: throwaway signature and lint; step two: the real key signs the same TBS.
    draft = builder.sign(throwaway_key(issuer_key.public_key), hashes.SHA256())
    lint.require_clean(lint.lint_certificate(draft.public_bytes(serialization.Encoding.DER)))
    return certificate_from_tbs(draft.tbs_certificate_bytes, issuer_key)
