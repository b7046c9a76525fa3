"""The RA's data model (SQLAlchemy 2.0, typed), on SQLite or PostgreSQL.

Tables: accounts (offices, agents, federation staff and admins), applications (the ten
statuses of :mod:`ra.lifecycle`, guarded by a version column), certificates, the holders'
revocation requests, payments, fee
entries (the fee-offset balance of each office), notices, the mail outbox, CA batches, CRLs,
the API tokens of the federation's other systems, the hash-chained audit log with its signed
anchors, the scheduler lock, the runs of the scheduled jobs and the background CSV imports of
accounts.  Every timestamp is timezone-aware UTC (:class:`UTCDateTime` restores the zone SQLite
does not keep); enums are stored as strings with CHECK constraints.  The schema is created by
the Alembic migrations in ``ra/store/migrations``; this module is their source of truth.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ra.lifecycle import Applicant, Status

PENDING_SQL = (
    "status IN ('awaiting_issue_request', 'awaiting_payment', 'issue_requested', "
    "'awaiting_issuance')"
)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every backend; naive values are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise TypeError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value)}")
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class AccountKind(enum.StrEnum):
    OFFICE = "office"  # 事業所
    AGENT = "agent"  # 代理人
    STAFF = "staff"  # 連合会職員
    ADMIN = "admin"  # 管理者


class Account(Base):
    """A user of the RA.  Offices and agents use the portal; staff and admins the console."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[AccountKind] = mapped_column(_enum(AccountKind, "account_kind"))
    name: Mapped[str] = mapped_column(String(200))  # office / corporation / person name
    office_number: Mapped[str | None] = mapped_column(String(10), unique=True)
    representative_number: Mapped[str | None] = mapped_column(String(20))
    postal_code: Mapped[str | None] = mapped_column(String(8))
    address: Mapped[str | None] = mapped_column(String(300))
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str | None] = mapped_column(String(200))  # argon2, web login
    issuance_password_hash: Mapped[str | None] = mapped_column(String(200))  # argon2
    # Staff and admins: the TOTP secret, sealed under the RA's secrets key (ra.store.vault).
    totp_secret_sealed: Mapped[str | None] = mapped_column(String(200))
    # When the TOTP secret was confirmed by a first code (None: enrolment still to do), and
    # the RFC 6238 time step of the last code accepted, so that no code is accepted twice.
    totp_enrolled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Raised by a password change, a reset or a disable: web sessions carrying an older epoch
    # are signed out.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # Offices and agents: the name in kana as registered (フリガナ), which the first sign-in
    # asks for (ra.people.first_sign_in); None when the federation did not register one.
    name_kana: Mapped[str | None] = mapped_column(String(100))
    # The first sign-in to the portal, step by step (None: still to do): the terms of use
    # accepted (and their version), the identity confirmed, a password of the person's own
    # chosen (a reset by staff sets it back to None: the letter's password is replaced at the
    # next sign-in), the mail address confirmed by a code sent to it.
    terms_accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    terms_version: Mapped[str | None] = mapped_column(String(32))
    identity_confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    password_chosen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    email_confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("kind != 'office' OR office_number IS NOT NULL", name="office_number"),
        # Prefix search on user IDs (LIKE 'ab%') needs a byte-order index on PostgreSQL.
        Index("ix_accounts_user_id_c", text('user_id COLLATE "C"')).ddl_if(dialect="postgresql"),
    )


class UnknownSignIn(Base):
    """Failed sign-ins with a user ID no account has, counted as an account's would be.

    So that the lockout does not tell which IDs exist: an unknown ID locks after the same
    number of failures, for the same time.  Keyed by the SHA-256 of the folded ID (what was
    typed may be a password typed into the wrong field).
    """

    __tablename__ = "signin_unknown"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_failure_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class MailCode(Base):
    """A 6-digit code mailed to an address, to confirm it or to reset a forgotten password.

    Only a keyed hash of the code is kept (:meth:`ra.store.vault.Vault.mac`, with a salt of
    its own); the mail that carries it is sealed in the outbox until sent.  A code is open
    until ``closed_at``: used, replaced by a newer code, wrong too many times or expired
    (``outcome``).
    """

    __tablename__ = "mail_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # confirm_email / reset_password
    address: Mapped[str] = mapped_column(String(254))
    salt: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    tries: Mapped[int] = mapped_column(Integer, default=0)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(16))  # used/replaced/too_many/expired

    __table_args__ = (
        CheckConstraint("purpose IN ('confirm_email', 'reset_password')", name="purpose"),
    )


class Application(Base):
    """One certificate application and, once issued, the life of its certificate.

    ``status`` is assigned only by :mod:`ra.lifecycle`; ``version`` guards every change.
    """

    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    applicant: Mapped[Applicant] = mapped_column(_enum(Applicant, "applicant"))
    entered_by: Mapped[str] = mapped_column(String(16))  # office / agent / staff (職員申請)
    # The office the certificate is for (its subject): the applicant itself, or the office an
    # agent applies for (docs/product.md §1).  A snapshot, so a later change of the office's name
    # does not change what was requested.
    office_number: Mapped[str] = mapped_column(String(10), server_default="")
    office_name: Mapped[str] = mapped_column(String(200), server_default="")
    status: Mapped[Status] = mapped_column(_enum(Status, "status"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    status_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status_reason: Mapped[str | None] = mapped_column(Text)  # e.g. the rejection reason
    applied_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    fee_yen: Mapped[int] = mapped_column(Integer)
    fee_offset_consent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    profile: Mapped[str] = mapped_column(String(32), default="office")
    # The office's key, generated by the RA and kept only wrapped under the issuance password
    # (scrypt PKCS#8); None when the office brought its own CSR.  Destroyed by B6.
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    csr_der: Mapped[bytes] = mapped_column(LargeBinary)
    # The request id sent to the CA (stable, so a re-sent batch is recognised).
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    issue_batch_id: Mapped[str | None] = mapped_column(String(36))
    revoke_batch_id: Mapped[str | None] = mapped_column(String(36))
    revocation_reason: Mapped[str | None] = mapped_column(String(32))
    revocation_requested_by: Mapped[str | None] = mapped_column(String(16))
    revocation_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    account: Mapped[Account] = relationship()
    certificate: Mapped[Certificate | None] = relationship(
        back_populates="application", uselist=False
    )

    __table_args__ = (
        Index("ix_applications_status_account", "status", "account_id", "id"),
        Index("ix_applications_applicant_status", "applicant", "status", "id"),
        # The console list (ra.desk.queries): newest first within each filter, keyset paging.
        Index(
            "ix_applications_list_applicant",
            "applicant",
            "status",
            "applied_at",
            "id",
            "entered_by",
        ),
        Index(
            "ix_applications_list_entered_by",
            "entered_by",
            "status",
            "applied_at",
            "id",
            "applicant",
        ),
        Index(
            "ix_applications_list_account",
            "account_id",
            "status",
            "applied_at",
            "id",
            "applicant",
            "entered_by",
        ),
        # Page numbers of the list (ra.desk.queries.plan_pages): every key in list order, with the
        # filter columns, so planning a search is an index-only scan.
        Index(
            "ix_applications_list_order",
            "applied_at",
            "id",
            "status",
            "applicant",
            "entered_by",
            "account_id",
        ),
        # At most one application per office on its way to a certificate (statuses 1-4): the
        # service checks first, and this index decides when two applies race.
        Index(
            "uq_applications_one_pending",
            "office_number",
            unique=True,
            postgresql_where=text(PENDING_SQL),
            sqlite_where=text(PENDING_SQL),
        ),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("fee_yen >= 0", name="fee_not_negative"),
    )


class Certificate(Base):
    """A certificate the CA issued (B9), with its revocation once a CRL lists it."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), unique=True)
    serial_hex: Mapped[str] = mapped_column(String(40), unique=True)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revocation_crl_number: Mapped[str | None] = mapped_column(String(50))
    expiry_notices_sent: Mapped[list[int]] = mapped_column(JSON, default=list)  # B5 (days)
    key_destroyed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())  # B6
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())  # B6

    application: Mapped[Application] = relationship(back_populates="certificate")


class Payment(Base):
    """An agent's bank transfer, registered by staff (B3)."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    paid_on: Mapped[dt.date] = mapped_column(Date)
    amount_yen: Mapped[int] = mapped_column(Integer)
    payer_name: Mapped[str] = mapped_column(String(100))  # the agent writes its user ID
    registered_by: Mapped[str] = mapped_column(String(32))
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    undone_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint("amount_yen > 0", name="amount_positive"),)


class RevocationRequest(Base):
    """失効依頼: the holder (office or agent) asks the federation to revoke its certificate.

    A request changes no status: staff read it on the console and register the revocation
    (B4, :func:`ra.workflow.revocations.register_revocation`), which closes it.  At most one
    open request per application (a partial unique index decides when two arrive at once).
    """

    __tablename__ = "revocation_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))  # who asked
    requested_by: Mapped[str] = mapped_column(String(16))  # office / agent
    reason_code: Mapped[str] = mapped_column(String(32))  # an RFC 5280 CRLReason name
    note: Mapped[str | None] = mapped_column(Text)  # the holder's own words
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    source_address: Mapped[str | None] = mapped_column(String(64))
    # When staff registered the revocation (B4) that answers it, and who.
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    closed_by: Mapped[str | None] = mapped_column(String(64))

    application: Mapped[Application] = relationship()

    __table_args__ = (
        Index(
            "uq_revocation_requests_one_open",
            "application_id",
            unique=True,
            postgresql_where=text("closed_at IS NULL"),
            sqlite_where=text("closed_at IS NULL"),
        ),
    )


class FeeEntry(Base):
    """One movement of an office's fee-offset balance (手数料相殺残高); B11 exports the sums."""

    __tablename__ = "fee_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    # Indexed for the list's 手数料残高 column (ra.desk.queries._row_select).
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"), index=True)
    amount_yen: Mapped[int] = mapped_column(Integer)  # + charged, - offset or cancelled
    kind: Mapped[str] = mapped_column(String(16))  # charge / cancel / offset
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    exported_in: Mapped[str | None] = mapped_column(String(64))  # B11 export id


class Notice(Base):
    """A notice (お知らせ) in one account's portal; sealed ones are CMS EnvelopedData."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class OutboxMail(Base):
    """A mail written in the same transaction as its cause; a job sends it (docs/product.md §13)."""

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class CaBatch(Base):
    """A request batch sent to the CA and, once imported, its result batch."""

    __tablename__ = "ca_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # issue / revoke / mixed
    request_der: Mapped[bytes] = mapped_column(LargeBinary)
    request_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    result_sha256: Mapped[str | None] = mapped_column(String(64))
    imported_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class CrlRecord(Base):
    """A CRL registered in the RA (A6/B10) after its signature and number were checked."""

    __tablename__ = "crls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_sha256: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(50))  # CRLNumber can exceed 64 bits
    this_update: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    next_update: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    der: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    entries: Mapped[int] = mapped_column(Integer)
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("issuer_sha256", "number", name="issuer_number"),)


class ApiToken(Base):
    """A token another system of the federation calls the JSON API with (``ra.web.api``).

    Only the SHA-256 of the token is kept (the token itself is shown once, when it is made);
    ``prefix`` is its first characters, so the console and the audit log can tell tokens
    apart.  ``scopes`` lists the :class:`ra.party.Scope` values it holds.  A revoked token
    keeps its row (and its name, which is never reused) for the audit log.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class AuditRecord(Base):
    """One event of the hash-chained audit log (who, when, what, status before/after)."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    status_before: Mapped[str | None] = mapped_column(String(32))
    status_after: Mapped[str | None] = mapped_column(String(32))
    source_address: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    __table_args__ = (Index("ix_audit_object", "object_type", "object_id", "seq"),)


class AuditHead(Base):
    """The head of the audit chain: one row, locked by every writer so ``seq`` has no gaps."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class AuditAnchor(Base):
    """A signed statement of the audit chain's head at ``seq`` (detects truncation)."""

    __tablename__ = "audit_anchors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    head_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    signature: Mapped[bytes] = mapped_column(LargeBinary)  # CMS over seq + head hash


class SchedulerLock(Base):
    """The lease that keeps a second scheduler on stand-by (one row per lock name)."""

    __tablename__ = "scheduler_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class JobOutcome(enum.StrEnum):
    OK = "ok"  # finished, nothing left over
    ATTENTION = "attention"  # finished, but left work an operator must bring back
    FAILED = "failed"  # raised an error


class JobTrigger(enum.StrEnum):
    SCHEDULER = "scheduler"  # ran_by: the scheduler's lease holder name
    CLI = "cli"  # ran_by: the operator's login name on the RA host
    CONSOLE = "console"  # ran_by: the staff user ID ("run now")


class JobRun(Base):
    """One run of a scheduled job (ra.tasks.jobs.run_job), however it was started.

    Written when the run starts (``outcome`` None: still running, or the process died) and
    again when it ends.  The ``deletion`` job drops runs older than 90 days.
    """

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[JobOutcome | None] = mapped_column(_enum(JobOutcome, "job_outcome"))
    summary: Mapped[str] = mapped_column(Text, default="")
    summary_ja: Mapped[str] = mapped_column(Text, default="")
    trigger: Mapped[JobTrigger] = mapped_column(_enum(JobTrigger, "job_trigger"))
    ran_by: Mapped[str] = mapped_column(String(128))

    __table_args__ = (
        Index("ix_job_runs_job_started", "job", "started_at", "id"),
        Index("ix_job_runs_started_at", "started_at"),
    )


class ImportStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for a worker
    RUNNING = "running"  # a worker holds its lease and hashes the passwords
    DONE = "done"  # every account created, in one transaction
    FAILED = "failed"  # nothing created; ``error`` says why


class ImportRun(Base):
    """A CSV import of office and agent accounts, run in the background (ra.people.import_runs).

    ``rows`` holds the checked rows (no passwords) until the run ends.  A worker takes a run
    with a lease (``holder``, ``lease_until``); a run whose worker died is taken again after the
    lease, at most a few times.  The accounts are created in the one transaction that marks the
    run done, so a run never leaves half of them.
    """

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[ImportStatus] = mapped_column(_enum(ImportStatus, "import_status"))
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    started_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    source_address: Mapped[str | None] = mapped_column(String(64))
    rows: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    holder: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    error_ja: Mapped[str | None] = mapped_column(Text)
    # The sealed letters of the new accounts (ra.store.letter_drops), for the starter only.
    letters_token: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_import_runs_status", "status", "id"),
        CheckConstraint("done >= 0 AND done <= total", name="done_in_range"),
    )
