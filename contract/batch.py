"""The RA↔CA batch link (docs/product.md §10): request batches from the RA, results from the CA.

Both are attached CMS SignedData (RFC 5652 §5, made by :func:`signer.cms.sign`) over a UTF-8
JSON document; docs/batch-format.md defines the documents with examples.  A request batch is
signed by the RA's link certificate, which the CA pins by configuration
(``CASettings.trusted_ra``) and compares byte for byte: no chain, no name matching.  A result
batch is signed with the issuing CA key, and the RA checks it against the CA certificate it
knows, again byte for byte.

Reading is strict, because a batch crosses an air gap and nobody looks inside it: the size is
checked before parsing, the signature before the JSON, and then every key, type and id (an
unknown key, a repeated key, a wrong type or a duplicate request id is
:class:`~shomei.errors.MalformedInput`; a bad signature or an unpinned signer is
:class:`~shomei.errors.VerificationFailed`).  Revocation reasons are the RFC 5280 §5.3.1
reason names, spelled as :class:`cryptography.x509.ReasonFlags` values.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

from contract.batchjson import Fields, load_json, malformed
from shomei.clock import require_aware
from shomei.errors import MalformedInput, Refused, VerificationFailed
from signer import cms
from signer.keys import SigningKey, SoftwareKey

REQUEST_FORMAT = "shomei-request-batch"
RESULT_FORMAT = "shomei-result-batch"
VERSION = 1
MAX_REQUEST_BYTES = 32 * 1024 * 1024
MAX_REQUESTS = 20_000
# A result carries the whole CRL, which after years of operation lists a million entries.
MAX_RESULT_BYTES = 512 * 1024 * 1024
MAX_ID_LENGTH = 128
# RFC 5280 §5.3.1 reasons an RA may ask for.  certificateHold/removeFromCRL (holds and delta
# CRLs) and the CA/AA compromise reasons (not about an office certificate) are not accepted.
REVOCATION_REASONS = frozenset(
    {
        "unspecified",
        "keyCompromise",
        "affiliationChanged",
        "superseded",
        "cessationOfOperation",
        "privilegeWithdrawn",
    }
)
REQUESTERS = frozenset({"office", "agent", "prefecture", "federation"})
# Matched with fullmatch: "$" alone would let a trailing newline through.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")


@dataclass(frozen=True)
class IssueItem:
    """Issue a certificate for ``csr_der`` under ``profile`` for one office."""

    request_id: str
    csr_der: bytes
    office_number: str
    office_name: str
    profile: str = "office"


@dataclass(frozen=True)
class RevokeItem:
    """Revoke the certificate ``serial`` of this CA (``reason``: a ReasonFlags value)."""

    request_id: str
    serial: int
    reason: str
    revoked_at: dt.datetime
    requested_by: str


RequestItem = IssueItem | RevokeItem


@dataclass(frozen=True)
class RequestBatch:
    batch_id: str
    created_at: dt.datetime
    ra_name: str
    requests: tuple[RequestItem, ...]
    sha256: str  # of the whole signed batch file, hex
    signer: x509.Certificate


@dataclass(frozen=True)
class Issued:
    request_id: str
    certificate: x509.Certificate


@dataclass(frozen=True)
class IssueRefused:
    request_id: str
    code: str
    message: str
    message_ja: str


@dataclass(frozen=True)
class Revoked:
    request_id: str
    serial: int
    revoked_at: dt.datetime


@dataclass(frozen=True)
class RevokeRefused:
    request_id: str
    serial: int
    code: Literal["unknown_serial", "already_revoked"]
    message: str
    message_ja: str


@dataclass(frozen=True)
class Abandoned:
    """The CA abandoned the batch before it signed anything for this issue request.

    Nothing was issued and nothing was refused: the RA may send the request again in a new
    batch (``shomei ra re-request``); see docs/batch-format.md.
    """

    request_id: str
    message: str
    message_ja: str


ResultItem = Issued | IssueRefused | Revoked | RevokeRefused | Abandoned


@dataclass(frozen=True)
class ResultBatch:
    batch_id: str
    request_sha256: str
    created_at: dt.datetime
    ca_name: str
    results: tuple[ResultItem, ...]
    crl_der: bytes
    chain: tuple[x509.Certificate, ...]


# -- writing ---------------------------------------------------------------------------------


def _time(value: dt.datetime) -> str:
    return require_aware(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


def _sign(
    document: dict[str, Any], key: SigningKey, certificate: x509.Certificate, now: dt.datetime
) -> bytes:
    # A batch signed by a key that is not the certificate's would be refused on arrival,
    # after a trip across the air gap; refuse it here instead.
    spki = Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    if key.public_key.public_bytes(*spki) != certificate.public_key().public_bytes(*spki):
        raise Refused(
            "the signing key does not belong to the given certificate",
            message_ja="署名鍵が指定された証明書の鍵と一致しません",
        )
    return cms.sign(
        _encode(document), key=key, certificate=certificate, detached=False, signing_time=now
    )


def write_request_batch(
    requests: Sequence[RequestItem],
    *,
    ra_name: str,
    key: SigningKey,
    certificate: x509.Certificate,
    now: dt.datetime,
    batch_id: str | None = None,
) -> bytes:
    """A signed request batch (DER CMS) of ``requests``, by the RA link key ``key``."""
    items: list[dict[str, Any]] = []
    for item in requests:
        if isinstance(item, IssueItem):
            items.append(
                {
                    "type": "issue",
                    "id": item.request_id,
                    "profile": item.profile,
                    "csr": _b64(item.csr_der),
                    "office_number": item.office_number,
                    "office_name": item.office_name,
                }
            )
        else:
            items.append(
                {
                    "type": "revoke",
                    "id": item.request_id,
                    "serial": format(item.serial, "x"),
                    "reason": item.reason,
                    "revoked_at": _time(item.revoked_at),
                    "requested_by": item.requested_by,
                }
            )
    document = {
        "format": REQUEST_FORMAT,
        "version": VERSION,
        "batch_id": batch_id or str(uuid.uuid4()),
        "created_at": _time(now),
        "ra": ra_name,
        "requests": items,
    }
    # Read back what we wrote: the RA must never send a batch the CA would refuse as malformed.
    _parse_request_document(document)
    return _sign(document, key, certificate, now)


def write_result_batch(
    *,
    request: RequestBatch,
    results: Sequence[ResultItem],
    crl_der: bytes,
    chain: Sequence[x509.Certificate],
    ca_name: str,
    key: SigningKey,
    certificate: x509.Certificate,
    now: dt.datetime,
) -> bytes:
    """The signed result batch answering ``request`` (DER CMS, signed by the CA key).

    ``chain`` is the CA chain from the issuing CA certificate up to the root.
    """
    items: list[dict[str, Any]] = []
    for result in results:
        if isinstance(result, Issued):
            items.append(
                {
                    "id": result.request_id,
                    "outcome": "issued",
                    "serial": format(result.certificate.serial_number, "x"),
                    "certificate": _b64(_der(result.certificate)),
                }
            )
        elif isinstance(result, IssueRefused):
            items.append(
                {
                    "id": result.request_id,
                    "outcome": "refused",
                    "code": result.code,
                    "message": result.message,
                    "message_ja": result.message_ja,
                }
            )
        elif isinstance(result, Revoked):
            items.append(
                {
                    "id": result.request_id,
                    "outcome": "revoked",
                    "serial": format(result.serial, "x"),
                    "revoked_at": _time(result.revoked_at),
                }
            )
        elif isinstance(result, Abandoned):
            items.append(
                {
                    "id": result.request_id,
                    "outcome": "abandoned",
                    "message": result.message,
                    "message_ja": result.message_ja,
                }
            )
        else:
            items.append(
                {
                    "id": result.request_id,
                    "outcome": "revoke_refused",
                    "serial": format(result.serial, "x"),
                    "code": result.code,
                    "message": result.message,
                    "message_ja": result.message_ja,
                }
            )
    document = {
        "format": RESULT_FORMAT,
        "version": VERSION,
        "batch_id": request.batch_id,
        "request_sha256": request.sha256,
        "created_at": _time(now),
        "ca": ca_name,
        "results": items,
        "crl": _b64(crl_der),
        "chain": [_b64(_der(c)) for c in chain],
    }
    return _sign(document, key, certificate, now)


# -- reading ---------------------------------------------------------------------------------


def _header(document: dict[str, Any], fmt: str, keys: set[str]) -> Fields:
    if document.get("format") != fmt:
        raise malformed(f"format is not {fmt!r}", f"format が {fmt!r} ではありません")
    if document.get("version") != VERSION:
        raise malformed(
            f"unsupported version {document.get('version')!r} (this software reads {VERSION})",
            f"未対応の版です({document.get('version')!r})",
        )
    return Fields(document, "batch", keys | {"format", "version"})


def _parse_request_document(
    document: dict[str, Any],
) -> tuple[str, dt.datetime, str, tuple[RequestItem, ...]]:
    top = _header(document, REQUEST_FORMAT, {"batch_id", "created_at", "ra", "requests"})
    batch_id = top.text("batch_id", limit=36)
    try:
        canonical = str(uuid.UUID(batch_id))
    except ValueError as exc:
        raise malformed("batch_id is not a UUID", "batch_id が UUID ではありません") from exc
    if canonical != batch_id:
        raise malformed(
            "batch_id is not a lower-case UUID", "batch_id が小文字の UUID ではありません"
        )
    created_at = top.time("created_at")
    ra_name = top.text("ra", limit=256)
    raw_items = top.array("requests")
    if len(raw_items) > MAX_REQUESTS:
        raise malformed(
            f"{len(raw_items)} requests (at most {MAX_REQUESTS} per batch)",
            f"依頼が {len(raw_items)} 件あります(1 バッチ {MAX_REQUESTS} 件まで)",
        )
    items: list[RequestItem] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_items):
        where = f"requests[{i}]"
        kind = raw.get("type") if isinstance(raw, dict) else None
        if kind == "issue":
            f = Fields(raw, where, {"type", "id", "profile", "csr", "office_number", "office_name"})
            item: RequestItem = IssueItem(
                request_id=f.text("id", pattern=_ID, limit=MAX_ID_LENGTH),
                profile=f.text("profile", pattern=_ID, limit=64),
                csr_der=f.b64("csr", limit=64 * 1024),
                office_number=f.text("office_number", limit=64),
                office_name=f.text("office_name", limit=256),
            )
        elif kind == "revoke":
            f = Fields(raw, where, {"type", "id", "serial", "reason", "revoked_at", "requested_by"})
            item = RevokeItem(
                request_id=f.text("id", pattern=_ID, limit=MAX_ID_LENGTH),
                serial=f.serial("serial"),
                reason=f.choice("reason", REVOCATION_REASONS),
                revoked_at=f.time("revoked_at"),
                requested_by=f.choice("requested_by", REQUESTERS),
            )
        else:
            raise malformed(
                f"{where}.type must be 'issue' or 'revoke'", f"{where}.type は issue か revoke です"
            )
        if item.request_id in seen:
            raise malformed(
                f"request id {item.request_id!r} appears twice",
                f"依頼 ID {item.request_id!r} が重複しています",
                request_id=item.request_id,
            )
        seen.add(item.request_id)
        items.append(item)
    return batch_id, created_at, ra_name, tuple(items)


def _verified(
    data: bytes, limit: int, pinned: Sequence[x509.Certificate], who: str, who_ja: str
) -> cms.CmsSignature:
    if len(data) > limit:
        raise malformed(
            f"{len(data)} bytes is over the limit of {limit}",
            f"{len(data)} バイトは上限 {limit} バイトを超えています",
        )
    _check_envelope(data)
    signature = cms.verify(data)
    signer_der = _der(signature.signer)
    if not any(_der(c) == signer_der for c in pinned):
        raise VerificationFailed(
            f"the batch is signed by {signature.signer.subject.rfc4514_string()}, "
            f"which is not a {who} this CA trusts",
            message_ja=f"バッチの署名者({signature.signer.subject.rfc4514_string()})は"
            f"信頼された{who_ja}ではありません",
        )
    return signature


def _check_envelope(data: bytes) -> None:
    """Refuse CMS fields :func:`signer.cms.verify` does not look at, so no byte goes unchecked.

    The signature covers the content and the signed attributes only; a batch is written by
    :func:`signer.cms.sign` alone, so anything else must be exactly what it writes (DER, one
    SHA-256 digest algorithm, one certificate, no CRLs, no unsigned attributes).
    """
    envelope_ja = "CMS の構造が想定と異なります"
    try:
        # asn1crypto can fail in odd ways on hostile DER (an AttributeError for a tag that
        # turned into ObjectDescriptor); every such failure is "malformed", never a traceback.
        sd = cms.parse_signed_data(data)
        si = sd["signer_infos"][0] if len(sd["signer_infos"]) == 1 else None
        sha256 = {"algorithm": "sha256", "parameters": None}
        ok = (
            sd["version"].native == "v1"
            and [a.native for a in sd["digest_algorithms"]] in ([sha256], [{"algorithm": "sha256"}])
            and sd["encap_content_info"]["content_type"].native == "data"
            and len(sd["certificates"]) == 1
            and not sd["crls"].native
            and si is not None
            and si["version"].native == "v1"
            and si["sid"].name == "issuer_and_serial_number"
            and si["digest_algorithm"]["algorithm"].native == "sha256"
            and si["signature_algorithm"]["algorithm"].native
            in ("rsassa_pkcs1v15", "sha256_rsa", "sha256_ecdsa")
            and si["signature_algorithm"]["parameters"].native is None
            and not si["unsigned_attrs"].native
        )
        # Load the certificate here, where every decoding error is caught and reported; what
        # cryptography only warns about (a negative serial, RFC 5280 §4.1.2.2) is refused too.
        with warnings.catch_warnings():
            warnings.simplefilter("error", CryptographyDeprecationWarning)
            x509.load_der_x509_certificate(sd["certificates"][0].chosen.dump())
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        OverflowError,
        RecursionError,
        x509.InvalidVersion,
        CryptographyDeprecationWarning,
    ) as exc:
        raise MalformedInput(
            "the batch's CMS envelope is not as Shomei writes it", message_ja=envelope_ja
        ) from exc
    if not ok:
        raise MalformedInput(
            "the batch's CMS envelope is not as Shomei writes it", message_ja=envelope_ja
        )


def read_request_batch(
    data: bytes, *, trusted: Sequence[x509.Certificate], limit: int = MAX_REQUEST_BYTES
) -> RequestBatch:
    """Verify and parse a request batch signed by one of the ``trusted`` RA link certificates."""
    signature = _verified(data, limit, trusted, "RA link certificate", "RA 連携証明書")
    batch_id, created_at, ra_name, items = _parse_request_document(load_json(signature.content))
    return RequestBatch(
        batch_id=batch_id,
        created_at=created_at,
        ra_name=ra_name,
        requests=items,
        sha256=hashlib.sha256(data).hexdigest(),
        signer=signature.signer,
    )


def read_result_batch(
    data: bytes, *, ca_certificate: x509.Certificate, limit: int = MAX_RESULT_BYTES
) -> ResultBatch:
    """Verify and parse a result batch signed with the key of ``ca_certificate``.

    Each issued certificate and the CRL must also carry a valid signature of that CA.
    """
    signature = _verified(data, limit, [ca_certificate], "CA certificate", "CA 証明書")
    top = _header(
        load_json(signature.content),
        RESULT_FORMAT,
        {"batch_id", "request_sha256", "created_at", "ca", "results", "crl", "chain"},
    )
    results: list[ResultItem] = []
    seen: set[str] = set()
    for i, raw in enumerate(top.array("results")):
        where = f"results[{i}]"
        outcome = raw.get("outcome") if isinstance(raw, dict) else None
        result: ResultItem
        if outcome == "issued":
            f = Fields(raw, where, {"id", "outcome", "serial", "certificate"})
            cert = _certificate(f.b64("certificate"), where)
            _check_issued_by(cert, ca_certificate, where)
            if cert.serial_number != f.serial("serial"):
                raise malformed(
                    f"{where}: serial differs from the certificate",
                    f"{where}: シリアル番号が証明書と一致しません",
                )
            result = Issued(f.text("id", pattern=_ID, limit=MAX_ID_LENGTH), cert)
        elif outcome == "refused":
            f = Fields(raw, where, {"id", "outcome", "code", "message", "message_ja"})
            result = IssueRefused(
                f.text("id", pattern=_ID, limit=MAX_ID_LENGTH),
                f.text("code", pattern=_ID, limit=64),
                f.text("message", limit=4096),
                f.text("message_ja", limit=4096),
            )
        elif outcome == "revoked":
            f = Fields(raw, where, {"id", "outcome", "serial", "revoked_at"})
            result = Revoked(
                f.text("id", pattern=_ID, limit=MAX_ID_LENGTH),
                f.serial("serial"),
                f.time("revoked_at"),
            )
        elif outcome == "abandoned":
            f = Fields(raw, where, {"id", "outcome", "message", "message_ja"})
            result = Abandoned(
                f.text("id", pattern=_ID, limit=MAX_ID_LENGTH),
                f.text("message", limit=4096),
                f.text("message_ja", limit=4096),
            )
        elif outcome == "revoke_refused":
            f = Fields(raw, where, {"id", "outcome", "serial", "code", "message", "message_ja"})
            code = f.choice("code", frozenset({"unknown_serial", "already_revoked"}))
            result = RevokeRefused(
                f.text("id", pattern=_ID, limit=MAX_ID_LENGTH),
                f.serial("serial"),
                "unknown_serial" if code == "unknown_serial" else "already_revoked",
                f.text("message", limit=4096),
                f.text("message_ja", limit=4096),
            )
        else:
            raise malformed(f"{where}.outcome is not known", f"{where}.outcome が不明です")
        if result.request_id in seen:
            raise malformed(
                f"request id {result.request_id!r} appears twice",
                f"依頼 ID {result.request_id!r} が重複しています",
            )
        seen.add(result.request_id)
        results.append(result)
    crl_der = top.b64("crl")
    try:
        crl = x509.load_der_x509_crl(crl_der)
        crl_ok = crl.issuer == ca_certificate.subject and crl.is_signature_valid(
            ca_certificate.public_key()  # type: ignore[arg-type]
        )
    except ValueError as exc:
        raise malformed("the CRL is not DER", "CRL が DER として読めません") from exc
    if not crl_ok:
        raise VerificationFailed(
            "the CRL in the result batch is not signed by the CA",
            message_ja="結果バッチの CRL は CA の署名ではありません",
        )
    chain = tuple(
        _certificate(Fields({"c": c}, f"chain[{i}]", {"c"}).b64("c"), f"chain[{i}]")
        for i, c in enumerate(top.array("chain"))
    )
    return ResultBatch(
        batch_id=top.text("batch_id", limit=36),
        request_sha256=top.text("request_sha256", pattern=re.compile(r"[0-9a-f]{64}"), limit=64),
        created_at=top.time("created_at"),
        ca_name=top.text("ca", limit=256),
        results=tuple(results),
        crl_der=crl_der,
        chain=chain,
    )


def _certificate(der: bytes, where: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise malformed(
            f"{where}: not a DER certificate", f"{where}: DER の証明書として読めません"
        ) from exc


def _check_issued_by(cert: x509.Certificate, ca: x509.Certificate, where: str) -> None:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise VerificationFailed(
            f"{where}: the certificate is not signed by the CA",
            message_ja=f"{where}: 証明書は CA の署名ではありません",
        ) from exc


# -- the RA's link identity ------------------------------------------------------------------


def make_link_identity(
    name: str, *, now: dt.datetime, days: int = 730
) -> tuple[SoftwareKey, x509.Certificate]:
    """A new ECDSA P-256 key and self-signed link certificate for an RA called ``name``.

    The CA pins this exact certificate (``trusted_ra``); being self-signed it asserts nothing
    beyond "batches signed by this key come from the RA the operator installed it for".
    """
    now = require_aware(now)
    if (
        not name.strip()
        or len(name) > 64
        or any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000 for c in name)
    ):
        raise MalformedInput(
            "an RA link name must be 1 to 64 characters, without control characters",
            message_ja="RA 連携名は制御文字を含まない 1〜64 文字でなければなりません",
        )
    private = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Shomei RA link"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(private.public_key()), critical=False
        )
        .sign(private, hashes.SHA256())
    )
    return SoftwareKey(private), cert
