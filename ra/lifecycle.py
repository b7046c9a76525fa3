"""The lifecycle of a certificate application: this module alone owns it.

The ten statuses of docs/product.md §4, the events, the transition table (who may do what, from
which status, to which) and :func:`apply`, the one function that changes a status.  Nothing else in
the code assigns ``Application.status``.  The table is data (a frozen mapping), so tests walk
every (status, event, actor) combination and the documentation draws its diagram from it.

:func:`apply` is guarded in SQL: the UPDATE matches the status and version the caller read, and
when zero rows change someone else got there first and :class:`ChangedMeanwhile` tells the
user so.  An event the status does not allow is :class:`TransitionRefused`; both are a
:class:`~shomei.errors.Conflict` (the object's state is in the way).  An actor the table does
not name for the event is :class:`~shomei.errors.NotPermitted`.  It
writes the audit record in the same transaction; the caller adds the side effects (notice,
outbox mail, fee) to the same session before it commits, so all of it happens or none of it.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from shomei.errors import AlreadyExists, Conflict, NotPermitted

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ra.store.models import Application


class Status(enum.StrEnum):
    AWAITING_ISSUE_REQUEST = "awaiting_issue_request"  # 1 発行依頼待ち
    AWAITING_PAYMENT = "awaiting_payment"  # 2 入金待ち
    ISSUE_REQUESTED = "issue_requested"  # 3 発行依頼中
    AWAITING_ISSUANCE = "awaiting_issuance"  # 4 発行待ち
    ISSUED = "issued"  # 5 発行済み
    REVOCATION_REQUESTED = "revocation_requested"  # 6 失効依頼中
    AWAITING_REVOCATION = "awaiting_revocation"  # 7 失効待ち
    REVOKED = "revoked"  # 8 失効済み
    REJECTION_PENDING = "rejection_pending"  # 9 却下待ち
    REJECTED = "rejected"  # 10 却下


LABELS_JA: Mapping[Status, str] = MappingProxyType(
    {
        Status.AWAITING_ISSUE_REQUEST: "発行依頼待ち",
        Status.AWAITING_PAYMENT: "入金待ち",
        Status.ISSUE_REQUESTED: "発行依頼中",
        Status.AWAITING_ISSUANCE: "発行待ち",
        Status.ISSUED: "発行済み",
        Status.REVOCATION_REQUESTED: "失効依頼中",
        Status.AWAITING_REVOCATION: "失効待ち",
        Status.REVOKED: "失効済み",
        Status.REJECTION_PENDING: "却下待ち",
        Status.REJECTED: "却下",
    }
)

LABELS_EN: Mapping[Status, str] = MappingProxyType(
    {
        Status.AWAITING_ISSUE_REQUEST: "awaiting issue request",
        Status.AWAITING_PAYMENT: "awaiting payment",
        Status.ISSUE_REQUESTED: "issue requested",
        Status.AWAITING_ISSUANCE: "awaiting issuance",
        Status.ISSUED: "issued",
        Status.REVOCATION_REQUESTED: "revocation requested",
        Status.AWAITING_REVOCATION: "awaiting revocation",
        Status.REVOKED: "revoked",
        Status.REJECTION_PENDING: "rejection pending",
        Status.REJECTED: "rejected",
    }
)

# Status number of docs/product.md §4 (for screens and CSV exports that show 1-10).
NUMBERS: Mapping[Status, int] = MappingProxyType({s: i for i, s in enumerate(Status, start=1)})


class Event(enum.StrEnum):
    APPLY = "apply"  # 申込 (office, agent, or staff on behalf)
    REGISTER_ISSUE_REQUEST = "register_issue_request"  # 発行依頼登録
    REGISTER_PAYMENT = "register_payment"  # 入金登録
    REJECT = "reject"  # 却下
    EDIT_REJECTION_REASON = "edit_rejection_reason"  # 却下理由の修正
    UNDO_APPROVAL = "undo_approval"  # 発行依頼/入金登録の取消
    UNDO_REJECTION = "undo_rejection"  # 却下取消
    DISPATCH_ISSUANCE = "dispatch_issuance"  # 証明書発行依頼 (B7)
    REGISTER_CERTIFICATE = "register_certificate"  # 証明書登録 (B9)
    CA_REFUSED = "ca_refused"  # the CA refused the request (bad CSR, ...): to 却下待ち
    # The CA abandoned the batch before signing the request: send it again (4 → 3).
    REREQUEST_ISSUANCE = "rerequest_issuance"  # 発行依頼の再送
    PROCESS_REJECTION = "process_rejection"  # 却下処理
    REGISTER_REVOCATION = "register_revocation"  # 証明書失効申請 (B4)
    UNDO_REVOCATION = "undo_revocation"  # 失効取消
    DISPATCH_REVOCATION = "dispatch_revocation"  # 証明書失効依頼 (B8)
    REGISTER_CRL = "register_crl"  # 失効リスト登録 (A6/B10)


class Actor(enum.StrEnum):
    OFFICE = "office"
    AGENT = "agent"
    STAFF = "staff"
    ADMIN = "admin"
    SYSTEM = "system"  # scheduled jobs and imports


class Applicant(enum.StrEnum):
    """Who the certificate is for decides the payment path: offices offset, agents pay."""

    OFFICE = "office"
    AGENT = "agent"


# A target that depends on the applicant: offices wait for the issue request (1), agents
# for their payment (2).  Used by apply-on-behalf and by both undos.
BY_APPLICANT = "by_applicant"

STAFF_SIDE = frozenset({Actor.STAFF, Actor.ADMIN})


@dataclass(frozen=True)
class Transition:
    source: Status | None  # None: the application does not exist yet
    event: Event
    actors: frozenset[Actor]
    target: Status | str  # a Status, or BY_APPLICANT

    def target_for(self, applicant: Applicant) -> Status:
        if isinstance(self.target, Status):
            return self.target
        return (
            Status.AWAITING_ISSUE_REQUEST
            if applicant is Applicant.OFFICE
            else Status.AWAITING_PAYMENT
        )


def _t(
    source: Status | None, event: Event, actors: set[Actor], target: Status | str
) -> tuple[tuple[Status | None, Event], Transition]:
    return (source, event), Transition(source, event, frozenset(actors), target)


S, E, A = Status, Event, Actor

# The transition table of docs/product.md §5.  Nothing else is legal.
TRANSITIONS: Mapping[tuple[Status | None, Event], Transition] = MappingProxyType(
    dict(
        [
            _t(None, E.APPLY, {A.OFFICE, A.AGENT, A.STAFF, A.ADMIN}, BY_APPLICANT),
            _t(
                S.AWAITING_ISSUE_REQUEST,
                E.REGISTER_ISSUE_REQUEST,
                set(STAFF_SIDE),
                S.ISSUE_REQUESTED,
            ),
            _t(S.AWAITING_PAYMENT, E.REGISTER_PAYMENT, set(STAFF_SIDE), S.ISSUE_REQUESTED),
            _t(S.AWAITING_ISSUE_REQUEST, E.REJECT, set(STAFF_SIDE), S.REJECTION_PENDING),
            _t(S.AWAITING_PAYMENT, E.REJECT, set(STAFF_SIDE), S.REJECTION_PENDING),
            _t(S.REJECTION_PENDING, E.EDIT_REJECTION_REASON, set(STAFF_SIDE), S.REJECTION_PENDING),
            _t(S.ISSUE_REQUESTED, E.UNDO_APPROVAL, {A.ADMIN}, BY_APPLICANT),
            _t(S.REJECTION_PENDING, E.UNDO_REJECTION, {A.ADMIN}, BY_APPLICANT),
            _t(S.ISSUE_REQUESTED, E.DISPATCH_ISSUANCE, {A.SYSTEM}, S.AWAITING_ISSUANCE),
            _t(S.AWAITING_ISSUANCE, E.REGISTER_CERTIFICATE, {A.SYSTEM}, S.ISSUED),
            _t(S.AWAITING_ISSUANCE, E.CA_REFUSED, {A.SYSTEM}, S.REJECTION_PENDING),
            # An admin, or the RA operator at the command line (audited as system "cli:…").
            _t(S.AWAITING_ISSUANCE, E.REREQUEST_ISSUANCE, {A.ADMIN, A.SYSTEM}, S.ISSUE_REQUESTED),
            _t(S.REJECTION_PENDING, E.PROCESS_REJECTION, {A.SYSTEM}, S.REJECTED),
            _t(S.ISSUED, E.REGISTER_REVOCATION, set(STAFF_SIDE), S.REVOCATION_REQUESTED),
            _t(S.REVOCATION_REQUESTED, E.UNDO_REVOCATION, {A.ADMIN}, S.ISSUED),
            _t(S.REVOCATION_REQUESTED, E.DISPATCH_REVOCATION, {A.SYSTEM}, S.AWAITING_REVOCATION),
            _t(S.AWAITING_REVOCATION, E.REGISTER_CRL, {A.SYSTEM}, S.REVOKED),
        ]
    )
)

EVENT_LABELS_JA: Mapping[Event, str] = MappingProxyType(
    {
        E.APPLY: "発行申請",
        E.REGISTER_ISSUE_REQUEST: "発行依頼登録",
        E.REGISTER_PAYMENT: "入金登録",
        E.REJECT: "却下",
        E.EDIT_REJECTION_REASON: "却下理由の修正",
        E.UNDO_APPROVAL: "発行依頼・入金登録の取消",
        E.UNDO_REJECTION: "却下取消",
        E.DISPATCH_ISSUANCE: "証明書発行依頼",
        E.REGISTER_CERTIFICATE: "証明書登録",
        E.CA_REFUSED: "認証局による発行拒否",
        E.REREQUEST_ISSUANCE: "発行依頼の再送",
        E.PROCESS_REJECTION: "却下処理",
        E.REGISTER_REVOCATION: "証明書失効申請",
        E.UNDO_REVOCATION: "失効取消",
        E.DISPATCH_REVOCATION: "証明書失効依頼",
        E.REGISTER_CRL: "失効リスト登録",
    }
)


class TransitionRefused(Conflict):
    """The event is not legal from the application's status.  Nothing changed."""

    code = "transition_refused"


class ChangedMeanwhile(Conflict):
    """Someone else changed the application first (the guarded UPDATE matched no row)."""

    code = "changed_meanwhile"


def transition_for(source: Status | None, event: Event, actor: Actor) -> Transition:
    """The legal transition for ``event`` by ``actor`` from ``source``.

    Raises :class:`TransitionRefused` when the status does not allow the event and
    :class:`~shomei.errors.NotPermitted` when it does but not for ``actor``.
    """
    transition = TRANSITIONS.get((source, event))
    label = EVENT_LABELS_JA[event]
    if transition is None:
        here_ja = LABELS_JA[source] if source else "(未申請)"
        here_en = LABELS_EN[source] if source else "(no application)"
        raise TransitionRefused(
            f"'{event.value}' is not possible while the application is {here_en}",
            message_ja=f"状況が「{here_ja}」のため「{label}」はできません",
            event=event.value,
            status=source.value if source else None,
        )
    if actor not in transition.actors:
        raise NotPermitted(
            f"'{event.value}' may not be done by {actor.value}",
            message_ja=f"「{label}」を行う権限がありません",
            event=event.value,
            actor=actor.value,
        )
    return transition


def is_second_pending(exc: Exception) -> bool:
    """True when ``exc`` is the one-application-in-progress index refusing a row."""
    cause = str(getattr(exc, "orig", exc))
    # PostgreSQL names the index; SQLite names the column it covers.
    return "uq_applications_one_pending" in cause or "applications.office_number" in cause


def apply(
    session: Session,
    application: Application,
    event: Event,
    *,
    actor: Actor,
    actor_id: str,
    now: dt.datetime,
    source_address: str | None = None,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> Status:
    """Move ``application`` by ``event``; guarded UPDATE + audit record, in ``session``.

    ``application.status`` and ``application.version`` are what the caller read.  Raises
    :class:`TransitionRefused` for an illegal move, :class:`~shomei.errors.NotPermitted` for
    an actor the table does not name, :class:`~shomei.errors.AlreadyExists` when the move
    would give the account a second application in progress, and :class:`ChangedMeanwhile`
    when another transaction changed the application first; in every case nothing was written.
    """
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    from ra.store import audit
    from ra.store.models import Application as App

    before = Status(application.status)
    transition = transition_for(before, event, actor)
    after = transition.target_for(Applicant(application.applicant))
    values: dict[str, Any] = {
        "status": after,
        "version": application.version + 1,
        "status_changed_at": now,
    }
    if reason is not None:
        values["status_reason"] = reason
    statement = (
        update(App)
        .where(App.id == application.id, App.status == before, App.version == application.version)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    try:
        # A savepoint: an undo that would give the account a second application in progress
        # is refused by the database, and the caller's transaction stays usable.
        with session.begin_nested():
            result = session.execute(statement)
    except IntegrityError as exc:
        if not is_second_pending(exc):
            raise
        raise AlreadyExists(
            "the account already has another application in progress; finish or reject it first",
            message_ja="この利用者には処理中の別の申請があります。先にそちらを完了または却下してください",
            application=application.id,
        ) from exc
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ChangedMeanwhile(
            "someone else changed this application first; nothing was changed, reload it and "
            "try again",
            message_ja="他の職員が先にこの申請を変更しました。今回の操作は行っていません。"
            "画面を読み込み直してから、もう一度操作してください",
            application=application.id,
        )
    session.expire(application)
    audit.record(
        session,
        actor=actor,
        actor_id=actor_id,
        action=event.value,
        object_type="application",
        object_id=str(application.id),
        status_before=before.value,
        status_after=after.value,
        now=now,
        source_address=source_address,
        details=dict(details or {}, **({"reason": reason} if reason else {})),
    )
    return after


def create(
    session: Session,
    application: Application,
    *,
    actor: Actor,
    actor_id: str,
    now: dt.datetime,
    source_address: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> Status:
    """The APPLY event: give a new ``application`` its first status and audit it."""
    transition = transition_for(None, Event.APPLY, actor)
    status = transition.target_for(Applicant(application.applicant))
    application.status = status
    application.version = 1
    application.status_changed_at = now
    session.add(application)
    session.flush()
    from ra.store import audit

    audit.record(
        session,
        actor=actor,
        actor_id=actor_id,
        action=Event.APPLY.value,
        object_type="application",
        object_id=str(application.id),
        status_before=None,
        status_after=status.value,
        now=now,
        source_address=source_address,
        details=dict(details or {}),
    )
    return status


def mermaid() -> str:
    """The transition table as a Mermaid state diagram (docs/lifecycle.md is made from it)."""
    lines = ["stateDiagram-v2"]
    for status in Status:
        lines.append(f"    {status.value}: {NUMBERS[status]} {LABELS_JA[status]}")
    for t in TRANSITIONS.values():
        source = "[*]" if t.source is None else t.source.value
        actors = "/".join(sorted(a.value for a in t.actors))
        label = f"{EVENT_LABELS_JA[t.event]} ({actors})"
        if isinstance(t.target, Status):
            lines.append(f"    {source} --> {t.target.value}: {label}")
        else:
            for target in (Status.AWAITING_ISSUE_REQUEST, Status.AWAITING_PAYMENT):
                lines.append(f"    {source} --> {target.value}: {label}")
    return "\n".join(lines) + "\n"
