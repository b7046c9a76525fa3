"""Work a scheduled job could not finish by itself, said out loud.

A job returns a summary; one that carries :class:`Attention` items left work that needs an
operator, and says which command brings it back: ``shomei ra run-job`` prints them and exits
2, the scheduler logs each as an error (:mod:`ra.tasks.scheduler`).  The link's cases:

- a batch the inline CA could not answer now (its message says why; the next run tries again);
- applications left at 発行待ち after their batch's result was imported, because the CA
  abandoned the batch before signing them: ``shomei ra re-request BATCH_ID`` sends them again;
- a result file the offline import refused (moved to ``data_dir/link/failed``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.lifecycle import Status
from ra.store.models import Application, CaBatch


@dataclass(frozen=True)
class Attention:
    """One thing an operator must look at, with what to do, in English and Japanese."""

    message: str
    message_ja: str

    def localized(self, lang: str) -> str:
        return self.message_ja if lang == "ja" else self.message


def attention_of(summary: object) -> tuple[Attention, ...]:
    """The :class:`Attention` items of a job's summary (none for most jobs)."""
    items = getattr(summary, "attention", ())
    return tuple(a for a in items if isinstance(a, Attention))


def left_out(session: Session) -> dict[str, list[int]]:
    """Applications still 発行待ち although their batch's result was imported, by batch id.

    The result answered them ``abandoned`` (or, from an older CA, not at all): nothing will
    move them but ``shomei ra re-request``.
    """
    rows = session.execute(
        select(Application.issue_batch_id, Application.id)
        .join(CaBatch, CaBatch.batch_id == Application.issue_batch_id)
        .where(Application.status == Status.AWAITING_ISSUANCE, CaBatch.imported_at.is_not(None))
        .order_by(Application.id)
    ).all()
    found: dict[str, list[int]] = defaultdict(list)
    for batch_id, app_id in rows:
        found[str(batch_id)].append(int(app_id))
    return dict(found)


def left_out_attention(session: Session) -> tuple[Attention, ...]:
    """One :class:`Attention` per batch with applications :func:`left_out`."""
    return tuple(
        Attention(
            f"batch {batch_id}: {len(ids)} application(s) ({_ids(ids)}) stay 発行待ち because "
            f"the CA abandoned them; send them again: shomei ra re-request {batch_id}",
            f"バッチ {batch_id}: 申請 {len(ids)} 件({_ids(ids)})は認証局が処理を中止したため"
            f"発行待ちのままです。再送してください: shomei ra re-request {batch_id}",
        )
        for batch_id, ids in left_out(session).items()
    )


def _ids(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:5])
    return shown + (", …" if len(ids) > 5 else "")


__all__ = ["Attention", "attention_of", "left_out", "left_out_attention"]
