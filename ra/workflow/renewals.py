"""Renewal (更新の申込): the next certificate, applied for while the current one is valid.

What the lifecycle allows (docs/lifecycle.md): an application is never reopened, so the next
certificate is a new application (APPLY, :func:`ra.workflow.applications.apply`); only one
application per office may be on its way (statuses 1-4, :data:`ra.party.PENDING`), and an
issued one (5) is not on its way, so an office applies for its next certificate while the
current one stays issued.  Nothing moves the current application: it stays 発行済み,
downloadable and valid until its own expiry (or a revocation someone asks for), so the office
keeps signing claims until the new certificate is installed.

The portal offers renewal (:func:`renewal_offer`) on the application page of an issued
certificate from the first expiry notice on (the largest of ``schedule.expiry_notice_days``,
60 days by default: the notices of :func:`ra.tasks.jobs.expiry_notices` point there), and no
longer once a newer application for the same office is on its way or issued.  :func:`renew`
applies exactly as A1 does (the issuance password, an office's consent to the fee offset, an
RA-generated key or the office's own CSR) for the same office, and records on the current
application that it was renewed by the new one, so both histories tell it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from contract.profile import Profile
from ra.lifecycle import Applicant, Status
from ra.party import PENDING, Party, Permission, application_for, require
from ra.people.passwords import Rng
from ra.settings import RASettings
from ra.store import audit
from ra.store.models import Application
from ra.workflow import applications
from shomei.clock import to_japan
from shomei.errors import Conflict


@dataclass(frozen=True)
class RenewalOffer:
    """Whether the portal offers renewal on an application, and what it says."""

    offered: bool
    opens_at: dt.datetime | None  # from when renewal is offered (before that: not yet)
    expires_at: dt.datetime | None  # the current certificate's expiry
    next_application_id: int | None  # the newer application for the same office, if any
    next_status: Status | None
    # Whether that newer application is the party's own (its status page opens for it); an
    # agent's application for the office is not the office's, nor the office's the agent's.
    next_is_own: bool = False


def window(settings: RASettings) -> dt.timedelta:
    """How long before expiry renewal is offered: the first expiry notice's day count."""
    days = settings.schedule.expiry_notice_days
    return dt.timedelta(days=max(days) if days else 60)


def _newer(session: Session, app: Application) -> Application | None:
    """A later application for the same office that is on its way or issued."""
    return (
        session.execute(
            select(Application)
            .where(
                Application.office_number == app.office_number,
                Application.id != app.id,
                Application.applied_at >= app.applied_at,
                Application.status.in_([*PENDING, Status.ISSUED]),
            )
            .order_by(Application.applied_at.desc(), Application.id.desc())
            .limit(1)
        )
        .scalars()
        .first()
    )


def renewal_offer(
    session: Session, party: Party, application_id: int, *, settings: RASettings, now: dt.datetime
) -> RenewalOffer:
    """Whether ``party`` may renew the certificate of its application now (see the module)."""
    require(party, Permission.APPLY)
    app = application_for(session, party, application_id)
    cert = app.certificate
    if Status(app.status) is not Status.ISSUED or cert is None:
        return RenewalOffer(False, None, None, None, None)
    newer = _newer(session, app)
    opens_at = cert.not_after - window(settings)
    return RenewalOffer(
        offered=newer is None and now >= opens_at,
        opens_at=opens_at,
        expires_at=cert.not_after,
        next_application_id=newer.id if newer is not None else None,
        next_status=Status(newer.status) if newer is not None else None,
        next_is_own=newer is not None and newer.account_id == app.account_id,
    )


def check(
    session: Session, party: Party, application_id: int, *, settings: RASettings, now: dt.datetime
) -> RenewalOffer:
    """The offer, or the :class:`~shomei.errors.Conflict` that says why renewal is not offered."""
    offer = renewal_offer(session, party, application_id, settings=settings, now=now)
    if not offer.offered:
        raise _not_offered(application_for(session, party, application_id), offer)
    return offer


def renew(
    session: Session,
    party: Party,
    application_id: int,
    *,
    settings: RASettings,
    profile: Profile,
    now: dt.datetime,
    issuance_password: str,
    consent_fee_offset: bool = False,
    csr: bytes | None = None,
    rng: Rng = secrets.token_bytes,
    source_address: str | None = None,
) -> Application:
    """更新の申込: a new application for the office of ``application_id`` (A1's rules).

    Refused (:class:`~shomei.errors.Conflict`) when renewal is not offered: the certificate
    is not issued, renewal has not opened yet, or a newer application exists.
    """
    check(session, party, application_id, settings=settings, now=now)
    app = application_for(session, party, application_id)
    new = applications.apply(
        session,
        party,
        settings=settings,
        profile=profile,
        now=now,
        issuance_password=issuance_password,
        consent_fee_offset=consent_fee_offset,
        csr=csr,
        for_office=app.office_number if app.applicant is Applicant.AGENT else None,
        rng=rng,
        source_address=source_address,
    )
    audit.record(
        session,
        actor=party.actor.value,
        actor_id=party.audit_id,
        action="apply_renewal",
        object_type="application",
        object_id=str(app.id),
        status_before=app.status.value,
        status_after=app.status.value,
        now=now,
        source_address=source_address,
        details={"new_application": new.id},
    )
    return new


def _not_offered(app: Application, offer: RenewalOffer) -> Conflict:
    if offer.next_application_id is not None:
        return Conflict(
            f"application {offer.next_application_id} for this office was made already",
            message_ja=f"この事業所の新しい申請(申請番号 {offer.next_application_id})が"
            "すでにあります。そちらの状況をご確認ください",
            application=app.id,
        )
    if offer.opens_at is not None:
        opens = to_japan(offer.opens_at)
        return Conflict(
            f"renewal opens on {opens:%Y-%m-%d}",
            message_ja=f"更新の申込は {opens:%Y/%m/%d} からできます",
            application=app.id,
        )
    return Conflict(
        "only an issued certificate can be renewed; apply for a new certificate instead",
        message_ja="更新できるのは発行済みの証明書だけです。新しく申し込んでください",
        application=app.id,
    )
