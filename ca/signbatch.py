"""Sign one RA request batch: the CA side of the RA↔CA link (docs/product.md §10).

The order is what makes it safe:

1. the RA's CMS signature (RFC 5652 §5.6) and the pinned link certificate are checked before
   anything else; a forged or altered batch is refused with nothing signed (the refusal is
   noted in the ledger);
2. the CA's work lock is taken (:mod:`ca.batchstore`), free space is checked, a copy of the
   request is kept in ``requests/`` and the batch is entered in the ledger as ``processing``
   and committed;
3. issue requests go through :func:`ca.issuebatch.issue_many` (serials reserved before signing, a
   bad request refused with its reason while the rest goes on); a request id the ledger
   already signed a certificate for (the RA re-sent it in a new batch after a lost result) is
   answered with that certificate, not a second one;
4. revocations are applied to serials this CA issued and has not revoked yet, each with its
   RFC 5280 §5.3 CRL entry encoded once and stored;
5. a fresh CRL is issued (:func:`ca.crls.issue_crl`) and the signed result batch is written,
   kept in the CA home's ``results/`` folder (whole or not at all) and its hash recorded when
   the batch is marked ``done``.

**Never twice, and never stuck.**  The same file again signs nothing: a finished batch is
answered with its kept result, byte for byte; a batch another batch id or other contents
claim is refused.  A batch a crash, a kill or a full disk left unfinished is *taken up
again* by the same file (``sign-batch``, the inline RA's next dispatch) or by its id
(``shomei ca resume-batch``): under the work lock no other process can be at it, and the
ledger says exactly what was signed (answered from the ledger), refused (answered the same
way) and reserved but never signed (voided); only the rest is signed now.  An abandoned batch
(:mod:`ca.recovery`) signs nothing more.  See docs/ca-operator-guide.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509

from ca.batchstore import (
    check_space,
    keep,
    read_kept,
    request_path,
    result_path,
    work_lock,
)
from ca.batchstore import results_dir as _results_dir
from ca.context import CA, load_certificates, open_ledger
from ca.crls import issue_crl
from ca.issue import IssueRequest, Refusal
from ca.issuebatch import issue_many
from ca.ledger import BatchRecord, Ledger, Reopened
from ca.settings import CASettings
from ca.trust import trusted_link_certificates
from contract.batch import (
    Abandoned,
    Issued,
    IssueItem,
    IssueRefused,
    RequestBatch,
    ResultItem,
    Revoked,
    RevokeItem,
    RevokeRefused,
    read_request_batch,
    read_result_batch,
    write_result_batch,
)
from crl.builder import RevokedEntry, encode_entry
from shomei.clock import require_aware
from shomei.errors import (
    ConfigError,
    MalformedInput,
    Refused,
    ShomeiError,
    StateError,
    VerificationFailed,
)

log = logging.getLogger("shomei.ca.signbatch")

Progress = Callable[[int, int], None]  # (requests done, requests in the batch)
# issue: sign what the ledger has no answer for; abandon: sign nothing more; rebuild: a done
# batch whose kept result was lost is answered again, from the ledger alone.
Mode = Literal["issue", "abandon", "rebuild"]
How = Literal["signed", "kept", "resumed", "abandoned", "rebuilt"]


@dataclass(frozen=True)
class Answer:
    """The result batch for a request, and how it came about (for the operator's messages)."""

    result: bytes
    batch_id: str
    how: How
    reopened: Reopened | None = None  # what a resume or abandon found
    kept_at: Path | None = None


def results_dir(ca: CA | CASettings) -> Path:
    """Where a copy of every result batch is kept (``results/`` beside the ledger)."""
    return _results_dir(ca.settings if isinstance(ca, CA) else ca)


def sign_batch(
    ca: CA,
    request_bytes: bytes,
    *,
    now: dt.datetime,
    progress: Progress | None = None,
    workers: int = 0,
    also: tuple[Path, ...] = (),
) -> bytes:
    """Answer the signed request batch ``request_bytes``; return the signed result batch.

    See :func:`answer_batch`.
    """
    return answer_batch(
        ca, request_bytes, now=now, progress=progress, workers=workers, also=also
    ).result


def answer_batch(
    ca: CA,
    request_bytes: bytes,
    *,
    now: dt.datetime,
    progress: Progress | None = None,
    workers: int = 0,
    also: tuple[Path, ...] = (),
) -> Answer:
    """Sign a new batch, answer a finished one again, or finish one a crash left unfinished.

    ``also``: folders that will receive a copy of the result (counted in the space check).
    Raises :class:`VerificationFailed` (forged: bad signature or a signer the CA does not
    pin), :class:`MalformedInput` (altered or malformed), :class:`Refused` (a batch id the
    ledger knows with other contents), :class:`~ca.batchstore.Busy` (another process is at
    work) and :class:`~shomei.errors.StorageError` (not enough room: nothing signed), in each
    case before anything is signed.
    """
    now = require_aware(now, "now").replace(microsecond=0)
    if not ca.trusted_ra:
        raise _no_trusted_ra()
    with work_lock(ca.settings):
        request, known = _admit(ca.ledger, ca.trusted_ra, request_bytes, now=now)
        if known is None:
            kept = _kept_answer(ca.settings, request, ca.certificate, None)
            if kept is not None:
                # The ledger forgot the batch (restored from an older backup); the kept
                # result did not: answer with it and sign nothing.
                log.warning(
                    "batch %s is not in the ledger; its kept result answers", request.batch_id
                )
                return Answer(kept, request.batch_id, "kept", kept_at=_kept(ca, request))
            check_space_for(ca, request, len(request_bytes), also)
            keep(request_path(ca.settings, request.batch_id), request_bytes)
            ca.ledger.begin_batch(
                batch_id=request.batch_id,
                sha256=request.sha256,
                ra_name=request.ra_name,
                request_count=len(request.requests),
                now=now,
            )
            data = run_batch(ca, request, now=now, mode="issue", progress=progress, workers=workers)
            return Answer(data, request.batch_id, "signed", kept_at=_kept(ca, request))
        if known.unfinished and not request_path(ca.settings, request.batch_id).exists():
            # Begun by an older version, which kept no copy: keep one now, for an abandon.
            keep(request_path(ca.settings, request.batch_id), request_bytes)
        return take_up(
            ca,
            request,
            known,
            now=now,
            progress=progress,
            workers=workers,
            also=also,
            request_size=len(request_bytes),
            abandon=known.abandoned_at is not None,
        )


def take_up(
    ca: CA,
    request: RequestBatch,
    known: BatchRecord,
    *,
    now: dt.datetime,
    progress: Progress | None,
    workers: int,
    also: tuple[Path, ...],
    request_size: int,
    abandon: bool,
    revoke_signed: Callable[[], int] | None = None,
) -> Answer:
    """Answer a batch the ledger knows (the caller holds the work lock; see the module).

    A kept result that answers the request is the answer (the batch finished, perhaps only
    the ledger's "done" was lost); otherwise the batch is reopened and run to its end:
    resumed, abandoned (``abandon``), or rebuilt from the ledger when it was done.
    """
    kept = _kept_answer(ca.settings, request, ca.certificate, known)
    if kept is not None:
        if known.outcome != "done":
            ca.ledger.finish_batch(
                request.batch_id,
                outcome="done",
                now=now,
                result_sha256=hashlib.sha256(kept).hexdigest(),
            )
        return Answer(kept, request.batch_id, "kept", kept_at=_kept(ca, request))
    check_space_for(ca, request, request_size, also)
    mode: Mode = "abandon" if abandon else ("rebuild" if known.outcome == "done" else "issue")
    reopened = ca.ledger.reopen_batch(
        request.batch_id, action="abandon" if abandon else "resume", now=now
    )
    if revoke_signed is not None:
        revoke_signed()
    log.warning(
        "batch %s taken up again (%s): %d already signed, %d reserved serials voided",
        request.batch_id,
        mode,
        reopened.signed,
        reopened.voided,
    )
    data = run_batch(ca, request, now=now, mode=mode, progress=progress, workers=workers)
    how: How = "resumed" if mode == "issue" else ("abandoned" if abandon else "rebuilt")
    return Answer(data, request.batch_id, how, reopened=reopened, kept_at=_kept(ca, request))


def _kept(ca: CA, request: RequestBatch) -> Path:
    return result_path(ca.settings, request.batch_id)


def check_space_for(ca: CA, request: RequestBatch, size: int, also: tuple[Path, ...]) -> None:
    """Raise StorageError unless the batch fits (see :func:`ca.batchstore.check_space`)."""
    check_space(
        ca.settings,
        request,
        request_size=size,
        revoked=ca.ledger.revoked_count(),
        crl_dir=ca.crl_dir,
        also=also,
    )


def run_batch(
    ca: CA,
    request: RequestBatch,
    *,
    now: dt.datetime,
    mode: Mode,
    progress: Progress | None = None,
    workers: int = 0,
) -> bytes:
    """Process an open batch to its result and mark it ``done`` (``failed`` on an error)."""
    try:
        data = _process(ca, request, now=now, mode=mode, progress=progress, workers=workers)
    except BaseException:
        # Taken up again by the next run either way; a full disk may refuse even this.
        try:
            ca.ledger.finish_batch(request.batch_id, outcome="failed", now=now)
        except ShomeiError as exc:
            log.error("batch %s stays 'processing': %s", request.batch_id, exc.message)
        raise
    ca.ledger.finish_batch(
        request.batch_id, outcome="done", now=now, result_sha256=hashlib.sha256(data).hexdigest()
    )
    return data


@dataclass(frozen=True)
class Checked:
    """What :func:`check_request` found: the request, the ledger's record, a finished result."""

    request: RequestBatch
    known: BatchRecord | None
    result: bytes | None  # the kept result of a finished batch: written again, nothing signed
    kept_at: Path


def check_request(
    settings: CASettings, request_bytes: bytes, *, now: dt.datetime, also: tuple[Path, ...] = ()
) -> Checked:
    """Verify a request batch, look it up in the ledger and check the space, without the key.

    The CLI calls this before the custodians type their shares: a forged, altered or
    replayed-with-other-contents batch is refused (and noted in the ledger), and a batch that
    would not fit on the disk (``also``: folders receiving a copy of the result) is refused,
    before anyone opens the key; a batch already finished is answered with its kept result,
    for which no key is needed.  :func:`answer_batch` makes the same checks again under the
    work lock.
    """
    trusted = trusted_link_certificates(settings)
    if not trusted:
        raise _no_trusted_ra()
    certificates = load_certificates(settings.certificate)
    with open_ledger(settings) as ledger:
        request, known = _admit(ledger, trusted, request_bytes, now=now)
        revoked = ledger.revoked_count()
    result = None
    if certificates and (known is None or known.outcome == "done"):
        # Without the work lock: look, never move anything.
        result = _kept_answer(settings, request, certificates[0], known, set_aside=False)
    if result is None:
        check_space(
            settings,
            request,
            request_size=len(request_bytes),
            revoked=revoked,
            crl_dir=settings.crl_dir or settings.ledger.parent / "crl",
            also=also,
        )
    return Checked(request, known, result, result_path(settings, request.batch_id))


def _admit(
    ledger: Ledger,
    trusted: tuple[x509.Certificate, ...] | list[x509.Certificate],
    request_bytes: bytes,
    *,
    now: dt.datetime,
) -> tuple[RequestBatch, BatchRecord | None]:
    """Verify the request and find it in the ledger; refusals are noted there."""
    try:
        request = read_request_batch(request_bytes, trusted=trusted)
        known = ledger.find_batch(request.batch_id, sha256=request.sha256)
        if known is not None and (
            known.sha256 != request.sha256 or known.batch_id != request.batch_id
        ):
            raise Refused(
                f"batch {request.batch_id} was already received on "
                f"{known.received_at:%Y-%m-%d %H:%M:%S} UTC with other contents; a batch is "
                "never processed twice, ask the RA for a new batch",
                message_ja=f"バッチ {request.batch_id} は別の内容で受付済みです。"
                "同じバッチは二度処理しません。RA に新しいバッチの作成を依頼してください",
                batch_id=request.batch_id,
            )
    except (VerificationFailed, MalformedInput, Refused) as exc:
        ledger.record_batch_refusal(
            sha256=hashlib.sha256(request_bytes).hexdigest(),
            batch_id=exc.fields.get("batch_id"),
            code=exc.code,
            message=exc.message,
            now=now,
        )
        raise
    return request, known


def _kept_answer(
    settings: CASettings,
    request: RequestBatch,
    certificate: x509.Certificate,
    known: BatchRecord | None,
    *,
    set_aside: bool = True,
) -> bytes | None:
    """The kept result that answers exactly ``request``, or None.

    With the hash the ledger recorded it must match; without one (an older ledger, or a run
    that stopped between writing the copy and recording it) it must carry the CA's signature
    and answer this very request file.  A copy that fails is never used; under the work
    lock (``set_aside``) it is renamed aside, so that the batch can be answered afresh.
    """
    path = result_path(settings, request.batch_id)
    data = read_kept(path)
    if data is None:
        return None
    if known is not None and known.result_sha256 is not None:
        if hashlib.sha256(data).hexdigest() == known.result_sha256:
            return data
    else:
        try:
            parsed = read_result_batch(data, ca_certificate=certificate)
        except (MalformedInput, VerificationFailed):
            parsed = None
        if parsed is not None and known is None:
            # A result the CA signed for a batch its ledger does not know: the ledger is older
            # than the evidence of what the CA did (restored from an older backup), and would
            # forget the certificates of that batch on every later CRL.  Nothing is answered.
            raise StateError(
                f"the CA ledger {settings.ledger} does not know batch {request.batch_id}, whose "
                f"signed result is kept at {path}: the ledger is older than its results; "
                "restore the newest ledger backup (docs/ca-operator-guide.md, "
                '"Backing up and restoring the CA")',
                message_ja=f"CA 台帳 {settings.ledger} はバッチ {request.batch_id} を知りませんが、"
                f"その署名済みの結果が {path} にあります。台帳が結果より古いため、最新の台帳"
                "バックアップから復元してください(docs/ca-operator-guide.md「Backing up and "
                "restoring the CA」)",
                batch_id=request.batch_id,
            )
        if parsed is not None and parsed.request_sha256 == request.sha256:
            return data
    if set_aside:
        aside = path.with_name(f"{path.name}.damaged-{hashlib.sha256(data).hexdigest()[:12]}")
        log.error("the kept result %s does not match the ledger; moved to %s", path, aside)
        path.replace(aside)
    return None


def _no_trusted_ra() -> ConfigError:
    return ConfigError(
        "no RA link certificate is trusted (trusted_ra in ca.toml is empty)",
        message_ja="信頼する RA 連携証明書がありません(ca.toml の trusted_ra が空です)",
    )


def _process(
    ca: CA,
    request: RequestBatch,
    *,
    now: dt.datetime,
    mode: Mode,
    progress: Progress | None,
    workers: int,
) -> bytes:
    total = len(request.requests)
    results: dict[str, ResultItem] = {}
    fresh: list[IssueItem] = []
    for item in request.requests:
        if isinstance(item, IssueItem):
            answer = _from_ledger(ca, request.batch_id, item, mode)
            if answer is not None:
                results[item.request_id] = answer
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
            # Revocations are applied also when a batch is abandoned: the RA decided them,
            # and a revocation is never to be lost.
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
    keep(result_path(ca.settings, request.batch_id), data)
    return data


def _from_ledger(ca: CA, batch_id: str, item: IssueItem, mode: Mode) -> ResultItem | None:
    """The answer the ledger already has for an issue request, or None: sign it now."""
    earlier = ca.ledger.signed_for_request(item.request_id)
    if earlier is None and mode == "rebuild":
        # A done batch answered with a certificate revoked since: that is what it answered.
        earlier = ca.ledger.signed_for_request(item.request_id, include_revoked=True)
    if earlier is not None and earlier.certificate_der is not None:
        return Issued(item.request_id, x509.load_der_x509_certificate(earlier.certificate_der))
    refused = ca.ledger.refusal_for(item.request_id, batch_id)
    if refused is not None:
        return IssueRefused(item.request_id, *refused)
    if mode == "issue":
        return None
    return Abandoned(
        item.request_id,
        f"the CA abandoned batch {batch_id} before signing this request; nothing was issued,"
        " the RA may send it again in a new batch",
        f"認証局がバッチ {batch_id} をこの依頼の署名前に中止しました。発行していません。"
        "新しいバッチで再度依頼できます",
    )


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
    revoke_serial(ca, item.serial, revoked_at=revoked_at, reason=reason, request_id=item.request_id)
    return Revoked(item.request_id, item.serial, revoked_at)


def revoke_serial(
    ca: CA,
    serial: int,
    *,
    revoked_at: dt.datetime,
    reason: x509.ReasonFlags | None,
    request_id: str,
) -> None:
    """Revoke ``serial`` in the ledger with its RFC 5280 §5.3 CRL entry, encoded once."""
    entry = encode_entry(RevokedEntry(serial, revoked_at, reason))
    ca.ledger.revoke(
        serial,
        revoked_at=revoked_at,
        reason="unspecified" if reason is None else reason.value,
        request_id=request_id,
        crl_entry=entry,
    )
