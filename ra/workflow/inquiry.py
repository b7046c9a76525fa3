"""状況照会 (A4, docs/product.md §7): an applicant's applications as the portal shows them.

:func:`own_statuses` lists the account's applications; :func:`application_status` gives one
with everything its page needs: the status, the certificate's validity, the rejection reason,
the history as an office should see it (:func:`ra.workflow.history.office_history`: the
federation, never a member of staff by name), and what the applicant can do next: download
(:func:`ra.workflow.downloads.unavailable` says why not), renew
(:func:`ra.workflow.renewals.renewal_offer`) and ask for revocation
(:mod:`ra.workflow.revocation_requests`).  Only the applicant's own applications: another's is
:class:`~shomei.errors.NotFound`, exactly as an id that does not exist.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.lifecycle import Applicant, Status
from ra.party import Party, Permission, account_of, application_for, require
from ra.settings import RASettings
from ra.store.models import Application, RevocationRequest
from ra.workflow import applications, downloads, renewals, revocation_requests
from ra.workflow.history import OfficeHistoryEntry, office_history
from shomei.errors import ShomeiError

REJECTED = frozenset({Status.REJECTION_PENDING, Status.REJECTED})


@dataclass(frozen=True)
class RequestLine:
    """The applicant's open revocation request (失効依頼)."""

    reason_code: str
    note: str | None
    requested_at: dt.datetime

    @property
    def reason_ja(self) -> str:
        return revocation_requests.HOLDER_REASONS.get(self.reason_code, self.reason_code)

    @property
    def reason_en(self) -> str:
        return revocation_requests.HOLDER_REASONS_EN.get(self.reason_code, self.reason_code)


@dataclass(frozen=True)
class ApplicationStatus:
    """One application as its applicant sees it (the portal's 状況照会 page)."""

    application_id: int
    status: Status
    applicant: Applicant
    user_id: str  # the applicant's (an agent writes it as the payer name)
    office_number: str
    office_name: str
    applied_at: dt.datetime
    fee_yen: int
    serial_hex: str | None
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    revoked_at: dt.datetime | None
    expired: bool
    rejection_reason: str | None
    history: tuple[OfficeHistoryEntry, ...]
    own_key: bool  # the office brought its CSR: the certificate, not a PKCS#12
    download_refused: ShomeiError | None  # why the certificate cannot be downloaded now
    renewal: renewals.RenewalOffer
    revocation_request: RequestLine | None
    may_request_revocation: bool

    @property
    def downloadable(self) -> bool:
        return self.download_refused is None


@dataclass(frozen=True)
class StatusRow:
    """A line of the applicant's list of applications."""

    application_id: int
    office_number: str
    office_name: str
    status: Status
    applied_at: dt.datetime
    not_after: dt.datetime | None
    expired: bool
    renewal_due: bool  # an issued certificate inside the renewal window, not renewed yet
    revocation_requested: bool


def own_statuses(
    session: Session, party: Party, *, settings: RASettings, now: dt.datetime
) -> list[StatusRow]:
    """The applicant's applications, newest first, with what each needs next."""
    owned = applications.own_applications(session, party)
    requested = set(
        session.execute(
            select(RevocationRequest.application_id).where(
                RevocationRequest.account_id == party.account_id,
                RevocationRequest.closed_at.is_(None),
            )
        ).scalars()
    )
    rows = []
    for app in owned:
        cert = app.certificate
        status = Status(app.status)
        due = False
        if status is Status.ISSUED and cert is not None:
            due = renewals.renewal_offer(session, party, app.id, settings=settings, now=now).offered
        rows.append(
            StatusRow(
                application_id=app.id,
                office_number=app.office_number,
                office_name=app.office_name,
                status=status,
                applied_at=app.applied_at,
                not_after=cert.not_after if cert is not None else None,
                expired=cert is not None and cert.not_after <= now,
                renewal_due=due,
                revocation_requested=app.id in requested,
            )
        )
    return rows


def application_status(
    session: Session, party: Party, application_id: int, *, settings: RASettings, now: dt.datetime
) -> ApplicationStatus:
    """The application ``application_id`` of ``party``'s own account (A4), or NotFound."""
    require(party, Permission.VIEW_OWN_APPLICATIONS)
    app: Application = application_for(session, party, application_id)
    account = account_of(session, party)
    cert = app.certificate
    status = Status(app.status)
    request = revocation_requests.open_request(session, party, app.id)
    return ApplicationStatus(
        application_id=app.id,
        status=status,
        applicant=Applicant(app.applicant),
        user_id=account.user_id,
        office_number=app.office_number,
        office_name=app.office_name,
        applied_at=app.applied_at,
        fee_yen=app.fee_yen,
        serial_hex=cert.serial_hex if cert is not None else None,
        not_before=cert.not_before if cert is not None else None,
        not_after=cert.not_after if cert is not None else None,
        revoked_at=cert.revoked_at if cert is not None else None,
        expired=cert is not None and cert.not_after <= now,
        rejection_reason=app.status_reason if status in REJECTED else None,
        history=office_history(session, party, app.id),
        own_key=app.wrapped_key is None,
        download_refused=downloads.unavailable(app, now),
        renewal=renewals.renewal_offer(session, party, app.id, settings=settings, now=now),
        revocation_request=RequestLine(request.reason_code, request.note, request.requested_at)
        if request is not None
        else None,
        may_request_revocation=request is None and revocation_requests.may_request(app, now),
    )
