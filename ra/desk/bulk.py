"""Bulk actions of the certificate list (docs/product.md §8): selection, then row by row.

On the list screen (証明書一覧) staff tick rows, or press 全選択 to take every row of the search
across all its pages, and then press 発行依頼 (1 → 3), 入金登録 (2 → 3) or, for admins,
発行依頼解除 (the undo of 3).  This module turns what was ticked into application ids and
applies the action to each of them through the single-application services of
:mod:`ra.workflow.applications`, so a bulk action checks, changes and audits exactly what the same
action on the detail screen does.

The selection
    A :class:`Selection` is either the rows ticked one by one (their ids, carried by the
    screen from page to page) or "every row of this search" (the search conditions, less the
    rows unticked afterwards).  :func:`selected_ids` resolves it: a search is read in chunks
    of :data:`CHUNK` ids by keyset (each chunk one bounded query), never as one unbounded
    result.  A bulk action takes at most :data:`BULK_LIMIT` (2,000) applications: more is
    refused before anything is read or changed, with a Japanese message telling staff to
    narrow the search, because one press of a button should stay a reviewable amount of work
    (its summary is read by a person) and one transaction.

Row by row
    Each row runs in a savepoint of the caller's session: a row that is refused (wrong
    status, someone else changed it first, not permitted, a payment that does not match) is
    rolled back alone and listed with its reason in both languages; the rows done stay done
    and are committed with the caller's transaction.  Nothing is half done within a row: its
    status change, audit record and side effects (the payment row, an undone payment) go or
    stay together.  Errors that are not refusals (the database failing) are not caught: the
    caller's transaction is then rolled back as a whole.

Who acts is taken as the other services of :mod:`ra.workflow.applications` take it, a
:class:`~ra.party.Party`; its permission for the action (:mod:`ra.party`: staff or an admin,
発行依頼解除 an admin only) is checked before any row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ra.desk.queries import Cursor, ListFilters, count_matching, fetch_page
from ra.party import Party, Permission, require
from ra.workflow.applications import register_issue_request, register_payment, undo_approval
from shomei.errors import MalformedInput, Refused, ShomeiError

BULK_LIMIT = 2_000  # applications one bulk action may take
CHUNK = 500  # ids read per query when a whole search is selected (the list's page limit)


@dataclass(frozen=True)
class Selection:
    """What staff selected on the list: ticked ids, or every row of a search but some.

    Build it with :func:`select_rows` or :func:`select_all`.
    """

    ids: tuple[int, ...] = ()  # rows ticked one by one (when ``search`` is None)
    search: ListFilters | None = None  # 全選択: every row of this search ...
    excluded: frozenset[int] = frozenset()  # ... except the rows unticked afterwards

    @property
    def is_whole_search(self) -> bool:
        return self.search is not None


def _check_id(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise MalformedInput(
            f"an application number must be a positive integer, not {str(value)[:20]!r}",
            message_ja="申請番号の指定が正しくありません",
            field="ids",
        )
    return value


def _too_many(count: int, limit: int) -> Refused:
    return Refused(
        f"{count:,} applications are selected; one bulk action takes at most {limit:,}",
        message_ja=(
            f"選択件数が{count:,}件です。一括処理は一度に{limit:,}件までです。"
            "検索条件を絞り込んでから操作してください"
        ),
        selected=count,
        limit=limit,
    )


def select_rows(ids: Iterable[int], *, limit: int = BULK_LIMIT) -> Selection:
    """The rows ticked one by one; duplicates dropped, order kept; at most ``limit``."""
    unique = tuple(dict.fromkeys(_check_id(i) for i in ids))
    if len(unique) > limit:
        raise _too_many(len(unique), limit)
    return Selection(ids=unique)


def select_all(search: ListFilters, *, excluded: Iterable[int] = ()) -> Selection:
    """全選択: every row of ``search`` on every page, except the ids in ``excluded``."""
    return Selection(search=search, excluded=frozenset(_check_id(i) for i in excluded))


def selection_count(session: Session, selection: Selection) -> int:
    """選択件数: how many rows the selection holds now."""
    if selection.search is None:
        return len(selection.ids)
    total = count_matching(session, selection.search)
    # Unticked ids came from rows of the search; one that has left it since is still
    # subtracted, so this may undercount by that much: it is for display and a first check,
    # and selected_ids counts the rows it actually reads against the limit again.
    return max(0, total - len(selection.excluded))


def iter_selected(
    session: Session, selection: Selection, *, chunk_size: int = CHUNK
) -> Iterator[tuple[int, ...]]:
    """The selected ids in list order (newest first), ``chunk_size`` at a time."""
    if selection.search is None:
        for start in range(0, len(selection.ids), chunk_size):
            yield selection.ids[start : start + chunk_size]
        return
    cursor: Cursor | None = None
    while True:
        page = fetch_page(session, selection.search, page_size=chunk_size, after=cursor)
        chunk = tuple(
            r.application_id for r in page.rows if r.application_id not in selection.excluded
        )
        if chunk:
            yield chunk
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def selected_ids(
    session: Session, selection: Selection, *, limit: int = BULK_LIMIT
) -> tuple[int, ...]:
    """Every selected id, or :class:`Refused` (in Japanese too) when there are over ``limit``.

    The count is checked before the ids are read; the ids are then read in chunks, and a
    search that grew past the limit meanwhile is refused as well.
    """
    count = selection_count(session, selection)
    if count > limit:
        raise _too_many(count, limit)
    ids: list[int] = []
    for chunk in iter_selected(session, selection):
        ids.extend(chunk)
        if len(ids) > limit:
            raise _too_many(len(ids), limit)
    return tuple(ids)


# --- row by row ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RowRefused:
    """One row a bulk action did not change, and why (the refusal's code and messages)."""

    application_id: int
    code: str
    message: str
    message_ja: str


@dataclass(frozen=True)
class BulkResult:
    """The summary of a bulk action: every row done and every row refused, in input order."""

    action: str
    done: tuple[int, ...]
    refused: tuple[RowRefused, ...]

    @property
    def summary_ja(self) -> str:
        return f"{len(self.done):,}件を処理しました。{len(self.refused):,}件は処理できませんでした"


def _ids(ids: Iterable[int] | Selection, session: Session) -> tuple[int, ...]:
    if isinstance(ids, Selection):
        return selected_ids(session, ids)
    return select_rows(ids).ids


def _row_by_row(
    session: Session, action: str, ids: tuple[int, ...], one: Callable[[int], object]
) -> BulkResult:
    done: list[int] = []
    refused: list[RowRefused] = []
    for application_id in ids:
        try:
            # A savepoint per row: a refused row is rolled back alone (see the module).
            with session.begin_nested():
                one(application_id)
        except ShomeiError as exc:
            refused.append(RowRefused(application_id, exc.code, exc.message, exc.message_ja))
        else:
            done.append(application_id)
    return BulkResult(action, tuple(done), tuple(refused))


def bulk_issue_request(
    session: Session,
    party: Party,
    ids: Iterable[int] | Selection,
    *,
    now: dt.datetime,
    source_address: str | None = None,
) -> BulkResult:
    """発行依頼 of every selected application (1 → 3), row by row."""
    require(party, Permission.REGISTER_ISSUE_REQUEST)
    chosen = _ids(ids, session)
    return _row_by_row(
        session,
        "register_issue_request",
        chosen,
        lambda i: register_issue_request(session, party, i, now=now, source_address=source_address),
    )


def bulk_register_payment(
    session: Session,
    party: Party,
    ids: Iterable[int] | Selection,
    *,
    paid_on: dt.date,
    amount_yen: int,
    payer_name: str,
    now: dt.datetime,
    source_address: str | None = None,
) -> BulkResult:
    """入金登録 of every selected agent application (2 → 3), each paid ``amount_yen``.

    A row whose fee is not ``amount_yen``, or which no longer awaits payment, is refused.
    """
    require(party, Permission.REGISTER_PAYMENT)
    chosen = _ids(ids, session)
    return _row_by_row(
        session,
        "register_payment",
        chosen,
        lambda i: register_payment(
            session,
            party,
            i,
            paid_on=paid_on,
            amount_yen=amount_yen,
            payer_name=payer_name,
            now=now,
            source_address=source_address,
        ),
    )


def bulk_undo_issue_request(
    session: Session,
    party: Party,
    ids: Iterable[int] | Selection,
    *,
    now: dt.datetime,
    source_address: str | None = None,
) -> BulkResult:
    """発行依頼解除 (admins): undo the issue request of every selected application (3 → 1/2).

    Only while it has not been sent to the CA; an agent's registered payment is undone.
    """
    require(party, Permission.UNDO)
    chosen = _ids(ids, session)
    return _row_by_row(
        session,
        "undo_approval",
        chosen,
        lambda i: undo_approval(session, party, i, now=now, source_address=source_address),
    )
