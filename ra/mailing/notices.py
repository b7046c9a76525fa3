"""The portal's notices (お知らせ, docs/product.md §7 A7 and §13) and whether each was opened.

An office or agent sees only its own notices (:func:`own_notices`; another account's notice is
"not found", exactly as an id that does not exist).  Opening a notice records the date of the
FIRST opening only (``Notice.read_at``), with an audit record, in the caller's transaction:
an ``UPDATE … WHERE read_at IS NULL``, so of two openings at the same moment exactly one is
recorded.  A plain notice is opened when its page is shown (:func:`read_notice`); a sealed
one (CMS AuthEnvelopedData made by :func:`signer.notices.seal`, readable only with the
holder's key) when its file is downloaded (:func:`download_sealed`), because its page shows
only how to open it.

Staff see, for an application (:func:`application_notices`) or an account
(:func:`account_notices`), which notices were sent and when each was first opened.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from ra.party import Party, Permission, application_for, require
from ra.store import audit
from ra.store.models import Account, Notice
from shomei.errors import NotFound


@dataclass(frozen=True)
class NoticeLine:
    """A notice as a list shows it (the portal's list, the console's pages)."""

    id: int
    kind: str
    title: str
    created_at: dt.datetime  # 情報年月日
    read_at: dt.datetime | None  # 開封日: the first opening, None while unopened
    sealed: bool
    application_id: int | None


@dataclass(frozen=True)
class SealedFile:
    """The file of a sealed notice, as the portal hands it to its holder."""

    notice: Notice
    filename: str
    data: bytes


def _line(notice: Notice) -> NoticeLine:
    return NoticeLine(
        id=notice.id,
        kind=notice.kind,
        title=notice.title,
        created_at=notice.created_at,
        read_at=notice.read_at,
        sealed=notice.sealed is not None,
        application_id=notice.application_id,
    )


def _newest_first(session: Session, where: ColumnElement[bool]) -> tuple[NoticeLine, ...]:
    found = session.execute(
        select(Notice).where(where).order_by(Notice.created_at.desc(), Notice.id.desc())
    ).scalars()
    return tuple(_line(n) for n in found)


def sealed_filename(notice_id: int) -> str:
    """The name the portal gives a sealed notice's file (what ``shomei notice open`` reads)."""
    return f"notice-{notice_id}.p7m"


def own_notices(session: Session, party: Party) -> tuple[NoticeLine, ...]:
    """The notices of ``party``'s own account, newest first."""
    require(party, Permission.VIEW_OWN_APPLICATIONS)
    return _newest_first(session, Notice.account_id == party.account_id)


def unread_count(session: Session, party: Party) -> int:
    """How many of ``party``'s notices were never opened."""
    require(party, Permission.VIEW_OWN_APPLICATIONS)
    return int(
        session.scalar(
            select(func.count())
            .select_from(Notice)
            .where(Notice.account_id == party.account_id, Notice.read_at.is_(None))
        )
        or 0
    )


def own_notice(session: Session, party: Party, notice_id: int) -> Notice:
    """The notice ``notice_id`` if it is ``party``'s own, else :class:`NotFound`."""
    require(party, Permission.VIEW_OWN_APPLICATIONS)
    notice = session.get(Notice, notice_id)
    if notice is None or party.account_id is None or notice.account_id != party.account_id:
        raise NotFound(
            f"no notice {notice_id}",
            message_ja="お知らせが見つかりません",
            notice=notice_id,
        )
    return notice


def _mark_opened(
    session: Session,
    party: Party,
    notice: Notice,
    *,
    now: dt.datetime,
    source_address: str | None,
) -> None:
    """Record ``now`` as the first opening of ``notice``, unless it was opened before."""
    done = session.execute(
        update(Notice)
        .where(Notice.id == notice.id, Notice.read_at.is_(None))
        .values(read_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(notice, ["read_at"])
    if done.rowcount != 1:  # type: ignore[attr-defined]
        return  # opened before: the first date stays
    audit.record(
        session,
        actor=party.actor.value,
        actor_id=party.audit_id,
        action="open_notice",
        object_type="notice",
        object_id=str(notice.id),
        now=now,
        source_address=source_address,
        details={
            "kind": notice.kind,
            "sealed": notice.sealed is not None,
            "application": notice.application_id,
        },
    )


def read_notice(
    session: Session,
    party: Party,
    notice_id: int,
    *,
    now: dt.datetime,
    source_address: str | None = None,
) -> Notice:
    """``party``'s notice ``notice_id`` for its page; a plain notice counts as opened now
    (the first time only).  A sealed one is opened by :func:`download_sealed`."""
    notice = own_notice(session, party, notice_id)
    if notice.sealed is None:
        _mark_opened(session, party, notice, now=now, source_address=source_address)
    return notice


def download_sealed(
    session: Session,
    party: Party,
    notice_id: int,
    *,
    now: dt.datetime,
    source_address: str | None = None,
) -> SealedFile:
    """The file of ``party``'s sealed notice ``notice_id``; it counts as opened now (the first
    time only).  A notice that is not sealed has no file: :class:`NotFound`."""
    notice = own_notice(session, party, notice_id)
    if notice.sealed is None:
        raise NotFound(
            f"notice {notice_id} is not sealed and has no file",
            message_ja="このお知らせにはダウンロードするファイルがありません",
            notice=notice_id,
        )
    _mark_opened(session, party, notice, now=now, source_address=source_address)
    return SealedFile(notice, sealed_filename(notice.id), bytes(notice.sealed))


def application_notices(
    session: Session, party: Party, application_id: int
) -> tuple[NoticeLine, ...]:
    """The notices sent about application ``application_id`` (staff), newest first."""
    application_for(session, party, application_id)  # the permission and the object check
    require(party, Permission.VIEW_ALL_APPLICATIONS)
    return _newest_first(session, Notice.application_id == application_id)


def account_notices(session: Session, party: Party, account: Account) -> tuple[NoticeLine, ...]:
    """Every notice of the office or agent ``account`` (staff's 事業所管理), newest first."""
    require(party, Permission.MANAGE_PORTAL_ACCOUNTS)
    return _newest_first(session, Notice.account_id == account.id)


__all__ = [
    "NoticeLine",
    "SealedFile",
    "account_notices",
    "application_notices",
    "download_sealed",
    "own_notice",
    "own_notices",
    "read_notice",
    "sealed_filename",
    "unread_count",
]
