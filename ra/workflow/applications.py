"""Certificate applications: apply, approve, pay, reject and undo (docs/product.md §5-§8).

Every function here is one action of the portal or the console: it checks who acts and on
what (:mod:`ra.party`), changes the status only through :mod:`ra.lifecycle`, and adds the
side effects (fee entries, the payment row, notices and outbox mails) to the caller's session,
so they commit with the status change or not at all.  Bad input is refused before anything is
written.

Fees (手数料): an office's fee is charged to its fee-offset balance when it applies (the
federation deducts it from the office's claim payments, B11); a rejection cancels that charge
and undoing the rejection charges it again, so the balance only ever counts applications that
are alive.  An agent pays by bank transfer: staff register the payment (B3), and undoing that
registration marks the payment undone.

The console's actions on one application take the ``version`` its page showed: when someone
else changed the application since, nothing is done (:func:`ra.workflow.services.expect_version`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from cryptography import x509
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contract.profile import Profile
from ra import lifecycle
from ra.crypto import keys
from ra.lifecycle import Applicant, Event, Status
from ra.mailing.notify import notify
from ra.party import (
    Party,
    Permission,
    account_of,
    allowed_actions,
    application_for,
    may,
    require,
)
from ra.people.passwords import Rng, check_issuance_password
from ra.settings import RASettings
from ra.store.models import Account, AccountKind, Application, FeeEntry, Payment
from ra.workflow.services import PENDING, clean_reason, expect_version, move
from shomei.clock import to_japan
from shomei.errors import AlreadyExists, Conflict, MalformedInput, NotFound, NotPermitted, Refused

PAYER_LIMIT = 100


@dataclass(frozen=True)
class _Checked:
    """What every check of an application found, before anything is written."""

    owner: Account  # whose application it is (the office, or the agent)
    office: Account  # the office the certificate names
    applicant: Applicant
    entered_by: str
    canonical_password: str | None  # the issuance password as it protects keys
    csr_der: bytes | None  # the office's own CSR, checked; None: the RA makes the key
    key_type: str  # the CSR's key, or the profile's default
    fee_yen: int


def _check(
    session: Session,
    party: Party,
    *,
    settings: RASettings,
    profile: Profile,
    issuance_password: str | None,
    consent_fee_offset: bool | None,
    csr: bytes | None,
    for_user_id: str | None,
    for_office: str | None,
) -> _Checked:
    """Every check of :func:`apply`, in its order; ``consent_fee_offset=None`` skips the
    consent (the confirmation screen asks for it after these checks)."""
    require(party, Permission.APPLY, Permission.APPLY_FOR_APPLICANT)
    if may(party, Permission.APPLY_FOR_APPLICANT):
        if not for_user_id:
            raise MalformedInput(
                "say which office or agent this application is for",
                message_ja="申請する事業所または代理人を指定してください",
                column="for_user_id",
            )
        from ra.people.accounts import get_account

        owner = get_account(session, for_user_id)
        if owner.kind not in (AccountKind.OFFICE, AccountKind.AGENT) or not owner.active:
            raise Refused(
                f"{for_user_id} is not an active office or agent",
                message_ja=f"{for_user_id} は有効な事業所・代理人ではありません",
            )
        entered_by = "staff"
    else:
        if for_user_id not in (None, party.user_id):
            raise NotPermitted(
                "offices and agents apply only for themselves",
                message_ja="事業所・代理人は自分の申請のみ行えます",
            )
        owner = account_of(session, party)
        entered_by = owner.kind.value
    applicant = Applicant(owner.kind.value)
    office = _subject_office(session, owner, applicant, for_office)
    if applicant is Applicant.OFFICE and consent_fee_offset is False:
        raise MalformedInput(
            "the office must consent to the fee being offset against its claim payments",
            message_ja="手数料相殺への同意が必要です。同意する場合はチェックを入れてください",
            column="consent_fee_offset",
        )
    canonical: str | None = None
    if issuance_password is not None and issuance_password.strip():
        canonical = check_issuance_password(owner.issuance_password_hash, issuance_password)
    elif entered_by != "staff" or csr is None:
        raise MalformedInput(
            "the issuance password is required",
            message_ja="証明書発行用パスワードを入力してください",
            column="issuance_password",
        )
    csr_der = keys.check_csr(csr, profile) if csr is not None else None
    number = office.office_number or ""
    pending = pending_application(session, number)
    if pending is not None:
        raise AlreadyExists(
            f"application {pending} for office {number} is still in progress",
            message_ja=(
                f"事業所 {number} の処理中の申請({pending})があります。完了を待ってください"
            ),
            application=pending,
        )
    fee = (
        settings.fees.office_fee_yen
        if applicant is Applicant.OFFICE
        else settings.fees.agent_fee_yen
    )
    return _Checked(
        owner=owner,
        office=office,
        applicant=applicant,
        entered_by=entered_by,
        canonical_password=canonical,
        csr_der=csr_der,
        key_type=keys.csr_key_type(csr_der) if csr_der is not None else profile.default_key_type,
        fee_yen=fee,
    )


def pending_application(session: Session, office_number: str) -> int | None:
    """The id of the office's application still on its way to a certificate (statuses 1-4)."""
    found = session.execute(
        select(Application.id).where(
            Application.office_number == office_number, Application.status.in_(PENDING)
        )
    ).first()
    return None if found is None else int(found[0])


@dataclass(frozen=True)
class ApplyPlan:
    """An application as :func:`apply` would make it: what A1's confirmation screen shows."""

    applicant: Applicant
    office_number: str  # the office the certificate will name
    office_name: str
    fee_yen: int
    own_csr: bool  # the office brought its CSR (its key never leaves it)
    key_type: str  # the key of the CSR, or the one the RA will generate ("rsa2048", ...)
    consent_text: str | None  # what an office agrees to (docs/product.md §6); None for agents


def plan_application(
    session: Session,
    party: Party,
    *,
    settings: RASettings,
    profile: Profile,
    issuance_password: str | None,
    csr: bytes | None = None,
    for_user_id: str | None = None,
    for_office: str | None = None,
) -> ApplyPlan:
    """Check an application as :func:`apply` does (the issuance password, the office, the CSR,
    no application in progress) and say what it would be; nothing is written.

    The portal calls it when the password is entered, then shows the plan to be confirmed (and,
    for an office, the consent to the fee offset); :func:`apply` checks everything again.
    """
    checked = _check(
        session,
        party,
        settings=settings,
        profile=profile,
        issuance_password=issuance_password,
        consent_fee_offset=None,
        csr=csr,
        for_user_id=for_user_id,
        for_office=for_office,
    )
    return ApplyPlan(
        applicant=checked.applicant,
        office_number=checked.office.office_number or "",
        office_name=checked.office.name,
        fee_yen=checked.fee_yen,
        own_csr=checked.csr_der is not None,
        key_type=checked.key_type,
        consent_text=(
            settings.fees.offset_consent if checked.applicant is Applicant.OFFICE else None
        ),
    )


def apply(
    session: Session,
    party: Party,
    *,
    settings: RASettings,
    profile: Profile,
    now: dt.datetime,
    issuance_password: str | None = None,
    consent_fee_offset: bool = False,
    csr: bytes | None = None,
    for_user_id: str | None = None,
    for_office: str | None = None,
    rng: Rng = secrets.token_bytes,
    source_address: str | None = None,
) -> Application:
    """A new application (A1), status 1 for an office, 2 for an agent.

    An office applies for itself with its issuance password and consents to the fee offset
    (the text it agreed to, ``[ra.fees] offset_consent``, goes into the audit record); an
    agent applies on behalf of the registered office whose office number is ``for_office``
    (docs/product.md §1) with the agent's issuance password, and pays by bank transfer.  Staff
    apply on behalf (職員申請) of the account ``for_user_id`` (and, for an agent,
    ``for_office``) with that account's issuance password (from the paper form) or with the
    office's own CSR.

    The key: without ``csr`` the RA generates it (the profile's default type) and keeps it
    only wrapped under the issuance password.  With ``csr`` (the office's own PKCS#10
    request, PEM or DER) the private key never leaves the office: the CSR is checked as the CA
    checks it (:func:`ra.crypto.keys.check_csr`: it parses, its self-signature verifies, the
    profile allows its key type and size) and stored, and no key is kept.  A rejected
    application is never reopened: applying again creates a new one; while an application for
    the same office is still on its way (statuses 1-4) a second one is refused.
    """
    checked = _check(
        session,
        party,
        settings=settings,
        profile=profile,
        issuance_password=issuance_password,
        consent_fee_offset=consent_fee_offset,
        csr=csr,
        for_user_id=for_user_id,
        for_office=for_office,
    )
    owner, office, applicant = checked.owner, checked.office, checked.applicant
    number = office.office_number or ""
    csr_der = checked.csr_der
    wrapped: bytes | None = None
    if csr_der is None:
        assert checked.canonical_password is not None  # checked: no CSR needs the password
        key = keys.generate_key(profile)
        wrapped = keys.wrap_key(key, checked.canonical_password, rng=rng)
        csr_der = keys.make_csr(key, office_number=number, office_name=office.name)
    fee = checked.fee_yen
    app = Application(
        account_id=owner.id,
        applicant=applicant,
        entered_by=checked.entered_by,
        office_number=number,
        office_name=office.name,
        applied_at=now,
        fee_yen=fee,
        fee_offset_consent_at=now if applicant is Applicant.OFFICE else None,
        profile=profile.name,
        wrapped_key=wrapped,
        csr_der=csr_der,
        request_id=rng(16).hex(),
    )
    details: dict[str, object] = {
        "for": owner.user_id,
        "office_number": number,
        "entered_by": checked.entered_by,
        "fee_yen": fee,
        "own_csr": wrapped is None,
        "key_type": checked.key_type,
        "fee_offset_consent": applicant is Applicant.OFFICE,
    }
    if applicant is Applicant.OFFICE:
        details["fee_offset_consent_text"] = settings.fees.offset_consent
    try:
        # A savepoint, so a lost race leaves the caller's transaction usable for its rollback.
        with session.begin_nested():
            lifecycle.create(
                session,
                app,
                actor=party.actor,
                actor_id=party.audit_id,
                now=now,
                source_address=source_address,
                details=details,
            )
    except IntegrityError as exc:
        # Another apply for the same account committed between our check and our insert.
        if not lifecycle.is_second_pending(exc):
            raise
        raise AlreadyExists(
            f"{owner.user_id} already has an application in progress (applied at the same time)",
            message_ja="同時に別の申請が受け付けられました。処理中の申請の完了を待ってください",
            account=owner.user_id,
        ) from exc
    if applicant is Applicant.OFFICE:
        _fee_entry(session, app, +fee, "charge", now)
    else:
        notify(
            session,
            owner,
            kind="invoice",
            title="証明書発行手数料の請求書を発行しました",
            body=(
                f"申請番号 {app.id} の発行手数料 {fee:,} 円の請求書をポータルから印刷し、"
                f"振込人名にユーザー ID「{owner.user_id}」を記入してお振り込みください。"
            ),
            now=now,
            message_id_domain=settings.mail.message_id_domain,
            application_id=app.id,
        )
    return app


def _subject_office(
    session: Session, owner: Account, applicant: Applicant, for_office: str | None
) -> Account:
    """The office the certificate is for: the office itself, or the one an agent names.

    An agent applies on behalf of offices (docs/product.md §1); the office must be registered and
    active, so the certificate names an office the federation knows.
    """
    if applicant is Applicant.OFFICE:
        if for_office not in (None, owner.office_number):
            raise NotPermitted(
                "an office applies only for itself",
                message_ja="事業所は自事業所の申請のみ行えます",
            )
        return owner
    if not for_office:
        raise MalformedInput(
            "say which office (office number) this agent's application is for",
            message_ja="代理申請する事業所の事業所番号を入力してください",
            column="for_office",
        )
    office = session.execute(
        select(Account).where(
            Account.office_number == for_office.strip(), Account.kind == AccountKind.OFFICE
        )
    ).scalar_one_or_none()
    if office is None or not office.active:
        raise NotFound(
            f"no active office with office number {for_office!r}",
            message_ja=f"事業所番号 {for_office!r} の有効な事業所が登録されていません",
            column="for_office",
        )
    return office


def _fee_entry(
    session: Session, app: Application, amount: int, kind: str, now: dt.datetime
) -> None:
    session.add(
        FeeEntry(
            account_id=app.account_id,
            application_id=app.id,
            amount_yen=amount,
            kind=kind,
            created_at=now,
        )
    )
    session.flush()


def register_issue_request(
    session: Session,
    party: Party,
    application_id: int,
    *,
    now: dt.datetime,
    source_address: str | None = None,
    version: int | None = None,
) -> Application:
    """発行依頼登録 (B2): staff approve an office's application, 1 → 3."""
    require(party, Permission.REGISTER_ISSUE_REQUEST)
    app = application_for(session, party, application_id)
    expect_version(app, version)
    move(
        session,
        party,
        app,
        Event.REGISTER_ISSUE_REQUEST,
        now=now,
        source_address=source_address,
    )
    return app


def register_payment(
    session: Session,
    party: Party,
    application_id: int,
    *,
    paid_on: dt.date,
    amount_yen: int,
    payer_name: str,
    now: dt.datetime,
    source_address: str | None = None,
    version: int | None = None,
) -> Payment:
    """入金登録 (B3): staff record an agent's bank transfer, 2 → 3."""
    require(party, Permission.REGISTER_PAYMENT)
    app = application_for(session, party, application_id)
    expect_version(app, version)
    payer = payer_name.strip()
    if not payer or len(payer) > PAYER_LIMIT:
        raise MalformedInput(
            "the payer name is required (at most 100 characters)",
            message_ja="振込人名を 100 文字以内で入力してください",
            column="payer_name",
        )
    if paid_on > to_japan(now).date():
        raise MalformedInput(
            f"the payment date {paid_on} is in the future",
            message_ja=f"入金日 {paid_on} が未来の日付です",
            column="paid_on",
        )
    if amount_yen != app.fee_yen:
        raise MalformedInput(
            f"the amount {amount_yen:,} yen differs from the fee {app.fee_yen:,} yen",
            message_ja=f"入金額 {amount_yen:,} 円が手数料 {app.fee_yen:,} 円と一致しません",
            column="amount_yen",
        )
    move(
        session,
        party,
        app,
        Event.REGISTER_PAYMENT,
        now=now,
        source_address=source_address,
        details={"paid_on": paid_on.isoformat(), "amount_yen": amount_yen, "payer_name": payer},
    )
    payment = Payment(
        application_id=app.id,
        paid_on=paid_on,
        amount_yen=amount_yen,
        payer_name=payer,
        registered_by=party.audit_id,
        registered_at=now,
    )
    session.add(payment)
    session.flush()
    return payment


def reject(
    session: Session,
    party: Party,
    application_id: int,
    *,
    reason: str,
    now: dt.datetime,
    source_address: str | None = None,
    version: int | None = None,
) -> Application:
    """却下 (B2/B3): 1 or 2 → 9 with a required reason; an office's fee charge is cancelled."""
    require(party, Permission.REJECT)
    text = clean_reason(reason, what="rejection reason", what_ja="却下理由")
    app = application_for(session, party, application_id)
    expect_version(app, version)
    move(
        session,
        party,
        app,
        Event.REJECT,
        now=now,
        source_address=source_address,
        reason=text,
    )
    if app.applicant is Applicant.OFFICE:
        _fee_entry(session, app, -app.fee_yen, "cancel", now)
    return app


def edit_rejection_reason(
    session: Session,
    party: Party,
    application_id: int,
    *,
    reason: str,
    now: dt.datetime,
    source_address: str | None = None,
    version: int | None = None,
) -> Application:
    """Correct the rejection reason while the rejection is not yet processed (status 9)."""
    require(party, Permission.EDIT_REJECTION_REASON)
    text = clean_reason(reason, what="rejection reason", what_ja="却下理由")
    app = application_for(session, party, application_id)
    expect_version(app, version)
    move(
        session,
        party,
        app,
        Event.EDIT_REJECTION_REASON,
        now=now,
        source_address=source_address,
        reason=text,
    )
    return app


def undo_approval(
    session: Session,
    party: Party,
    application_id: int,
    *,
    now: dt.datetime,
    source_address: str | None = None,
    version: int | None = None,
) -> Application:
    """取消 (admin): 3 → 1 or 2 while not yet sent to the CA; an agent's payment is undone.

    An office's fee stays charged: its application is alive again, waiting for approval.
    """
    require(party, Permission.UNDO)
    app = application_for(session, party, application_id)
    expect_version(app, version)
    move(
        session,
        party,
        app,
        Event.UNDO_APPROVAL,
        now=now,
        source_address=source_address,
    )
    if app.applicant is Applicant.AGENT:
        payments = session.execute(
            select(Payment).where(Payment.application_id == app.id, Payment.undone_at.is_(None))
        ).scalars()
        for payment in payments:
            payment.undone_at = now
        session.flush()
    return app


def undo_rejection(
    session: Session,
    party: Party,
    application_id: int,
    *,
    now: dt.datetime,
    source_address: str | None = None,
    version: int | None = None,
) -> Application:
    """却下取消 (admin): 9 → 1 or 2 while not yet processed; an office's fee is charged again."""
    require(party, Permission.UNDO)
    app = application_for(session, party, application_id)
    expect_version(app, version)
    previous_reason = app.status_reason
    move(
        session,
        party,
        app,
        Event.UNDO_REJECTION,
        now=now,
        source_address=source_address,
        details={"undone_reason": previous_reason},
    )
    # The reason belonged to the rejection that no longer stands; the audit log keeps it.
    app.status_reason = None
    if app.applicant is Applicant.OFFICE:
        _fee_entry(session, app, +app.fee_yen, "charge", now)
    session.flush()
    return app


def reapply(
    session: Session,
    party: Party,
    application_id: int,
    *,
    settings: RASettings,
    profile: Profile,
    now: dt.datetime,
    issuance_password: str,
    consent_fee_offset: bool = False,
    rng: Rng = secrets.token_bytes,
    source_address: str | None = None,
    version: int | None = None,
) -> Application:
    """再度申込 (B2): staff apply anew for the applicant of a finished application.

    The new application is for the same account and, for an agent, the same office; it is
    made exactly as a staff application on behalf (:func:`apply`), with the applicant's
    issuance password from its paper form and, for an office, its consent to the fee offset.
    The finished application stays as it is: its history is its own.
    """
    require(party, Permission.APPLY_FOR_APPLICANT)
    old = application_for(session, party, application_id)
    expect_version(old, version)
    if old.status in PENDING:
        raise Conflict(
            f"application {old.id} is still in progress; it cannot be applied for again",
            message_ja=f"申請 {old.id} は処理中のため、再度申込はできません",
            application=old.id,
        )
    return apply(
        session,
        party,
        settings=settings,
        profile=profile,
        now=now,
        issuance_password=issuance_password,
        consent_fee_offset=consent_fee_offset,
        for_user_id=old.account.user_id,
        for_office=old.office_number if old.applicant is Applicant.AGENT else None,
        rng=rng,
        source_address=source_address,
    )


def fee_balance(session: Session, account: Account) -> int:
    """The office's fee-offset balance in yen (charges minus cancellations and offsets)."""
    amounts = session.execute(
        select(FeeEntry.amount_yen).where(FeeEntry.account_id == account.id)
    ).scalars()
    return sum(amounts)


def own_applications(session: Session, party: Party) -> list[Application]:
    """The applications of ``party``'s own account, newest first (the portal's 証明書 screen)."""
    require(party, Permission.VIEW_OWN_APPLICATIONS)
    return list(
        session.execute(
            select(Application)
            .where(Application.account_id == party.account_id)
            .order_by(Application.applied_at.desc(), Application.id.desc())
        ).scalars()
    )


def get_application(session: Session, party: Party, application_id: int) -> Application:
    """The application as ``party`` may see it (A4/B1), or :class:`NotFound`."""
    return application_for(session, party, application_id)


@dataclass(frozen=True)
class ApplyState:
    """Whether the signed-in office or agent may apply now (the 証明書 screen's 発行申請)."""

    may_apply: bool
    # An office: the application of its office still in progress (statuses 1-4), if any, and
    # whether it is the office's own (else an agent applied for it).
    pending_application: int | None = None
    pending_is_own: bool = False
    for_agent: bool = False  # an agent names the office on the form


def apply_state(session: Session, party: Party) -> ApplyState:
    """May ``party`` apply now?  Offices while no application of theirs is in progress (an
    agent's for the office counts too); agents always (each office is checked when they apply).
    """
    if not may(party, Permission.APPLY):
        return ApplyState(may_apply=False)
    account = account_of(session, party)
    if account.kind is AccountKind.AGENT:
        return ApplyState(may_apply=True, for_agent=True)
    pending = pending_application(session, account.office_number or "")
    if pending is None:
        return ApplyState(may_apply=True)
    own = session.get(Application, pending)
    return ApplyState(
        may_apply=False,
        pending_application=pending,
        pending_is_own=own is not None and own.account_id == account.id,
    )


@dataclass(frozen=True)
class PortalRow:
    """One row of the portal's 証明書 screen: an application and what may be done with it."""

    application: Application
    # 発行手数料残高: an office's fee charged and not yet offset (its fee entries); an agent's
    # fee while it awaits the transfer (the rule of the console's list, ra.desk.queries).
    balance_yen: int
    actions: frozenset[Permission]  # ra.party.allowed_actions: DOWNLOAD when issued
    invoice: bool  # an agent's application awaiting payment: its invoice can be printed
    certificate: bool  # the CA issued a certificate: its details can be printed


def certificate_screen(session: Session, party: Party) -> list[PortalRow]:
    """The rows of the portal's 証明書 screen: ``party``'s own applications, newest first."""
    owned = own_applications(session, party)
    sums: dict[int, int] = {}
    if owned:
        found = session.execute(
            select(FeeEntry.application_id, func.sum(FeeEntry.amount_yen))
            .where(FeeEntry.application_id.in_([a.id for a in owned]))
            .group_by(FeeEntry.application_id)
        ).all()
        sums = {int(app_id): int(total or 0) for app_id, total in found if app_id is not None}
    rows: list[PortalRow] = []
    for app in owned:
        balance = sums.get(app.id, 0)
        awaiting_payment = (
            app.applicant is Applicant.AGENT and app.status is Status.AWAITING_PAYMENT
        )
        if awaiting_payment:
            balance += app.fee_yen
        rows.append(
            PortalRow(
                application=app,
                balance_yen=balance,
                actions=allowed_actions(party, app),
                invoice=awaiting_payment,
                certificate=app.certificate is not None,
            )
        )
    return rows


def known_offices(session: Session, party: Party) -> list[tuple[str, str]]:
    """(office number, name) of the offices ``party`` applied for before, for an agent's form."""
    seen: dict[str, str] = {}
    for app in own_applications(session, party):
        seen.setdefault(app.office_number, app.office_name)
    return sorted(seen.items())


@dataclass(frozen=True)
class CertificateCard:
    """An issued certificate's details, as the portal prints them (印刷)."""

    application: Application
    serial_hex: str
    not_before: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None
    subject: str  # RFC 4514, as the CA wrote it
    issuer: str
    sha256: str  # the certificate's SHA-256 fingerprint, AA:BB:...


def certificate_card(session: Session, party: Party, application_id: int) -> CertificateCard:
    """The certificate of ``party``'s application ``application_id``, or :class:`Conflict`
    while the CA has not issued one (another office's application is not found)."""
    app = application_for(session, party, application_id)
    cert = app.certificate
    if cert is None:
        raise Conflict(
            f"application {app.id} has no certificate yet",
            message_ja=f"申請 {app.id} の証明書はまだ発行されていません",
            application=app.id,
        )
    parsed = x509.load_der_x509_certificate(cert.der)
    digest = hashlib.sha256(cert.der).hexdigest().upper()
    return CertificateCard(
        application=app,
        serial_hex=cert.serial_hex,
        not_before=cert.not_before,
        not_after=cert.not_after,
        revoked_at=cert.revoked_at,
        subject=parsed.subject.rfc4514_string(),
        issuer=parsed.issuer.rfc4514_string(),
        sha256=":".join(digest[i : i + 2] for i in range(0, len(digest), 2)),
    )
