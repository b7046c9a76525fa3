"""The certificate list (証明書一覧, docs/product.md §8): search, paging and the total.

Staff search applications by applicant type (事業所 / 代理人 / 職員), by user ID (exact or a
prefix) and by status (the ten check boxes of docs/product.md §4), newest first.  The list pages
through tens of thousands of rows with *keyset* pagination: a page is "the ``page_size`` rows just
before (or after) a :class:`Cursor`", never an OFFSET, so page 500 costs what page 1 costs.

How a page is found, so that its cost does not grow with the table:

* Without a user ID, one small ordered query per (applicant group, status) reads at most
  ``page_size + 1`` keys from an index whose leading columns are exactly that group and status
  and whose next columns are ``(applied_at, id)``; the union of those few short lists, sorted,
  gives the page.  (A single ``status IN (...) ORDER BY applied_at`` would have to sort every
  matching row on SQLite, and on PostgreSQL before version 17.)
* With a user ID, the matching accounts are looked up first (a range scan of the user ID
  index); when there are at most :data:`ACCOUNT_FANOUT` of them, one ordered query per status
  reads their applications through the ``(account_id, status, applied_at, id)`` index.  A
  prefix so short that it matches more accounts falls back to the first plan, filtered.
* The rows of the page (account, certificate) are then read by primary key.

Page numbers (先頭, 前頁, 次頁, 最終 and a page number to jump to, :func:`list_page`): a search
is planned once (:func:`plan_pages`: the key of every page's first row and the total, in one
pass over the narrow index of migration ``0008``), and page k is then the keyset range
between the k-th and the (k+1)-th key, so a jump to page 4,000 costs what page 1 costs.
OFFSET was not chosen: it reads and discards every row before the page on every click.
Only the planning pass (and the count, which the screen's 全件数 needs anyway) grows with
the table; :class:`PlanCache` keeps recent plans so paging does not repeat it.  A plan is a
snapshot: a page says when rows arrived, left or joined since (:attr:`NumberedPage.stale`).

The indexes this needs are created by migrations ``0004`` and ``0008``.  The applicant
type of a row is 職員 when the application was entered by federation staff or an admin
(職員申請 / 再度申込), otherwise 事業所 or 代理人 after ``Application.applicant``; so the three
check boxes split the applications into three disjoint sets.  Bad input raises
:class:`shomei.errors.MalformedInput` with an English and a Japanese message, before anything
is read.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select, tuple_, union_all
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.expression import literal

from ra.lifecycle import LABELS_JA, NUMBERS, Applicant, Status
from ra.party import Party, Permission, require
from ra.store.models import (
    Account,
    Application,
    Certificate,
    FeeEntry,
    RevocationRequest,
    UTCDateTime,
)
from shomei.errors import MalformedInput

MAX_PAGE_SIZE = 500
# A user ID prefix matching more accounts than this is searched through the status indexes
# (filtered by account) instead of account by account.
ACCOUNT_FANOUT = 200
USER_ID_MAX = 32  # Account.user_id is String(32)

# Values of Application.entered_by that make an application a 職員申請.
STAFF_ENTRIES: tuple[str, ...] = ("staff", "admin")


class ApplicantType(enum.StrEnum):
    """The applicant type column and check boxes of the list (申請者)."""

    OFFICE = "office"  # 事業所: an office applied for itself
    AGENT = "agent"  # 代理人: an agent applied
    STAFF = "staff"  # 職員: federation staff entered it (職員申請 / 再度申込)


APPLICANT_TYPE_LABELS_JA: Mapping[ApplicantType, str] = MappingProxyType(
    {ApplicantType.OFFICE: "事業所", ApplicantType.AGENT: "代理人", ApplicantType.STAFF: "職員"}
)


@dataclass(frozen=True, order=True)
class Cursor:
    """A position in the list: the (applied_at, id) of a row; rows sort newest first.

    :attr:`token` is the form for URLs and forms (``YYYYMMDDhhmmssffffff-ID``, UTC);
    :meth:`parse` reads it back and refuses anything else.
    """

    applied_at: dt.datetime
    application_id: int

    _TOKEN = re.compile(r"(\d{20})-(\d{1,18})")

    @property
    def token(self) -> str:
        return f"{self.applied_at.astimezone(dt.UTC):%Y%m%d%H%M%S%f}-{self.application_id}"

    @classmethod
    def parse(cls, token: str) -> Cursor:
        match = cls._TOKEN.fullmatch(token) if isinstance(token, str) else None
        if match is not None:
            try:
                at = dt.datetime.strptime(match.group(1), "%Y%m%d%H%M%S%f").replace(tzinfo=dt.UTC)
            except ValueError:
                match = None
        if match is None:
            raise MalformedInput(
                f"malformed list cursor {str(token)[:40]!r}",
                message_ja="一覧のページ指定が正しくありません。最初のページから検索し直してください",
                field="cursor",
            )
        return cls(at, int(match.group(2)))


@dataclass(frozen=True)
class ListRow:
    """One row of the certificate list, with what the screen and the CSV show."""

    application_id: int
    user_id: str
    office_number: str | None
    office_name: str
    applicant_type: ApplicantType
    status: Status
    applied_at: dt.datetime
    not_before: dt.datetime | None  # validity, once a certificate was issued
    not_after: dt.datetime | None
    revoked_at: dt.datetime | None  # when the CA revoked it (a registered CRL lists it)
    # 手数料残高: the part of this application's fee not yet settled, in yen (see _list_row).
    fee_balance_yen: int = 0
    # The holder asked for revocation (失効依頼) and staff have not registered it yet.
    holder_request: bool = False

    @property
    def status_code(self) -> str:
        return self.status.value

    @property
    def status_label_ja(self) -> str:
        return LABELS_JA[self.status]

    @property
    def status_number(self) -> int:
        return NUMBERS[self.status]

    @property
    def applicant_type_label_ja(self) -> str:
        return APPLICANT_TYPE_LABELS_JA[self.applicant_type]

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.applied_at, self.application_id)


@dataclass(frozen=True)
class Page:
    """A page of the list.  Pass ``next_cursor`` as ``after=`` for the next (older) page and
    ``prev_cursor`` as ``before=`` for the previous (newer) one; None at either end."""

    rows: tuple[ListRow, ...]
    next_cursor: Cursor | None
    prev_cursor: Cursor | None


@dataclass(frozen=True)
class ListFilters:
    """Validated search conditions; build them with :func:`make_filters`."""

    applicant_types: frozenset[ApplicantType]  # never empty: all three means no filter
    statuses: tuple[Status, ...]  # never empty, in docs/product.md §4 order
    user_id: str | None
    user_id_match: Literal["prefix", "exact"]


def _bad(message: str, message_ja: str, **fields: Any) -> MalformedInput:
    return MalformedInput(message, message_ja=message_ja, **fields)


def make_filters(
    *,
    applicant_types: Iterable[ApplicantType | Applicant | str] | None = None,
    user_id: str | None = None,
    user_id_match: str = "prefix",
    statuses: Iterable[Status | str] | None = None,
) -> ListFilters:
    """Check the search conditions of the list screen.

    ``None`` or an empty set means "no condition", as on the screen when no box is ticked.
    ``applicant_types`` takes :class:`ApplicantType`, :class:`~ra.lifecycle.Applicant` or the
    strings ``office``/``agent``/``staff``; ``statuses`` takes :class:`Status` or status codes.
    A blank user ID is no condition.
    """
    types: set[ApplicantType] = set()
    for value in applicant_types or ():
        try:
            types.add(ApplicantType(str(value)))
        except ValueError:
            raise _bad(
                f"unknown applicant type {str(value)[:40]!r}",
                "申請者の指定が正しくありません（事業所・代理人・職員から選んでください）",
                field="applicant_types",
            ) from None
    wanted: set[Status] = set()
    for value in statuses or ():
        try:
            wanted.add(Status(str(value)))
        except ValueError:
            raise _bad(
                f"unknown status {str(value)[:40]!r}",
                "状況の指定が正しくありません",
                field="statuses",
            ) from None
    if user_id_match not in ("prefix", "exact"):
        raise _bad(
            f"user_id_match must be 'prefix' or 'exact', not {str(user_id_match)[:20]!r}",
            "ユーザIDの検索方法の指定が正しくありません",
            field="user_id_match",
        )
    uid: str | None = None
    if user_id is not None:
        if not isinstance(user_id, str):
            raise _bad("user ID must be text", "ユーザIDが正しくありません", field="user_id")
        uid = user_id.strip() or None
        if uid is not None and (len(uid) > USER_ID_MAX or not uid.isprintable()):
            raise _bad(
                f"user ID must be at most {USER_ID_MAX} printable characters",
                f"ユーザIDは{USER_ID_MAX}文字以内で、使用できない文字を含めずに入力してください",
                field="user_id",
            )
    return ListFilters(
        applicant_types=frozenset(types or ApplicantType),
        statuses=tuple(s for s in Status if s in wanted) if wanted else tuple(Status),
        user_id=uid,
        user_id_match="exact" if user_id_match == "exact" else "prefix",
    )


def _check_page_size(page_size: object) -> int:
    if (
        not isinstance(page_size, int)
        or isinstance(page_size, bool)
        or not 1 <= page_size <= MAX_PAGE_SIZE
    ):
        raise _bad(
            f"page size must be an integer from 1 to {MAX_PAGE_SIZE}",
            f"表示件数は1から{MAX_PAGE_SIZE}までの数で指定してください",
            field="page_size",
        )
    return page_size


def _as_cursor(value: Cursor | str | None) -> Cursor | None:
    if value is None or isinstance(value, Cursor):
        if isinstance(value, Cursor) and (
            value.applied_at.tzinfo is None or not isinstance(value.application_id, int)
        ):
            raise _bad(
                "a list cursor needs an aware datetime and an integer id",
                "一覧のページ指定が正しくありません。最初のページから検索し直してください",
                field="cursor",
            )
        return value
    return Cursor.parse(value)


# --- SQL ----------------------------------------------------------------------------------


def _groups(types: frozenset[ApplicantType]) -> list[list[ColumnElement[bool]]]:
    """Disjoint conditions whose union is the chosen applicant types.

    Each group's equality columns lead an index followed by (status, applied_at, id), so one
    group and one status make one ordered index range.  All three types still give two
    groups (one per applicant), never "no condition", so every branch stays such a range.
    """
    staff = ApplicantType.STAFF in types
    covered = [a for a in (Applicant.OFFICE, Applicant.AGENT) if ApplicantType(a.value) in types]
    groups: list[list[ColumnElement[bool]]] = []
    for applicant in covered:
        group: list[ColumnElement[bool]] = [Application.applicant == applicant]
        if not staff:
            group.append(Application.entered_by.not_in(STAFF_ENTRIES))
        groups.append(group)
    if staff and len(covered) < 2:
        for entered_by in STAFF_ENTRIES:
            group = [Application.entered_by == entered_by]
            group.extend(Application.applicant != a for a in covered)
            groups.append(group)
    return groups


def _type_condition(types: frozenset[ApplicantType]) -> ColumnElement[bool] | None:
    if len(types) == len(ApplicantType):
        return None
    return or_(*(and_(*g) for g in _groups(types)))


def _user_id_column(session: Session) -> ColumnElement[str] | InstrumentedAttribute[str]:
    # Prefix ranges need code-point order; PostgreSQL's default collation may be linguistic,
    # so compare in "C" there (migration 0004 indexes that expression).  SQLite's BINARY
    # collation already is code-point order.
    if session.get_bind().dialect.name == "postgresql":
        return Account.user_id.collate("C")
    return Account.user_id


def _prefix_upper(prefix: str) -> str | None:
    """The least string greater than every string that starts with ``prefix``."""
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if code == 0xD800:
            code = 0xE000  # surrogates never occur in stored text
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None


def _user_condition(session: Session, f: ListFilters) -> ColumnElement[bool]:
    column = _user_id_column(session)
    assert f.user_id is not None
    if f.user_id_match == "exact":
        return column == f.user_id
    upper = _prefix_upper(f.user_id)
    lower = column >= f.user_id
    return lower if upper is None else and_(lower, column < upper)


def _matching_accounts(session: Session, f: ListFilters) -> list[int] | None:
    """Ids of the accounts the user ID matches, or None when there are too many to walk."""
    stmt = (
        select(Account.id)
        .where(_user_condition(session, f))
        .order_by(_user_id_column(session))
        .limit(ACCOUNT_FANOUT + 1)
    )
    ids = list(session.scalars(stmt))
    return None if len(ids) > ACCOUNT_FANOUT else ids


def _keyset(cursor: Cursor | None, forward: bool) -> list[ColumnElement[bool]]:
    if cursor is None:
        return []
    key = tuple_(Application.applied_at, Application.id)
    bound = tuple_(literal(cursor.applied_at, UTCDateTime()), literal(cursor.application_id))
    return [key < bound if forward else key > bound]


def _ordered_keys(
    branches: list[list[ColumnElement[bool]]], limit: int, forward: bool
) -> Select[*tuple[Any, ...]]:
    """The ids of the first ``limit`` rows, in list order, of the union of ``branches``."""
    order = (
        (Application.applied_at.desc(), Application.id.desc())
        if forward
        else (Application.applied_at.asc(), Application.id.asc())
    )

    def branch(conditions: list[ColumnElement[bool]]) -> Select[*tuple[Any, ...]]:
        return (
            select(Application.applied_at.label("applied_at"), Application.id.label("id"))
            .where(*conditions)
            .order_by(*order)
            .limit(limit)
        )

    if len(branches) == 1:
        return select(Application.id).where(*branches[0]).order_by(*order).limit(limit)
    parts = [select(sq.c.applied_at, sq.c.id) for sq in (branch(b).subquery() for b in branches)]
    keys = union_all(*parts).subquery("list_keys")
    outer = (
        (keys.c.applied_at.desc(), keys.c.id.desc())
        if forward
        else (
            keys.c.applied_at.asc(),
            keys.c.id.asc(),
        )
    )
    return select(keys.c.id).order_by(*outer).limit(limit)


def _key_query(
    session: Session, f: ListFilters, cursor: Cursor | None, limit: int, forward: bool
) -> Select[*tuple[Any, ...]] | None:
    """The query for the page's ids, or None when no row can match."""
    keyset = _keyset(cursor, forward)
    if f.user_id is not None:
        accounts = _matching_accounts(session, f)
        if accounts is not None:
            if not accounts:
                return None
            by_account = (
                Application.account_id == accounts[0]
                if len(accounts) == 1
                else Application.account_id.in_(accounts)
            )
            types = _type_condition(f.applicant_types)
            extra = [by_account, *keyset, *([types] if types is not None else [])]
            return _ordered_keys(
                [[*extra, Application.status == s] for s in f.statuses], limit, forward
            )
        keyset = [
            *keyset,
            Application.account_id.in_(select(Account.id).where(_user_condition(session, f))),
        ]
    branches = [
        [*group, Application.status == s, *keyset]
        for group in _groups(f.applicant_types)
        for s in f.statuses
    ]
    return _ordered_keys(branches, limit, forward)


def _row_select() -> Select[*tuple[Any, ...]]:
    """What a list row shows, the fee balance's parts included (see :func:`_list_row`)."""
    # The sum of the application's fee entries, read through ix_fee_entries_application_id.
    fee_entries = (
        select(func.sum(FeeEntry.amount_yen))
        .where(FeeEntry.application_id == Application.id)
        .correlate(Application)
        .scalar_subquery()
        .label("fee_entries")
    )
    # An open 失効依頼 of the holder, read through uq_revocation_requests_one_open.
    holder_request = (
        exists()
        .where(
            RevocationRequest.application_id == Application.id,
            RevocationRequest.closed_at.is_(None),
        )
        .correlate(Application)
        .label("holder_request")
    )
    return (
        select(
            Application.id,
            Account.user_id,
            Application.office_number,
            Application.office_name,
            Application.applicant,
            Application.entered_by,
            Application.status,
            Application.applied_at,
            Application.fee_yen,
            Certificate.not_before,
            Certificate.not_after,
            Certificate.revoked_at,
            fee_entries,
            holder_request,
        )
        .join(Account, Account.id == Application.account_id)
        .outerjoin(Certificate, Certificate.application_id == Application.id)
    )


def _list_row(r: Any) -> ListRow:
    """A row of :func:`_row_select` as the screen shows it.

    手数料残高 (the part of the fee not yet settled, in yen): an office's fee is charged to
    its fee-offset balance when it applies, cancelled by a rejection and settled by the
    offset against its claim payments, so an office application's balance is the sum of its
    fee entries; an agent pays by bank transfer, so its balance is the fee while it awaits
    payment (status 2) and nothing once the payment is registered or it is rejected.
    """
    kind = (
        ApplicantType.STAFF
        if r.entered_by in STAFF_ENTRIES
        else ApplicantType(Applicant(r.applicant).value)
    )
    status = Status(r.status)
    balance = int(r.fee_entries or 0)
    if Applicant(r.applicant) is Applicant.AGENT and status is Status.AWAITING_PAYMENT:
        balance += int(r.fee_yen)
    return ListRow(
        application_id=r.id,
        user_id=r.user_id,
        office_number=r.office_number,
        office_name=r.office_name,
        applicant_type=kind,
        status=status,
        applied_at=r.applied_at,
        not_before=r.not_before,
        not_after=r.not_after,
        revoked_at=r.revoked_at,
        fee_balance_yen=balance,
        holder_request=bool(r.holder_request),
    )


def _rows(session: Session, ids: list[int]) -> dict[int, ListRow]:
    if not ids:
        return {}
    stmt = _row_select().where(Application.id.in_(ids))
    return {r.id: _list_row(r) for r in session.execute(stmt)}


def row_of(session: Session, application_id: int) -> ListRow | None:
    """The list row of one application (the detail screen shows the same 手数料残高)."""
    return _rows(session, [application_id]).get(application_id)


def iter_rows(session: Session, filters: ListFilters, *, batch: int = 500) -> Iterator[ListRow]:
    """Every row of the search, newest first, from one ordered statement read in batches.

    For saving the whole list (:mod:`ra.desk.export`): one statement is one consistent read, and
    ``batch`` rows at a time are fetched (a server-side cursor on PostgreSQL), so memory
    stays constant however long the list is.
    """
    size = _check_page_size(batch)
    conditions = _flat_conditions(session, filters)
    if conditions is None:
        return
    stmt = (
        _row_select()
        .where(*conditions)
        .order_by(Application.applied_at.desc(), Application.id.desc())
        .execution_options(yield_per=size)
    )
    for r in session.execute(stmt):
        yield _list_row(r)


def list_applications(
    session: Session,
    party: Party,
    *,
    applicant_types: Iterable[ApplicantType | Applicant | str] | None = None,
    user_id: str | None = None,
    user_id_match: str = "prefix",
    statuses: Iterable[Status | str] | None = None,
    page_size: int = 50,
    after: Cursor | str | None = None,
    before: Cursor | str | None = None,
) -> Page:
    """One page of the certificate list, newest first (applied_at, then id, descending).

    ``after``: the page of rows older than this cursor (the next page); ``before``: the page of
    rows newer than it (the previous page); neither: the first page.  See :func:`make_filters`
    for the conditions.  Raises :class:`MalformedInput` for a page size outside 1..500, a
    malformed cursor, both cursors at once, or an unknown status or applicant type, and
    :class:`~shomei.errors.NotPermitted` for a party that may not see every application.
    """
    require(party, Permission.VIEW_ALL_APPLICATIONS)
    filters = make_filters(
        applicant_types=applicant_types,
        user_id=user_id,
        user_id_match=user_id_match,
        statuses=statuses,
    )
    size = _check_page_size(page_size)
    after_c, before_c = _as_cursor(after), _as_cursor(before)
    if after_c is not None and before_c is not None:
        raise _bad(
            "give either after or before, not both",
            "一覧のページ指定が正しくありません。最初のページから検索し直してください",
            field="cursor",
        )
    return fetch_page(session, filters, page_size=size, after=after_c, before=before_c)


def fetch_page(
    session: Session,
    filters: ListFilters,
    *,
    page_size: int,
    after: Cursor | None = None,
    before: Cursor | None = None,
) -> Page:
    """:func:`list_applications` for conditions already checked by :func:`make_filters`."""
    size = _check_page_size(page_size)
    forward = before is None
    stmt = _key_query(session, filters, after if forward else before, size + 1, forward)
    ids: list[int] = list(session.scalars(stmt)) if stmt is not None else []
    more = len(ids) > size
    ids = ids[:size]
    found = _rows(session, ids)
    rows = [found[i] for i in ids if i in found]
    if not forward:
        rows.reverse()
    if not rows:
        return Page((), None, None)
    if forward:
        next_cursor = rows[-1].cursor if more else None
        prev_cursor = rows[0].cursor if after is not None else None
    else:
        next_cursor = rows[-1].cursor
        prev_cursor = rows[0].cursor if more else None
    return Page(tuple(rows), next_cursor, prev_cursor)


def count_applications(
    session: Session,
    party: Party,
    *,
    applicant_types: Iterable[ApplicantType | Applicant | str] | None = None,
    user_id: str | None = None,
    user_id_match: str = "prefix",
    statuses: Iterable[Status | str] | None = None,
) -> int:
    """How many applications the list matches (the screen's 全件数), same conditions."""
    require(party, Permission.VIEW_ALL_APPLICATIONS)
    f = make_filters(
        applicant_types=applicant_types,
        user_id=user_id,
        user_id_match=user_id_match,
        statuses=statuses,
    )
    return count_matching(session, f)


def _flat_conditions(session: Session, f: ListFilters) -> list[ColumnElement[bool]] | None:
    """The search as one WHERE clause (for counting and planning); None when nothing matches."""
    conditions: list[ColumnElement[bool]] = []
    types = _type_condition(f.applicant_types)
    if types is not None:
        conditions.append(types)
    if len(f.statuses) < len(Status):
        conditions.append(Application.status.in_(f.statuses))
    if f.user_id is not None:
        accounts = _matching_accounts(session, f)
        if accounts == []:
            return None
        conditions.append(
            Application.account_id.in_(accounts)
            if accounts is not None
            else Application.account_id.in_(select(Account.id).where(_user_condition(session, f)))
        )
    return conditions


def count_matching(session: Session, filters: ListFilters) -> int:
    """:func:`count_applications` for conditions already checked by :func:`make_filters`."""
    conditions = _flat_conditions(session, filters)
    if conditions is None:
        return 0
    stmt = select(func.count()).select_from(Application).where(*conditions)
    return int(session.scalar(stmt) or 0)


# --- page numbers ---------------------------------------------------------------------------
#
# The screen also numbers its pages (先頭, 前頁, 次頁, 最終 and a page number to jump to).
# Keyset cursors cannot reach page k by themselves, and OFFSET reaches it by reading and
# throwing away every row before it: page 4,000 of 200,000 rows would read 200,000 index
# entries on every click, two hundred times what the same click costs over 1,000 rows.
# Instead a search is *planned* once: one ordered pass over the matching keys (an index-only
# scan of the narrow index ``ix_applications_list_order``, migration 0008) keeps the key of
# every page's first row (its anchor) and the total, which the screen needs as 全件数 anyway
# and whose count is the same pass.  A page is then the keyset range between two anchors:
# about ``page_size`` index entries wherever it is, and the plan is reused while the search
# stays the same.


@dataclass(frozen=True)
class PagePlan:
    """A search's page boundaries: the first row of each page, newest first, and the total.

    Made by :func:`plan_pages` (one pass over the matching keys); small (a 200,000-row search
    in pages of 50 keeps 4,000 keys) and immutable, so a cache may share it between requests.
    """

    filters: ListFilters
    page_size: int
    total: int
    anchors: tuple[Cursor, ...]

    @property
    def page_count(self) -> int:
        """How many pages the search has; an empty search has one, empty page."""
        return max(1, len(self.anchors))


@dataclass(frozen=True)
class NumberedPage:
    """Page ``page`` of ``page_count`` of a search of ``total`` rows (全件数).

    ``stale`` is true when the rows no longer fit the plan the page was cut from: an
    application that matches arrived after the search, or rows left or joined the search
    (another staff member moved them) so this page holds more or fewer rows than planned.
    The page still shows what lies between its two anchors; the screen should offer to
    search again (a fresh :func:`plan_pages`).
    """

    rows: tuple[ListRow, ...]
    page: int
    page_count: int
    total: int
    page_size: int
    plan: PagePlan | None  # None for a first page read without planning
    stale: bool

    @property
    def has_next(self) -> bool:
        return self.page < self.page_count

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def plan_pages(session: Session, filters: ListFilters, *, page_size: int = 50) -> PagePlan:
    """Plan the pages of a search: the key of each page's first row and the total.

    One statement, so anchors and total come from one snapshot: the matching keys in list
    order numbered by ``row_number()`` (read in order from ``ix_applications_list_order``, no
    sort), of which the database returns only every ``page_size``-th, with the count as an
    uncorrelated scalar subquery.  What crosses the wire is a few thousand keys even for
    200,000 rows; the pass itself is linear in the matching rows, once per search.
    """
    size = _check_page_size(page_size)
    conditions = _flat_conditions(session, filters)
    if conditions is None:
        return PagePlan(filters, size, 0, ())
    order = (Application.applied_at.desc(), Application.id.desc())
    numbered = (
        select(
            Application.applied_at.label("applied_at"),
            Application.id.label("id"),
            func.row_number().over(order_by=order).label("rn"),
        )
        .where(*conditions)
        .subquery("numbered")
    )
    counted = select(func.count()).select_from(Application).where(*conditions)
    stmt = (
        select(numbered.c.applied_at, numbered.c.id, counted.scalar_subquery().label("total"))
        .where((numbered.c.rn - 1) % size == 0)
        .order_by(numbered.c.rn)
    )
    anchors: list[Cursor] = []
    total: int | None = None
    for applied_at, application_id, count in session.execute(stmt):
        anchors.append(Cursor(applied_at, int(application_id)))
        total = int(count)
    if total is None:  # no row matched: the count was not read
        total = 0
    return PagePlan(filters, size, total, tuple(anchors))


def _check_page_number(page: object) -> int:
    if not isinstance(page, int) or isinstance(page, bool) or page < 1:
        raise _bad(
            "the page number must be a whole number from 1",
            "ページ番号は1以上の数で指定してください",
            field="page",
        )
    return page


def list_page(
    session: Session,
    filters: ListFilters,
    *,
    page: int = 1,
    page_size: int = 50,
    plan: PagePlan | None = None,
) -> NumberedPage:
    """Page ``page`` (from 1) of the search ``filters``, newest first, with 全件数.

    ``plan`` is the search's :class:`PagePlan` from an earlier call (``NumberedPage.plan``).
    Without a plan that fits (same conditions and page size), page 1 is read by keyset and
    the total counted, without planning (``NumberedPage.plan`` is None): most searches never
    leave their first page.  Any other page plans the search first (once; pass the plan on
    to the next call, or use a :class:`PlanCache`).  A page number beyond the last page gives
    the last page (what 最終 and a typed number too large both mean on the screen); zero, a
    negative or a non-integer page raises :class:`MalformedInput`.  An empty search gives
    page 1 of 1 with no rows.
    """
    number = _check_page_number(page)
    size = _check_page_size(page_size)
    if plan is not None and (plan.filters != filters or plan.page_size != size):
        plan = None
    if plan is None and number == 1:
        first = fetch_page(session, filters, page_size=size)
        total = count_matching(session, filters)
        count = max(1, -(-total // size))
        return NumberedPage(first.rows, 1, count, total, size, None, False)
    if plan is None:
        plan = plan_pages(session, filters, page_size=size)
    number = min(number, plan.page_count)
    if not plan.anchors:
        newer = _key_query(session, filters, None, 1, True)
        stale = newer is not None and session.scalar(newer) is not None
        return NumberedPage((), number, plan.page_count, plan.total, size, plan, stale)
    top = plan.anchors[number - 1]
    # (applied_at, id) < (t, n + 1) is (applied_at, id) <= (t, n): ids are integers.
    upper = Cursor(top.applied_at, top.application_id + 1)
    lower = plan.anchors[number] if number < len(plan.anchors) else None
    stmt = _key_query(session, filters, upper, size + 1, True)
    ids: list[int] = list(session.scalars(stmt)) if stmt is not None else []
    found = _rows(session, ids)
    rows = [found[i] for i in ids if i in found]
    in_range = [r for r in rows if lower is None or r.cursor > lower]
    planned = size if lower is not None else plan.total - size * (len(plan.anchors) - 1)
    newest = _key_query(session, filters, plan.anchors[0], 1, False)
    stale = len(in_range) != planned or (newest is not None and session.scalar(newest) is not None)
    return NumberedPage(
        tuple(in_range[:size]), number, plan.page_count, plan.total, size, plan, stale
    )


class PlanCache:
    """The page plans of recent searches, so paging through a search does not plan it anew.

    Keyed by the search conditions and page size, at most ``max_entries`` plans (least
    recently used go first), each kept ``max_age`` from when it was made.  One per process
    (a worker of the web server); thread-safe.  A plan is a snapshot, so the screen's 検索
    button passes ``refresh=True``, and a page found :attr:`NumberedPage.stale` is planned
    again on the next request.
    """

    def __init__(
        self, *, max_entries: int = 64, max_age: dt.timedelta = dt.timedelta(minutes=5)
    ) -> None:
        self._plans: OrderedDict[tuple[ListFilters, int], tuple[dt.datetime, PagePlan]] = (
            OrderedDict()
        )
        self._max_entries = max_entries
        self._max_age = max_age
        self._lock = threading.Lock()

    def page(
        self,
        session: Session,
        party: Party,
        filters: ListFilters,
        *,
        page: int,
        page_size: int,
        now: dt.datetime,
        refresh: bool = False,
    ) -> NumberedPage:
        """:func:`list_page` with the cached plan of this search, when fresh enough.

        The list's service: :class:`~shomei.errors.NotPermitted` for a party that may not see
        every application (:func:`list_page` and :func:`plan_pages` are its building blocks,
        for conditions and a party already checked).
        """
        require(party, Permission.VIEW_ALL_APPLICATIONS)
        key = (filters, page_size)
        plan: PagePlan | None = None
        with self._lock:
            entry = self._plans.get(key)
            if entry is not None and not refresh and now - entry[0] <= self._max_age:
                plan = entry[1]
                self._plans.move_to_end(key)
        result = list_page(session, filters, page=page, page_size=page_size, plan=plan)
        with self._lock:
            if result.stale:
                self._plans.pop(key, None)
            elif result.plan is not None and result.plan is not plan:
                self._plans[key] = (now, result.plan)
                self._plans.move_to_end(key)
                while len(self._plans) > self._max_entries:
                    self._plans.popitem(last=False)
        return result
