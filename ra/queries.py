"""The certificate list (証明書一覧, docs/product.md §8): search, keyset paging and the total.

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

The indexes this needs are created by migration ``0004``.  The applicant type of a row is
職員 when the application was entered by federation staff or an admin (職員申請 / 再度申込),
otherwise 事業所 or 代理人 after ``Application.applicant``; so the three check boxes split the
applications into three disjoint sets.  Bad input raises :class:`shomei.errors.MalformedInput`
with an English and a Japanese message, before anything is read.

Also here: :func:`application_history`, an application's history from the audit log (who,
when, what, from which status to which, why), which the console's detail page and
``shomei ra show`` both show.  Every query takes the acting :class:`~ra.party.Party`.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, tuple_, union_all
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.expression import literal

from ra.lifecycle import EVENT_LABELS_JA, LABELS_JA, NUMBERS, Applicant, Event, Status
from ra.models import Account, Application, AuditRecord, Certificate, UTCDateTime
from ra.party import Party, Permission, application_for, require
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


def _rows(session: Session, ids: list[int]) -> dict[int, ListRow]:
    if not ids:
        return {}
    stmt = (
        select(
            Application.id,
            Account.user_id,
            Application.office_number,
            Application.office_name,
            Application.applicant,
            Application.entered_by,
            Application.status,
            Application.applied_at,
            Certificate.not_before,
            Certificate.not_after,
            Certificate.revoked_at,
        )
        .join(Account, Account.id == Application.account_id)
        .outerjoin(Certificate, Certificate.application_id == Application.id)
        .where(Application.id.in_(ids))
    )
    rows: dict[int, ListRow] = {}
    for r in session.execute(stmt):
        kind = (
            ApplicantType.STAFF
            if r.entered_by in STAFF_ENTRIES
            else ApplicantType(Applicant(r.applicant).value)
        )
        rows[r.id] = ListRow(
            application_id=r.id,
            user_id=r.user_id,
            office_number=r.office_number,
            office_name=r.office_name,
            applicant_type=kind,
            status=Status(r.status),
            applied_at=r.applied_at,
            not_before=r.not_before,
            not_after=r.not_after,
            revoked_at=r.revoked_at,
        )
    return rows


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
    conditions: list[ColumnElement[bool]] = []
    types = _type_condition(f.applicant_types)
    if types is not None:
        conditions.append(types)
    if len(f.statuses) < len(Status):
        conditions.append(Application.status.in_(f.statuses))
    if f.user_id is not None:
        accounts = _matching_accounts(session, f)
        if accounts == []:
            return 0
        conditions.append(
            Application.account_id.in_(accounts)
            if accounts is not None
            else Application.account_id.in_(select(Account.id).where(_user_condition(session, f)))
        )
    stmt = select(func.count()).select_from(Application).where(*conditions)
    return int(session.scalar(stmt) or 0)


# Japanese labels of the audit actions on an application that are not lifecycle events.
OTHER_ACTIONS_JA: Mapping[str, str] = MappingProxyType(
    {
        "download_pkcs12": "PKCS#12 のダウンロード",
        "download_certificate": "証明書のダウンロード",
        "archive_certificate": "保存期間経過による削除",
        "ca_refused_revocation": "認証局による失効拒否",
        "ca_abandoned_request": "認証局によるバッチ中止",
    }
)
ACTORS_JA: Mapping[str, str] = MappingProxyType(
    {
        "office": "事業所",
        "agent": "代理人",
        "staff": "職員",
        "admin": "管理者",
        "system": "システム",
    }
)


@dataclass(frozen=True)
class HistoryEntry:
    """One line of an application's history (the console's detail page, ``shomei ra show``)."""

    seq: int
    at: dt.datetime  # UTC; shown in Japan time by the edge
    actor: str  # office, agent, staff, admin or system (the operator and the jobs)
    actor_id: str  # the user ID, ``cli:NAME`` for the operator, or the job's name
    action: str  # the lifecycle event, or another audited action (a download, ...)
    action_ja: str
    status_before: Status | None
    status_after: Status | None
    reason: str | None  # the rejection reason, the revocation reason code, ...
    source_address: str | None

    @property
    def actor_ja(self) -> str:
        return ACTORS_JA.get(self.actor, self.actor)


def _action_ja(action: str) -> str:
    try:
        return EVENT_LABELS_JA[Event(action)]
    except ValueError:
        return OTHER_ACTIONS_JA.get(action, action)


def _status(value: str | None) -> Status | None:
    return Status(value) if value else None


def application_history(
    session: Session, party: Party, application_id: int
) -> tuple[HistoryEntry, ...]:
    """The whole history of an application from the audit log, oldest first.

    ``party`` must be able to see the application (:func:`ra.party.application_for`): an
    office or agent asking for another's gets :class:`~shomei.errors.NotFound`.
    """
    app = application_for(session, party, application_id)
    records = session.execute(
        select(AuditRecord)
        .where(AuditRecord.object_type == "application", AuditRecord.object_id == str(app.id))
        .order_by(AuditRecord.seq)
    ).scalars()
    entries = []
    for r in records:
        details = r.details or {}
        reason = details.get("reason") or details.get("reason_code")
        entries.append(
            HistoryEntry(
                seq=r.seq,
                at=r.at,
                actor=r.actor,
                actor_id=r.actor_id,
                action=r.action,
                action_ja=_action_ja(r.action),
                status_before=_status(r.status_before),
                status_after=_status(r.status_after),
                reason=str(reason) if reason is not None else None,
                source_address=r.source_address,
            )
        )
    return tuple(entries)
