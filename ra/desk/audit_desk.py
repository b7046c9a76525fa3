"""The console's 監査 desk (admins): verify the audit chain and search the audit log.

:func:`verify_chain` runs :func:`ra.store.audit.verify` (hash chain, signed anchors, statuses)
against the RA's link certificate, as ``shomei ra verify-audit`` does, and returns its report;
a broken chain raises :class:`~shomei.errors.VerificationFailed` naming the record.
:func:`search` pages through the log by account (who acted, or the account acted on),
application and a date range in Japan time, newest first (docs/product.md §8).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from ra.party import Party, Permission, require
from ra.settings import RASettings
from ra.store import audit
from ra.store.models import AuditRecord
from shomei.errors import MalformedInput
from shomei.files import MAX_OBJECT, read_bytes

JST = dt.timezone(dt.timedelta(hours=9))
PAGE_SIZE = 50


def trusted_certificates(settings: RASettings) -> list[x509.Certificate]:
    """The certificates the audit anchors may be signed with: the RA's link certificate."""
    path = settings.link.link_certificate
    if path is None:
        return []
    pem = read_bytes(path, what="link certificate", what_ja="連携証明書", limit=MAX_OBJECT)
    try:
        return [x509.load_pem_x509_certificate(pem)]
    except ValueError as exc:
        raise MalformedInput(
            f"the link certificate {path} (ra.link.link_certificate) is not a PEM certificate",
            message_ja=f"連携証明書 {path}(ra.link.link_certificate)が"
            "PEM 形式の証明書ではありません",
        ) from exc


def verify_chain(session: Session, party: Party, settings: RASettings) -> audit.AuditReport:
    """Walk the whole audit chain (raises VerificationFailed at the first problem)."""
    require(party, Permission.VIEW_AUDIT)
    return audit.verify(session, trusted=trusted_certificates(settings))


@dataclass(frozen=True)
class AuditQuery:
    account: str = ""  # a user ID: records it made, or records about that account
    application: int | None = None
    date_from: dt.date | None = None  # Japan time, inclusive
    date_to: dt.date | None = None  # Japan time, inclusive


@dataclass(frozen=True)
class AuditPage:
    rows: tuple[AuditRecord, ...]
    page: int
    page_count: int
    total: int


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=JST).astimezone(dt.UTC)


def _conditions(query: AuditQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.account:
        where.append(
            or_(
                AuditRecord.actor_id == query.account,
                and_(
                    AuditRecord.object_type == "account",
                    AuditRecord.object_id == query.account,
                ),
            )
        )
    if query.application is not None:
        where.append(
            and_(
                AuditRecord.object_type == "application",
                AuditRecord.object_id == str(query.application),
            )
        )
    if query.date_from is not None:
        where.append(AuditRecord.at >= _start_of(query.date_from))
    if query.date_to is not None:
        where.append(AuditRecord.at < _start_of(query.date_to + dt.timedelta(days=1)))
    return where


def search(
    session: Session, party: Party, query: AuditQuery, *, page: int = 1, page_size: int = PAGE_SIZE
) -> AuditPage:
    """Page ``page`` (from 1) of the records matching ``query``, newest first."""
    require(party, Permission.VIEW_AUDIT)
    if page < 1:
        raise MalformedInput(
            f"page {page} does not exist", message_ja="ページ番号が正しくありません"
        )
    if query.date_from and query.date_to and query.date_from > query.date_to:
        raise MalformedInput(
            "the date range ends before it starts",
            message_ja="期間の終わりが始まりより前になっています",
        )
    where = _conditions(query)
    total = int(session.scalar(select(func.count()).select_from(AuditRecord).where(*where)) or 0)
    page_count = max(1, -(-total // page_size))
    page = min(page, page_count)
    rows = session.execute(
        select(AuditRecord)
        .where(*where)
        .order_by(AuditRecord.seq.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).scalars()
    return AuditPage(tuple(rows), page, page_count, total)
