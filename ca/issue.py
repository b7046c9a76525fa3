"""Two-step, linted issuance of office certificates (RFC 5280 §4.1; RFC 2986 for the CSR).

Step one, :func:`prepare`, needs no CA key: it checks the office's PKCS#10 request (parsable,
self-signature valid, key type allowed by the profile), builds the TBSCertificate from the
profile and the subject the RA decided, signs it with a *throwaway* key of the issuer's key
type (only so that the TBS carries the right ``signature`` AlgorithmIdentifier and pkilint
sees a whole certificate), and lints that certificate.  Any finding of WARNING or worse is a
:class:`Refusal`.  Step two, :func:`sign_prepared`, signs the very TBS bytes that were linted
with the real key (:func:`ca.certasm.certificate_from_tbs`), so what is signed is exactly what
was checked.

:func:`issue_many` runs a batch: serials are reserved in the CA ledger before anything is
signed, preparation and linting run in a process pool, and the real key (which may be a
PKCS#11 session) is used only in the calling process.  One refusal never stops the others.
"""

from __future__ import annotations

import collections
import concurrent.futures
import datetime as dt
import functools
import gc
import multiprocessing
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from ca.certasm import certificate_from_tbs, throwaway_key
from ca.lint import blocking_codes, lint_certificate, warm_up
from ca.profile import Profile, key_type_name
from ca.serials import check_serial
from shomei.clock import require_aware
from shomei.errors import MalformedInput, Refused
from signer.keys import SigningKey

RefusalCode = Literal["bad_csr", "weak_key", "lint", "subject", "profile"]

_OFFICE_NUMBER = re.compile(r"[0-9]{10}")  # ASCII digits only: \d would allow full-width
UB_COMMON_NAME = 64  # RFC 5280 Appendix A.1, ub-common-name


@dataclass(frozen=True)
class IssueRequest:
    """One issue request decided by the RA."""

    request_id: str  # the RA's id, unique in its batch
    csr_der: bytes  # PKCS#10; its subject is ignored: the RA decided the subject
    office_number: str
    office_name: str
    profile: str = "office"


@dataclass(frozen=True)
class Prepared:
    """A linted, clean TBSCertificate waiting for the real signature."""

    request_id: str
    serial: int
    tbs_der: bytes
    not_before: dt.datetime
    not_after: dt.datetime
    subject_text: str  # RFC 4514 string


@dataclass(frozen=True)
class Refusal:
    """Why one request was not issued, in English and Japanese."""

    request_id: str
    code: RefusalCode
    message: str
    message_ja: str


class SerialStore(Protocol):
    """What issuance needs from the CA ledger (:mod:`ca.ledger` implements it)."""

    def reserve_many(self, request_ids: Sequence[str]) -> list[int]:
        """New unique serials, in order, durably recorded BEFORE any real signature."""
        ...

    def record_signed_many(self, certificates: Sequence[x509.Certificate]) -> None:
        """Record certificates signed under reserved serials (each carries its own)."""
        ...

    def record_refused(self, request_id: str, serial: int | None, refusal: Refusal) -> None:
        """Record a refusal (``serial`` is None when none was reserved)."""
        ...


# ---------------------------------------------------------------------------------------
# Step one: prepare


def _refuse(request: IssueRequest, code: RefusalCode, message: str, message_ja: str) -> Refusal:
    return Refusal(request.request_id, code, message, message_ja)


def _check_subject(request: IssueRequest) -> Refusal | None:
    if not isinstance(request.office_number, str) or not _OFFICE_NUMBER.fullmatch(
        request.office_number
    ):
        return _refuse(
            request,
            "subject",
            f"the office number must be 10 digits, not {request.office_number!r}",
            f"事業所番号は半角数字 10 桁でなければなりません({request.office_number!r})",
        )
    name = request.office_name
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        return _refuse(
            request,
            "subject",
            "the office name must not be empty or start or end with spaces",
            "事業所名が空か、前後に空白があります",
        )
    if len(name) > UB_COMMON_NAME:
        return _refuse(
            request,
            "subject",
            f"the office name has {len(name)} characters; the CN allows at most "
            f"{UB_COMMON_NAME} (RFC 5280 Appendix A.1)",
            f"事業所名が {len(name)} 文字あります。CN の上限は {UB_COMMON_NAME} 文字です",
        )
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000 for c in name):
        return _refuse(
            request,
            "subject",
            "the office name contains control characters or unpaired surrogates",
            "事業所名に制御文字などの使えない文字が含まれています",
        )
    return None


def _load_csr(request: IssueRequest) -> x509.CertificateSigningRequest | Refusal:
    data = request.csr_der
    if not isinstance(data, bytes | bytearray) or not data:
        return _refuse(request, "bad_csr", "the CSR is empty", "CSR が空です")
    try:
        if bytes(data).lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(bytes(data))
        return x509.load_der_x509_csr(bytes(data))
    except ValueError:
        return _refuse(
            request,
            "bad_csr",
            "the CSR is not a readable PKCS#10 request",
            "CSR(PKCS#10)として読めません",
        )


def _check_key(
    request: IssueRequest, csr: x509.CertificateSigningRequest, profile: Profile
) -> Refusal | None:
    try:
        public_key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm):
        public_key = None
    kind = key_type_name(public_key)
    if kind is None or not profile.allows(kind):
        described = _describe_key(public_key)
        allowed = ", ".join(profile.key_types)
        return _refuse(
            request,
            "weak_key",
            f"the CSR's key ({described}) is not allowed by profile {profile.name!r} "
            f"(allowed: {allowed})",
            f"CSR の鍵({described})はプロファイル {profile.name!r} で使えません"
            f"(使える鍵: {allowed})",
        )
    return None


def _describe_key(public_key: object) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA-{public_key.key_size}, e={public_key.public_numbers().e}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"EC {public_key.curve.name}"
    if public_key is None:
        return "unsupported algorithm"
    return type(public_key).__name__.removeprefix("_").replace("PublicKey", "")


def _check_self_signature(
    request: IssueRequest, csr: x509.CertificateSigningRequest
) -> Refusal | None:
    # RFC 2986 §3: the signature proves the applicant holds the private key.
    try:
        valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm):
        valid = False
    if not valid:
        return _refuse(
            request,
            "bad_csr",
            "the CSR's self-signature does not verify",
            "CSR の自己署名を検証できません",
        )
    return None


def office_subject(profile: Profile, office_number: str, office_name: str) -> x509.Name:
    """C=JP (PrintableString), O=federation, OU=office number, CN=office name (UTF8String).

    RFC 5280 §4.1.2.6 and Appendix A.1: countryName is a PrintableString; the other
    attributes are DirectoryStrings, for which §4.1.2.4 wants UTF8String.
    """
    # cryptography's defaults are exactly these string types (PrintableString for C,
    # UTF8String for the rest); the tests check the encoding.
    with warnings.catch_warnings():
        # ub-common-name (64) counts characters, as pkilint does; cryptography counts UTF-8
        # bytes, which would cap a Japanese name at 21 kanji.  The character limit is checked
        # by _check_subject and again by pkilint, so cryptography's byte check is relaxed.
        warnings.simplefilter("ignore", UserWarning)
        common_name = x509.NameAttribute(NameOID.COMMON_NAME, office_name, _validate=False)
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, profile.federation),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, office_number),
            common_name,
        ]
    )


def _key_usage(profile: Profile) -> x509.KeyUsage:
    ku = set(profile.extensions.key_usage)
    return x509.KeyUsage(
        digital_signature="digitalSignature" in ku,
        content_commitment="nonRepudiation" in ku,
        key_encipherment="keyEncipherment" in ku,
        data_encipherment="dataEncipherment" in ku,
        key_agreement="keyAgreement" in ku,
        key_cert_sign="keyCertSign" in ku,
        crl_sign="cRLSign" in ku,
        encipher_only="encipherOnly" in ku,
        decipher_only="decipherOnly" in ku,
    )


def _authority_key_id(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    # RFC 5280 §4.2.1.1: the AKI carries the issuer's subject key identifier.
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.public_key()  # type: ignore[arg-type]
        )
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def validity_window(
    profile: Profile, issuer: x509.Certificate, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """(notBefore, notAfter): from ``now`` in whole seconds, clipped to the issuer's notAfter.

    Raises :class:`shomei.errors.Refused` when the issuer cannot issue at ``now`` (not yet
    valid, or expired): no request could be issued, so it is not a per-request refusal.
    """
    not_before = require_aware(now, "now").replace(microsecond=0)
    issuer_end = issuer.not_valid_after_utc
    if not issuer.not_valid_before_utc <= not_before < issuer_end:
        raise Refused(
            f"the issuing CA certificate is not valid at {not_before.isoformat()}",
            message_ja="発行者(CA)証明書がこの日時に有効ではありません",
            now=not_before.isoformat(),
        )
    # RFC 5280 §6.1.3: a certificate outliving its issuer fails path validation at the end.
    return not_before, min(not_before + profile.validity, issuer_end)


def _build(
    subject: x509.Name,
    csr: x509.CertificateSigningRequest,
    *,
    profile: Profile,
    issuer: x509.Certificate,
    serial: int,
    window: tuple[dt.datetime, dt.datetime],
) -> x509.Certificate:
    public_key = csr.public_key()
    ext = profile.extensions
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(window[0])
        .not_valid_after(window[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(profile), critical=ext.key_usage_critical)
        .add_extension(
            x509.ExtendedKeyUsage(ext.eku_oids()), critical=ext.extended_key_usage_critical
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key),
            critical=False,
        )
        .add_extension(_authority_key_id(issuer), critical=False)
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.UniformResourceIdentifier(ext.crl_distribution_point)],
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
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(ext.ca_issuers),
                    )
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.CertificatePolicies(
                [x509.PolicyInformation(x509.ObjectIdentifier(p), None) for p in ext.policies]
            ),
            critical=False,
        )
    )
    return builder.sign(throwaway_key(issuer.public_key()), hashes.SHA256())


def prepare(
    request: IssueRequest,
    *,
    profile: Profile,
    issuer: x509.Certificate,
    serial: int,
    now: dt.datetime,
) -> Prepared | Refusal:
    """Check ``request``, build its TBSCertificate and lint it; no CA key is used.

    Returns :class:`Prepared` or a :class:`Refusal` (``bad_csr``, ``weak_key``, ``subject``,
    ``profile`` or ``lint``).  Raises :class:`shomei.errors.MalformedInput` for a serial that
    RFC 5280 §4.1.2.2 forbids and :class:`shomei.errors.Refused` when the issuer is not valid
    at ``now``: those are faults of the CA, not of the request.
    """
    check_serial(serial)
    window = validity_window(profile, issuer, now)
    refusal = _check_subject(request)
    if refusal is not None:
        return refusal
    loaded = _load_csr(request)
    if isinstance(loaded, Refusal):
        return loaded
    refusal = _check_key(request, loaded, profile) or _check_self_signature(request, loaded)
    if refusal is not None:
        return refusal
    try:
        draft_subject = office_subject(profile, request.office_number, request.office_name)
        draft = _build(
            draft_subject, loaded, profile=profile, issuer=issuer, serial=serial, window=window
        )
    except (ValueError, TypeError) as exc:
        return _refuse(
            request,
            "profile",
            f"profile {profile.name!r} cannot build a certificate: {exc}",
            f"プロファイル {profile.name!r} から証明書を作れません: {exc}",
        )
    codes = blocking_codes(lint_certificate(draft.public_bytes(serialization.Encoding.DER)))
    if codes:
        joined = ", ".join(codes)
        return _refuse(
            request,
            "lint",
            f"the certificate would break RFC 5280 (pkilint: {joined})",
            f"証明書が RFC 5280 に適合しません(pkilint: {joined})",
        )
    return Prepared(
        request_id=request.request_id,
        serial=serial,
        tbs_der=draft.tbs_certificate_bytes,
        not_before=window[0],
        not_after=window[1],
        # From the Name we built: re-parsing the certificate's subject would make
        # cryptography warn about a CN longer than 64 UTF-8 bytes (see office_subject).
        subject_text=draft_subject.rfc4514_string(),
    )


# ---------------------------------------------------------------------------------------
# Step two: sign


def sign_prepared(prepared: Prepared, key: SigningKey) -> x509.Certificate:
    """Sign the linted TBS of ``prepared`` with the real CA key."""
    return certificate_from_tbs(prepared.tbs_der, key)


# ---------------------------------------------------------------------------------------
# Batches

# Worker-process state, set once by _init_pool_worker so each task carries only its own data.
_WORKER: dict[str, Any] = {}


def _prepare_all(
    profiles: Mapping[str, Profile],
    issuer: x509.Certificate,
    chunk: list[tuple[IssueRequest, int]],
    now: dt.datetime,
) -> list[Prepared | Refusal]:
    return [
        prepare(r, profile=profiles[r.profile], issuer=issuer, serial=s, now=now) for r, s in chunk
    ]


def _init_pool_worker(profiles: Mapping[str, Profile], issuer_der: bytes) -> None:
    _WORKER["profiles"] = dict(profiles)
    _WORKER["issuer"] = x509.load_der_x509_certificate(issuer_der)
    # pkilint builds thousands of short-lived, cyclic tree nodes per certificate.  In a
    # worker process (never in the caller's), freeze what the worker inherited so the
    # cyclic collector stops rescanning it, and collect young objects less often.
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _prepare_chunk(
    chunk: list[tuple[IssueRequest, int]], now: dt.datetime
) -> list[Prepared | Refusal]:
    return _prepare_all(_WORKER["profiles"], _WORKER["issuer"], chunk, now)


class _InlineExecutor:
    """Runs tasks at once in this process (workers=1), behind the Executor interface."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        future.set_result(fn(*args))
        return future


def _start_method() -> str:
    """How worker processes are started: "fork" when that is safe, else "forkserver".

    A forked worker starts in about a millisecond and inherits the warmed caches (pkilint's
    validators, the throwaway key), where a forkserver worker first imports cryptography and
    pkilint again (about half a second).  Forking is only unsafe when another thread could
    hold a lock (OpenSSL's, the allocator's) at the moment of the fork, so with more than one
    thread alive (a web server, a scheduler) the clean forkserver is used instead.  Workers
    never touch what they inherit from this process (the CA key, a PKCS#11 session, the
    ledger's connection) and leave through ``os._exit``, so nothing of it is closed or used.
    """
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "forkserver"


def _pool(workers: int, profiles: Mapping[str, Profile], issuer: x509.Certificate) -> Any:
    method = _start_method()
    context = multiprocessing.get_context(method)
    if method == "fork":
        # Warm the per-process caches once here; every forked worker inherits them.
        throwaway_key(issuer.public_key())
        warm_up()
        # The first lint in a process also fills pkilint's and pyasn1's lazy caches.
        lint_certificate(issuer.public_bytes(serialization.Encoding.DER))
    else:
        context.set_forkserver_preload(["ca.issue"])
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_pool_worker,
        initargs=(dict(profiles), issuer.public_bytes(serialization.Encoding.DER)),
    )


def _check_key_matches(issuer: x509.Certificate, key: SigningKey) -> None:
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key.public_bytes(*spki) != issuer.public_key().public_bytes(*spki):
        raise Refused(
            "the signing key does not belong to the issuing CA certificate",
            message_ja="署名鍵が発行者(CA)証明書の鍵と一致しません",
        )


def issue_many(
    requests: Sequence[IssueRequest],
    *,
    profiles: Mapping[str, Profile],
    issuer: x509.Certificate,
    key: SigningKey,
    serials: SerialStore,
    now: dt.datetime,
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
) -> list[x509.Certificate | Refusal]:
    """Issue a batch: a certificate or a :class:`Refusal` per request, in request order.

    Preparation and linting run in ``workers`` processes (0: one per CPU; 1: in this
    process); real signatures are made here, each only after its serial was reserved in
    ``serials``.  ``progress`` is called with the number of requests finished so far.
    Raises :class:`shomei.errors.Refused` before anything is reserved or signed when ``key``
    does not match ``issuer`` or the issuer is not valid at ``now``.
    """
    if workers < 0:
        raise MalformedInput("workers must be 0 or more", message_ja="workers は 0 以上です")
    now = require_aware(now, "now").replace(microsecond=0)
    _check_key_matches(issuer, key)
    for profile in profiles.values():
        validity_window(profile, issuer, now)
    results: list[x509.Certificate | Refusal | None] = [None] * len(requests)
    todo: list[int] = []
    for index, request in enumerate(requests):
        if request.profile in profiles:
            todo.append(index)
            continue
        refusal = _refuse(
            request,
            "profile",
            f"unknown certificate profile {request.profile!r}",
            f"証明書プロファイル {request.profile!r} がありません",
        )
        serials.record_refused(request.request_id, None, refusal)
        results[index] = refusal
    done = len(requests) - len(todo)
    if progress is not None and done:
        progress(done)

    count = workers or os.cpu_count() or 1
    # Small chunks keep the pool busy while this process signs; large ones cut IPC overhead.
    chunk_size = max(1, min(16, len(todo) // (count * 4) or 1))
    chunks: Iterator[list[int]] = (
        todo[i : i + chunk_size] for i in range(0, len(todo), chunk_size)
    )
    executor: Any
    task: Callable[..., list[Prepared | Refusal]]
    if count == 1 or len(todo) <= 1:
        executor = _InlineExecutor()
        task = functools.partial(_prepare_all, profiles, issuer)
    else:
        executor = _pool(min(count, len(todo)), profiles, issuer)
        task = _prepare_chunk
    window: collections.deque[tuple[concurrent.futures.Future[Any], list[tuple[int, int]]]] = (
        collections.deque()
    )

    def submit_next() -> None:
        indices = next(chunks, None)
        if indices is None:
            return
        # The serials are durably reserved (one commit per chunk) before their TBS exists,
        # let alone is signed.
        numbers = serials.reserve_many([requests[i].request_id for i in indices])
        reserved = list(zip(indices, numbers, strict=True))
        chunk = [(requests[i], serial) for i, serial in reserved]
        window.append((executor.submit(task, chunk, now), reserved))

    try:
        for _ in range(count * 2):
            submit_next()
        while window:
            future, reserved = window.popleft()
            try:
                outcomes = future.result()
                submit_next()
            except concurrent.futures.BrokenExecutor as exc:
                # A worker died (killed, out of memory).  What was signed is recorded; the
                # serials reserved for the rest stay "reserved" in the ledger, unused.
                raise Refused(
                    f"a preparation worker stopped unexpectedly after {done} of "
                    f"{len(requests)} requests; the rest of the batch was not issued",
                    message_ja=f"準備処理のプロセスが異常終了しました({len(requests)} 件中 "
                    f"{done} 件で停止)。残りは発行されていません",
                    done=done,
                ) from exc
            signed: list[x509.Certificate] = []
            for (index, serial), outcome in zip(reserved, outcomes, strict=True):
                if isinstance(outcome, Refusal):
                    serials.record_refused(outcome.request_id, serial, outcome)
                    results[index] = outcome
                else:
                    certificate = sign_prepared(outcome, key)
                    signed.append(certificate)
                    results[index] = certificate
            # Recorded before anything leaves this function (one commit per chunk).
            serials.record_signed_many(signed)
            done += len(reserved)
            if progress is not None:
                progress(done)
    finally:
        if isinstance(executor, concurrent.futures.ProcessPoolExecutor):
            executor.shutdown(wait=True, cancel_futures=True)
    return [r for r in results if r is not None]
