"""One application as the console's detail screen (証明書発行管理, B2-B4) shows it.

Everything the screen needs in one frozen value, read with the viewer's permissions
(:func:`ra.party.application_for`): the applicant (user ID, phone), the office the certificate
is for (name, 代表番号, address), the status, the fee balance (手数料残高, the same rule as the
certificate list, :func:`ra.desk.queries.row_of`), the validity and revocation dates of the
certificate, the rejection reason, the revocation request, the holder's own open request
(失効依頼, :mod:`ra.workflow.revocation_requests`), the payments, the whole history from the
audit log (:func:`ra.workflow.history.application_history`), the notices sent about it and
whether each was opened (:func:`ra.mailing.notices.application_notices`), the version the forms
send back and the actions the viewer may take now (:func:`ra.party.allowed_actions`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.desk import queries
from ra.lifecycle import Applicant, Status
from ra.mailing.notices import NoticeLine, application_notices
from ra.party import Party, Permission, allowed_actions, application_for, may
from ra.store.models import Account, AccountKind, Payment
from ra.workflow import revocation_requests
from ra.workflow.history import HistoryEntry, application_history

# The statuses in which the application's status reason is its rejection reason.
REJECTED = frozenset({Status.REJECTION_PENDING, Status.REJECTED})


@dataclass(frozen=True)
class PaymentLine:
    """A registered bank transfer (入金登録) of an agent's application."""

    paid_on: dt.date
    amount_yen: int
    payer_name: str
    registered_by: str
    registered_at: dt.datetime
    undone_at: dt.datetime | None


@dataclass(frozen=True)
class HolderRequest:
    """An open revocation request of the holder (失効依頼), waiting for staff to register it."""

    reason_code: str  # an RFC 5280 CRLReason name (ra.workflow.revocations.REASONS)
    note: str | None
    requested_by: str  # office / agent
    requested_at: dt.datetime


@dataclass(frozen=True)
class ApplicationDetail:
    """The detail screen's application (see the module docstring)."""

    application_id: int
    version: int
    status: Status
    applicant: Applicant
    entered_by: str  # office, agent or staff (職員申請)
    user_id: str
    phone: str | None
    fee_yen: int
    fee_balance_yen: int
    applied_at: dt.datetime
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    revoked_at: dt.datetime | None
    office_number: str
    office_name: str
    representative_number: str | None
    postal_code: str | None
    address: str | None
    rejection_reason: str | None
    revocation_reason: str | None  # an RFC 5280 CRLReason name (ra.workflow.revocations.REASONS)
    revocation_requested_by: str | None  # office, agent or prefecture
    revocation_requested_at: dt.datetime | None
    holder_request: HolderRequest | None
    payments: tuple[PaymentLine, ...]
    history: tuple[HistoryEntry, ...]
    actions: frozenset[Permission]
    notices: tuple[NoticeLine, ...] = ()  # the notices about it, newest first (staff)

    def may(self, permission: Permission) -> bool:
        """True when the viewer may take ``permission``'s action on the application now."""
        return permission in self.actions


def _office(session: Session, owner: Account, office_number: str) -> Account:
    """The registered office the certificate is for: the owner, or the office an agent named."""
    if owner.kind is AccountKind.OFFICE or not office_number:
        return owner
    office = session.execute(
        select(Account).where(
            Account.office_number == office_number, Account.kind == AccountKind.OFFICE
        )
    ).scalar_one_or_none()
    return office if office is not None else owner


def application_detail(session: Session, party: Party, application_id: int) -> ApplicationDetail:
    """The application ``application_id`` as ``party`` may see it, or :class:`NotFound`."""
    app = application_for(session, party, application_id)
    row = queries.row_of(session, app.id)
    assert row is not None  # application_for has just read it in this transaction
    office = _office(session, app.account, app.office_number)
    payments = session.execute(
        select(Payment).where(Payment.application_id == app.id).order_by(Payment.id)
    ).scalars()
    status = Status(app.status)
    request = revocation_requests.open_request(session, party, app.id)
    return ApplicationDetail(
        application_id=app.id,
        version=app.version,
        status=status,
        applicant=Applicant(app.applicant),
        entered_by=app.entered_by,
        user_id=app.account.user_id,
        phone=app.account.phone,
        fee_yen=app.fee_yen,
        fee_balance_yen=row.fee_balance_yen,
        applied_at=app.applied_at,
        not_before=row.not_before,
        not_after=row.not_after,
        revoked_at=row.revoked_at,
        office_number=app.office_number,
        office_name=app.office_name,
        representative_number=office.representative_number,
        postal_code=office.postal_code,
        address=office.address,
        rejection_reason=app.status_reason if status in REJECTED else None,
        revocation_reason=app.revocation_reason,
        revocation_requested_by=app.revocation_requested_by,
        revocation_requested_at=app.revocation_requested_at,
        holder_request=HolderRequest(
            reason_code=request.reason_code,
            note=request.note,
            requested_by=request.requested_by,
            requested_at=request.requested_at,
        )
        if request is not None
        else None,
        payments=tuple(
            PaymentLine(
                paid_on=p.paid_on,
                amount_yen=p.amount_yen,
                payer_name=p.payer_name,
                registered_by=p.registered_by,
                registered_at=p.registered_at,
                undone_at=p.undone_at,
            )
            for p in payments
        ),
        history=application_history(session, party, app.id),
        actions=allowed_actions(party, app),
        notices=application_notices(session, party, app.id)
        if may(party, Permission.VIEW_ALL_APPLICATIONS)
        else (),
    )
