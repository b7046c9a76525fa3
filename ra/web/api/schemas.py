"""The JSON shapes of the API (pydantic models): what spectree validates and documents.

Requests are validated against these models before a view runs (a request that does not fit
is a 400 problem naming the fields); responses are built from them, so the OpenAPI document
(3.1, JSON Schema 2020-12) is what the code sends.  Times are ISO 8601 in UTC; binary data
(claims, signatures, CRLs) is base64 in JSON.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Base64Bytes, BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

StatusCode = Literal[
    "awaiting_issue_request",
    "awaiting_payment",
    "issue_requested",
    "awaiting_issuance",
    "issued",
    "revocation_requested",
    "awaiting_revocation",
    "revoked",
    "rejection_pending",
    "rejected",
]
ApplicantTypeCode = Literal["office", "agent", "staff"]
# The most claims one batch may carry in any deployment; [ra.api] batch_max_items sets the
# limit in force (100 by default), which the reference page and the error state.
BATCH_CEILING = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldProblem(BaseModel):
    """One field of the request that is not right."""

    field: str = Field(description="Where: body, query or path, then the field's path")
    message: str = Field(description="What is wrong (English)")


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (``application/problem+json``)."""

    type: str = Field(description="A URI of the problem type (a section of the API reference)")
    title: str = Field(description="The HTTP status phrase")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="What went wrong, in English")
    detail_ja: str = Field(description="What went wrong, in Japanese (日本語)")
    code: str = Field(description="A stable code: not_permitted, authentication, malformed, ...")
    instance: str = Field(description="The path of the request")
    request_id: str = Field(description="The request id the RA's log names")
    errors: list[FieldProblem] = Field(
        default_factory=list, description="For a request that does not fit: each field"
    )


# -- applications ----------------------------------------------------------------------------


class ApplicationQuery(_Strict):
    """The console's search (証明書一覧) as query parameters; no condition means all."""

    applicant_type: list[ApplicantTypeCode] = Field(
        default_factory=list, description="事業所 office, 代理人 agent, 職員 staff (repeatable)"
    )
    status: list[StatusCode] = Field(
        default_factory=list, description="Status codes (repeatable; docs/product.md §4)"
    )
    user_id: str | SkipJsonSchema[None] = Field(
        default=None, max_length=32, description="A user ID (exact or its beginning)"
    )
    user_id_match: Literal["prefix", "exact"] = "prefix"
    page_size: int = Field(default=50, ge=1, le=500)
    cursor: str | SkipJsonSchema[None] = Field(
        default=None,
        pattern=r"^[0-9]{20}-[0-9]{1,18}$",
        description="next_cursor of the page before; absent for the first page",
    )


class ApplicationSummary(BaseModel):
    id: int
    user_id: str = Field(description="The applicant's user ID (the office or the agent)")
    office_number: str | None
    office_name: str
    applicant_type: ApplicantTypeCode
    status: StatusCode
    status_number: int = Field(ge=1, le=10)
    status_label_ja: str
    status_label_en: str
    applied_at: dt.datetime
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    revoked_at: dt.datetime | None
    fee_balance_yen: int


class ApplicationPage(BaseModel):
    """One page, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[ApplicationSummary]
    next_cursor: str | None = Field(description="None on the last page")


class HistoryItem(BaseModel):
    seq: int = Field(description="The audit record's sequence number")
    at: dt.datetime
    actor: str = Field(description="office, agent, staff, admin or system")
    actor_id: str
    action: str
    action_ja: str
    status_before: StatusCode | None
    status_after: StatusCode | None
    reason: str | None


class ApplicationDetail(ApplicationSummary):
    certificate_serial: str | None = Field(description="Hex, once a certificate was issued")
    revocation_reason: str | None
    history: list[HistoryItem]


# -- certificates and CRLs -----------------------------------------------------------------


class CertificateInfo(BaseModel):
    serial: str = Field(description="Lowercase hex")
    application_id: int
    office_number: str
    office_name: str
    application_status: StatusCode
    state: Literal["valid", "not_yet_valid", "expired", "revoked"] = Field(
        description="revoked once a registered CRL lists it; otherwise by its validity now"
    )
    not_before: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None
    revocation_crl_number: str | None
    revocation_reason: str | None = Field(description="The RFC 5280 reason registered")
    certificate_pem: str


class CrlInfoOut(BaseModel):
    number: str = Field(description="cRLNumber, in decimal (it may exceed 64 bits)")
    issuer: str
    this_update: dt.datetime
    next_update: dt.datetime | None
    entries: int
    sha256: str
    registered_at: dt.datetime
    current: bool = Field(description="nextUpdate has not passed")


class CrlUpload(_Strict):
    crl: Base64Bytes = Field(description="The CRL the CA issued (DER or PEM), base64")


class CrlRegistered(BaseModel):
    number: str
    sha256: str
    entries: int
    registered: bool = Field(description="false: this very CRL was registered before")
    revoked_applications: list[int] = Field(description="Applications now 失効済み")


# -- verification ----------------------------------------------------------------------------


class ClaimIn(_Strict):
    """A claim and its detached CMS signature, or a PDF with its own (PAdES) signature."""

    name: str | None = Field(default=None, max_length=200, description="Echoed in the verdict")
    claim: Base64Bytes = Field(description="The claim file, base64")
    signature: Base64Bytes | None = Field(
        default=None, description="The detached signature (.p7s), base64; absent for a PDF"
    )


class ClaimBatch(_Strict):
    items: list[ClaimIn] = Field(min_length=1, max_length=BATCH_CEILING)


class ReasonOut(BaseModel):
    code: str = Field(description="revoked, digest, untrusted, no_crl, expired, ...")
    message: str
    message_ja: str


class VerdictOut(BaseModel):
    """The verdict ``shomei verify`` gives: valid, invalid or undecided (could not decide)."""

    name: str | None
    status: Literal["valid", "invalid", "undecided"]
    status_ja: str = Field(description="有効, 無効 or 判定不能")
    summary: str
    summary_ja: str
    reasons: list[ReasonOut]
    signer_subject: str | None
    signer_serial: str | None = Field(description="Hex")
    signing_time: dt.datetime | None


class Basis(BaseModel):
    """What the verdicts were decided against."""

    trust_anchor: str = Field(description="The issuing CA certificate's subject")
    crl_sha256: str | None = Field(description="The RA's current CRL; null before the first")
    crl_this_update: dt.datetime | None
    crl_next_update: dt.datetime | None


class VerifyResult(VerdictOut):
    basis: Basis


class BatchResult(BaseModel):
    valid: int
    invalid: int
    undecided: int
    verdicts: list[VerdictOut] = Field(description="One per item, in the order sent")
    basis: Basis
