"""Finishing or abandoning a batch the CA began and never finished (a crash, a kill, a full disk).

The ledger knows, for such a batch, which certificates were signed (recorded before anything
leaves the CA), which requests were refused, and which serials were reserved and never
signed; the CA home keeps a copy of the request (``requests/``).  With those:

- :func:`resume_batch` finishes the batch by its id: what was signed is answered from the
  ledger (never signed twice), reserved-but-unsigned serials are voided (never used), the rest
  is signed now, and the result is written as for any batch.  ``shomei ca sign-batch`` with
  the same file, and the inline RA's next dispatch, do the same (:func:`ca.signbatch.answer_batch`).
- :func:`abandon_batch` stops it for good: every certificate already signed for it still
  reaches the RA in the result batch (or, with ``revoke_signed``, is revoked and listed on the
  result's CRL), refusals are answered as recorded, the revocations it carried are applied,
  reserved-but-unsigned serials are voided, and every other issue request is answered
  ``abandoned``, which the RA may send again in a new batch (``shomei ra re-request``).  A
  batch the ledger never saw can be abandoned too, from its file, so that it is never signed.

Both hold the CA's work lock, so nothing is taken up while a live process works on it, and
both are recorded in the ledger (``batch_recoveries``).  docs/ca-operator-guide.md gives the
procedure step by step.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from ca.batchstore import keep, read_kept, request_path, work_lock
from ca.context import CA
from ca.ledger import BatchRecord, Ledger
from ca.settings import CASettings
from ca.signbatch import Answer, answer_batch, check_space_for, revoke_serial, take_up
from contract.batch import read_request_batch
from shomei.clock import require_aware
from shomei.errors import MalformedInput, NotFound, Refused

# A certificate revoked because its batch was abandoned before it reached the applicant.
ABANDON_REASON = x509.ReasonFlags.superseded


@dataclass(frozen=True)
class Unfinished:
    """A batch the ledger calls unfinished, and whether the CA home kept its request."""

    batch: BatchRecord
    request_kept: bool


def unfinished_batches(settings: CASettings) -> list[Unfinished]:
    """Every batch begun and never finished (for ``shomei ca status``), oldest first."""
    with Ledger(settings.ledger) as ledger:
        batches = ledger.stats().unfinished_batches
    return [Unfinished(b, request_path(settings, b.batch_id).is_file()) for b in batches]


def resume_batch(
    ca: CA,
    batch_id: str,
    *,
    now: dt.datetime,
    request_bytes: bytes | None = None,
    workers: int = 0,
    also: tuple[Path, ...] = (),
) -> Answer:
    """Finish batch ``batch_id`` (see the module); ``request_bytes`` when no copy was kept."""
    data = _request_bytes(ca, batch_id, request_bytes)
    known = ca.ledger.find_batch(batch_id)
    if known is None:
        raise NotFound(
            f"batch {batch_id} is not in the ledger: the CA never began it; sign it with "
            "shomei ca sign-batch",
            message_ja=f"バッチ {batch_id} は台帳にありません(未処理です)。"
            "shomei ca sign-batch で署名してください",
            batch_id=batch_id,
        )
    return answer_batch(ca, data, now=now, workers=workers, also=also)


def abandon_batch(
    ca: CA,
    batch_id: str,
    *,
    now: dt.datetime,
    request_bytes: bytes | None = None,
    revoke_signed: bool = False,
    also: tuple[Path, ...] = (),
) -> Answer:
    """Abandon batch ``batch_id`` for good and write its result (see the module)."""
    now = require_aware(now, "now").replace(microsecond=0)
    data = _request_bytes(ca, batch_id, request_bytes)
    with work_lock(ca.settings):
        request = read_request_batch(data, trusted=ca.trusted_ra)
        if request.batch_id != batch_id:
            raise MalformedInput(
                f"the request file is batch {request.batch_id}, not {batch_id}",
                message_ja=f"依頼ファイルはバッチ {request.batch_id} です"
                f"({batch_id} ではありません)",
            )
        known = ca.ledger.find_batch(batch_id, sha256=request.sha256)
        if known is not None and known.sha256 != request.sha256:
            raise Refused(
                f"the request file is not the one batch {batch_id} was received with",
                message_ja=f"依頼ファイルがバッチ {batch_id} の受付時の内容と一致しません",
                batch_id=batch_id,
            )
        if known is not None and known.outcome == "done" and known.abandoned_at is None:
            raise Refused(
                f"batch {batch_id} was finished on {known.finished_at:%Y-%m-%d %H:%M:%S} UTC; "
                "there is nothing to abandon (sign-batch or resume-batch writes its result again)",
                message_ja=f"バッチ {batch_id} は処理済みです。中止するものはありません"
                "(sign-batch か resume-batch で結果を再出力できます)",
                batch_id=batch_id,
            )
        if known is None:
            # Never begun: entered as begun and abandoned at once, so it is never signed.
            check_space_for(ca, request, len(data), also)
            keep(request_path(ca.settings, batch_id), data)
            ca.ledger.begin_batch(
                batch_id=batch_id,
                sha256=request.sha256,
                ra_name=request.ra_name,
                request_count=len(request.requests),
                now=now,
            )
            known = ca.ledger.find_batch(batch_id)
            assert known is not None

        def revoke() -> int:
            count = 0
            for record in ca.ledger.signed_in_batch(batch_id):
                if record.revoked_at is None:
                    revoke_serial(
                        ca,
                        record.serial,
                        revoked_at=now,
                        reason=ABANDON_REASON,
                        request_id=f"abandon-{batch_id}",
                    )
                    count += 1
            return count

        return take_up(
            ca,
            request,
            known,
            now=now,
            progress=None,
            workers=1,
            also=also,
            request_size=len(data),
            abandon=True,
            revoke_signed=revoke if revoke_signed else None,
        )


def _request_bytes(ca: CA, batch_id: str, given: bytes | None) -> bytes:
    if given is not None:
        return given
    path = request_path(ca.settings, batch_id)
    kept = read_kept(path)
    if kept is None:
        raise NotFound(
            f"the CA home keeps no copy of batch {batch_id} ({path}); give the request file "
            "with --request",
            message_ja=f"バッチ {batch_id} の依頼の控えがありません。--request で依頼ファイルを"
            "指定してください",
            batch_id=batch_id,
        )
    return kept


__all__ = ["ABANDON_REASON", "Unfinished", "abandon_batch", "resume_batch", "unfinished_batches"]
