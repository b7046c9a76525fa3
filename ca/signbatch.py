"""Sign one RA request batch: the CA side of the RA↔CA link (SPEC §5).

The order is what makes it safe:

1. the RA's CMS signature (RFC 5652 §5.6) and the pinned link certificate are checked before
   anything else; a forged or altered batch is refused with nothing signed (the refusal is
   noted in the ledger);
2. the batch is entered in the ledger as ``processing`` and committed; a batch id or file
   hash the ledger already knows is a replay and is refused, also when the earlier run crashed
   half-way (its row still says ``processing``), so no batch is ever processed twice;
3. issue requests go through :func:`ca.issuebatch.issue_many` (serials reserved before signing, a
   bad request refused with its reason while the rest goes on); a request id the ledger
   already signed a certificate for (the RA re-sent it in a new batch after a lost result) is
   answered with that certificate, not a second one;
4. revocations are applied to serials this CA issued and has not revoked yet, each with its
   RFC 5280 §5.3 CRL entry encoded once and stored;
5. a fresh CRL is issued (:func:`ca.crls.issue_crl`) and the signed result batch is written,
   also kept in the CA home's ``results/`` folder so a lost copy can be carried again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from cryptography import x509

from ca.batch import (
    Issued,
    IssueItem,
    IssueRefused,
    RequestBatch,
    ResultItem,
    Revoked,
    RevokeItem,
    RevokeRefused,
    read_request_batch,
    write_result_batch,
)
from ca.context import CA, open_ledger
from ca.crls import issue_crl
from ca.issue import IssueRequest, Refusal
from ca.issuebatch import issue_many
from ca.settings import CASettings
from ca.trust import trusted_link_certificates
from crl.builder import RevokedEntry, encode_entry
from shomei.clock import require_aware
from shomei.errors import ConfigError, MalformedInput, Refused, VerificationFailed

Progress = Callable[[int, int], None]  # (requests done, requests in the batch)


def results_dir(ca: CA | CASettings) -> Path:
    """Where a copy of every result batch is kept (``results/`` beside the ledger)."""
    settings = ca.settings if isinstance(ca, CA) else ca
    return settings.ledger.parent / "results"


def sign_batch(
    ca: CA,
    request_bytes: bytes,
    *,
    now: dt.datetime,
    progress: Progress | None = None,
    workers: int = 0,
) -> bytes:
    """Process the signed request batch ``request_bytes``; return the signed result batch.

    Raises :class:`VerificationFailed` (forged: bad signature or a signer the CA does not
    pin), :class:`MalformedInput` (altered or malformed) and :class:`Refused` (replayed),
    in each case before anything is signed.
    """
    now = require_aware(now, "now").replace(microsecond=0)
    digest = hashlib.sha256(request_bytes).hexdigest()
    if not ca.trusted_ra:
        raise _no_trusted_ra()
    try:
        request = read_request_batch(request_bytes, trusted=ca.trusted_ra)
        if ca.ledger.find_batch(request.batch_id) is None:
            _check_no_result_yet(ca, request.batch_id)
        ca.ledger.begin_batch(
            batch_id=request.batch_id,
            sha256=request.sha256,
            ra_name=request.ra_name,
            request_count=len(request.requests),
            now=now,
        )
    except (VerificationFailed, MalformedInput, Refused) as exc:
        ca.ledger.record_batch_refusal(
            sha256=digest,
            batch_id=exc.fields.get("batch_id"),
            code=exc.code,
            message=exc.message,
            now=now,
        )
        raise
    try:
        result = _process(ca, request, now=now, progress=progress, workers=workers)
    except BaseException:
        # The batch stays in the ledger (never processed again); the operator sees it.
        ca.ledger.finish_batch(request.batch_id, outcome="failed", now=now)
        raise
    ca.ledger.finish_batch(request.batch_id, outcome="done", now=now)
    return result


def check_request(settings: CASettings, request_bytes: bytes, *, now: dt.datetime) -> RequestBatch:
    """Verify a request batch and check it is new, without the CA key.

    The CLI calls this before the custodians type their shares: a forged, altered or
    replayed batch is refused (and noted in the ledger) before anyone opens the key.
    :func:`sign_batch` makes the same checks again with the ledger entry that counts.
    """
    trusted = trusted_link_certificates(settings)
    if not trusted:
        raise _no_trusted_ra()
    with open_ledger(settings) as ledger:
        try:
            request = read_request_batch(request_bytes, trusted=trusted)
            known = ledger.find_batch(request.batch_id, sha256=request.sha256)
            if known is not None:
                raise Refused(
                    f"batch {request.batch_id} was already received on "
                    f"{known.received_at:%Y-%m-%d %H:%M:%S} UTC (outcome: {known.outcome}); "
                    "a batch is never processed twice, ask the RA for a new batch",
                    message_ja=f"バッチ {request.batch_id} は受付済みです(結果: {known.outcome})。"
                    "同じバッチは二度処理しません。RA に新しいバッチの作成を依頼してください",
                    batch_id=request.batch_id,
                )
            _check_no_result_yet(settings, request.batch_id)
        except (VerificationFailed, MalformedInput, Refused) as exc:
            ledger.record_batch_refusal(
                sha256=hashlib.sha256(request_bytes).hexdigest(),
                batch_id=exc.fields.get("batch_id"),
                code=exc.code,
                message=exc.message,
                now=now,
            )
            raise
    return request


def _no_trusted_ra() -> ConfigError:
    return ConfigError(
        "no RA link certificate is trusted (trusted_ra in ca.toml is empty)",
        message_ja="信頼する RA 連携証明書がありません(ca.toml の trusted_ra が空です)",
    )


def _check_no_result_yet(ca: CA | CASettings, batch_id: str) -> None:
    # A second memory besides the ledger: if the ledger was restored from an older backup,
    # the kept result copy still shows that this batch was done.
    copy = results_dir(ca) / f"{batch_id}.p7m"
    if copy.exists():
        raise Refused(
            f"batch {batch_id} was already processed (its result is kept at {copy})",
            message_ja=f"バッチ {batch_id} は処理済みです(結果は {copy} にあります)",
            batch_id=batch_id,
        )


def _process(
    ca: CA, request: RequestBatch, *, now: dt.datetime, progress: Progress | None, workers: int
) -> bytes:
    total = len(request.requests)
    results: dict[str, ResultItem] = {}
    fresh: list[IssueItem] = []
    for item in request.requests:
        if isinstance(item, IssueItem):
            earlier = ca.ledger.signed_for_request(item.request_id)
            if earlier is not None and earlier.certificate_der is not None:
                cert = x509.load_der_x509_certificate(earlier.certificate_der)
                results[item.request_id] = Issued(item.request_id, cert)
            else:
                fresh.append(item)
    already = len(results)

    def issued(done: int) -> None:
        if progress is not None:
            progress(already + done, total)

    if fresh:
        outcomes = issue_many(
            [
                IssueRequest(
                    request_id=i.request_id,
                    csr_der=i.csr_der,
                    office_number=i.office_number,
                    office_name=i.office_name,
                    profile=i.profile,
                )
                for i in fresh
            ],
            profiles=ca.profiles,
            issuer=ca.certificate,
            key=ca.key,
            serials=ca.ledger,
            now=now,
            workers=workers,
            progress=issued,
        )
        for item, outcome in zip(fresh, outcomes, strict=True):
            results[item.request_id] = _issue_result(item.request_id, outcome)
    done = len(results)
    for item in request.requests:
        if isinstance(item, RevokeItem):
            results[item.request_id] = _revoke(ca, item, now=now)
            done += 1
            if progress is not None:
                progress(done, total)
    crl_der = issue_crl(ca, now=now)
    data = write_result_batch(
        request=request,
        results=[results[i.request_id] for i in request.requests],
        crl_der=crl_der,
        chain=ca.full_chain,
        ca_name=ca.settings.name,
        key=ca.key,
        certificate=ca.certificate,
        now=now,
    )
    _keep_copy(ca, request.batch_id, data)
    return data


def _issue_result(request_id: str, outcome: x509.Certificate | Refusal) -> ResultItem:
    if isinstance(outcome, Refusal):
        return IssueRefused(request_id, outcome.code, outcome.message, outcome.message_ja)
    return Issued(request_id, outcome)


def _revoke(ca: CA, item: RevokeItem, *, now: dt.datetime) -> ResultItem:
    serial_hex = format(item.serial, "x")
    record = ca.ledger.serial(item.serial)
    if record is None or record.state != "signed":
        return RevokeRefused(
            item.request_id,
            item.serial,
            "unknown_serial",
            f"serial {serial_hex} was not issued by this CA",
            f"シリアル番号 {serial_hex} はこの CA が発行した証明書ではありません",
        )
    if record.revoked_at is not None:
        if record.revoke_request_id == item.request_id:
            # The same request re-sent after a lost result: the answer it should have had.
            return Revoked(item.request_id, item.serial, record.revoked_at)
        since = f"{record.revoked_at:%Y-%m-%d %H:%M} UTC"
        return RevokeRefused(
            item.request_id,
            item.serial,
            "already_revoked",
            f"serial {serial_hex} is already revoked (since {since})",
            f"シリアル番号 {serial_hex} は失効済みです({since})",
        )
    # A revocation date in the future would make the CRL claim something not yet true.
    revoked_at = min(item.revoked_at, now)
    # RFC 5280 §5.3.1: the reasonCode SHOULD be absent rather than "unspecified".
    reason = None if item.reason == "unspecified" else x509.ReasonFlags(item.reason)
    entry = encode_entry(RevokedEntry(item.serial, revoked_at, reason))
    ca.ledger.revoke(
        item.serial,
        revoked_at=revoked_at,
        reason=item.reason,
        request_id=item.request_id,
        crl_entry=entry,
    )
    return Revoked(item.request_id, item.serial, revoked_at)


def _keep_copy(ca: CA, batch_id: str, data: bytes) -> None:
    folder = results_dir(ca)
    folder.mkdir(parents=True, exist_ok=True)
    # Exclusive create: the ledger never lets the same batch id through twice.
    with (folder / f"{batch_id}.p7m").open("xb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
