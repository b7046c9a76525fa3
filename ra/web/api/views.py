"""The operations of the JSON API (``/api/v1``): thin views over the services of ``ra/``.

Each view takes the validated input, calls one service with the token's party (the service
checks the permission: a token without the scope gets 403) and turns the frozen result into
a model of :mod:`ra.web.api.schemas`.  The docstring's first line is the operation's summary
in the OpenAPI document and on the reference page.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app, g
from spectree import Response

from ra.ca_link.claim_check import Basis as CheckBasis
from ra.ca_link.claim_check import Claim, ClaimChecker
from ra.desk import link_desk, queries, reception
from ra.lifecycle import LABELS_EN, LABELS_JA, NUMBERS
from ra.web.api import schemas as s
from ra.web.api.base import SPEC, api_party, api_session, blueprint, ctx
from shomei.errors import MalformedInput
from signer.verdict import Status, Verdict

NOTE = "api_audit_details"  # g: what the audit record of this call says besides the path
CHECKER = "shomei_claim_checker"  # app.extensions: the app's ClaimChecker

_COMMON = {"HTTP_401": s.Problem, "HTTP_403": s.Problem, "HTTP_429": s.Problem}
STATUS_JA = {Status.VALID: "有効", Status.INVALID: "無効", Status.UNDECIDED: "判定不能"}


def note(**details: object) -> None:
    """Add ``details`` to the audit record of this call."""
    g.setdefault(NOTE, {}).update(details)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(dt.UTC) if value is not None else None


def _summary(row: queries.ListRow) -> dict[str, object]:
    return {
        "id": row.application_id,
        "user_id": row.user_id,
        "office_number": row.office_number,
        "office_name": row.office_name,
        "applicant_type": row.applicant_type.value,
        "status": row.status.value,
        "status_number": NUMBERS[row.status],
        "status_label_ja": LABELS_JA[row.status],
        "status_label_en": LABELS_EN[row.status],
        "applied_at": _utc(row.applied_at),
        "not_before": _utc(row.not_before),
        "not_after": _utc(row.not_after),
        "revoked_at": _utc(row.revoked_at),
        "fee_balance_yen": row.fee_balance_yen,
    }


@blueprint.get("/applications")
@SPEC.validate(
    resp=Response(HTTP_200=s.ApplicationPage, HTTP_400=s.Problem, **_COMMON),
    tags=["applications"],
    operation_id="listApplications",
)
def list_applications(query: s.ApplicationQuery) -> s.ApplicationPage:
    """List applications, newest first (the console's search, keyset paging).

    Scope read_applications. The conditions of the console's list (applicant type, status,
    user ID exact or prefix); a page holds page_size items and next_cursor, to be sent as
    cursor for the next page (null on the last page).
    """
    with api_session() as session:
        page = queries.list_applications(
            session,
            api_party(),
            applicant_types=query.applicant_type or None,
            user_id=query.user_id,
            user_id_match=query.user_id_match,
            statuses=query.status or None,
            page_size=query.page_size,
            after=query.cursor,
        )
        items = [s.ApplicationSummary.model_validate(_summary(r)) for r in page.rows]
    note(count=len(items))
    return s.ApplicationPage(
        items=items, next_cursor=page.next_cursor.token if page.next_cursor else None
    )


@blueprint.get("/applications/<int(min=1, max=2147483647):application_id>")
@SPEC.validate(
    resp=Response(HTTP_200=s.ApplicationDetail, HTTP_404=s.Problem, **_COMMON),
    tags=["applications"],
    operation_id="getApplication",
    path_parameter_descriptions={"application_id": "The application's number"},
)
def get_application(application_id: int) -> s.ApplicationDetail:
    """One application with its whole history (from the audit log).

    Scope read_applications. The history lists every recorded step: who (actor, actor_id),
    when, what, the status before and after, and the reason given.
    """
    note(application=application_id)
    with api_session() as session:
        record = reception.application_record(session, api_party(), application_id)
        history = [
            s.HistoryItem(
                seq=h.seq,
                at=h.at.astimezone(dt.UTC),
                actor=h.actor,
                actor_id=h.actor_id,
                action=h.action,
                action_ja=h.action_ja,
                status_before=h.status_before.value if h.status_before else None,
                status_after=h.status_after.value if h.status_after else None,
                reason=h.reason,
            )
            for h in record.history
        ]
        return s.ApplicationDetail.model_validate(
            {
                **_summary(record.row),
                "certificate_serial": record.certificate_serial,
                "revocation_reason": record.revocation_reason,
                "history": history,
            }
        )


@blueprint.get("/certificates/<serial>")
@SPEC.validate(
    resp=Response(HTTP_200=s.CertificateInfo, HTTP_400=s.Problem, HTTP_404=s.Problem, **_COMMON),
    tags=["certificates"],
    operation_id="getCertificate",
    path_parameter_descriptions={"serial": "The serial number in hex (colons allowed)"},
)
def get_certificate(serial: str) -> s.CertificateInfo:
    """A certificate by its serial number: its status, validity and revocation.

    Scope read_applications. state is revoked once a CRL the RA registered lists it,
    otherwise valid, not_yet_valid or expired by its validity now.
    """
    with api_session() as session:
        found = reception.certificate_by_serial(session, api_party(), serial, now=ctx().now())
    note(serial=found.serial)
    return s.CertificateInfo(
        serial=found.serial,
        application_id=found.application_id,
        office_number=found.office_number,
        office_name=found.office_name,
        application_status=found.application_status.value,
        state=found.state,
        not_before=found.not_before.astimezone(dt.UTC),
        not_after=found.not_after.astimezone(dt.UTC),
        revoked_at=_utc(found.revoked_at),
        revocation_crl_number=found.revocation_crl_number,
        revocation_reason=found.revocation_reason,
        certificate_pem=found.pem,
    )


@blueprint.get("/crl")
@SPEC.validate(
    resp=Response(HTTP_200=s.CrlInfoOut, HTTP_404=s.Problem, HTTP_503=s.Problem, **_COMMON),
    tags=["crl"],
    operation_id="getCurrentCrl",
)
def get_crl() -> s.CrlInfoOut:
    """The RA's current CRL: the newest one registered (number, dates, entries, SHA-256).

    Any scope. 404 before the first CRL is registered. The CRL itself is published at the
    URL in every certificate (its CRL distribution point).
    """
    with api_session() as session:
        info = reception.current_crl_info(session, api_party(), ctx().settings, now=ctx().now())
    return s.CrlInfoOut(
        number=info.number,
        issuer=info.issuer,
        this_update=info.this_update.astimezone(dt.UTC),
        next_update=_utc(info.next_update),
        entries=info.entries,
        sha256=info.sha256,
        registered_at=info.registered_at.astimezone(dt.UTC),
        current=info.current,
    )


@blueprint.post("/crl")
@SPEC.validate(
    resp=Response(
        HTTP_200=s.CrlRegistered,
        HTTP_409=s.Problem,
        HTTP_413=s.Problem,
        HTTP_422=s.Problem,
        HTTP_503=s.Problem,
        **_COMMON,
    ),
    tags=["crl"],
    operation_id="registerCrl",
)
def register_crl(json: s.CrlUpload) -> s.CrlRegistered:
    """Register a CRL the CA issued (A6): checked, stored, published.

    Scope register_crls. The CRL must be signed by the issuing CA and numbered above the
    last one (409 otherwise); one that leaves out a revocation the RA knows is refused (422).
    Applications in 失効待ち whose serial it lists become 失効済み. The same CRL again
    changes nothing (registered false).
    """
    c = ctx()
    done = link_desk.upload_crl(c.factory, c.settings, api_party(), json.crl, now=c.now())
    note(crl_number=str(done.number), registered=done.registered)
    return s.CrlRegistered(
        number=str(done.number),
        sha256=done.sha256,
        entries=done.entries,
        registered=done.registered,
        revoked_applications=list(done.revoked),
    )


def _verdict(verdict: Verdict, name: str | None) -> dict[str, object]:
    return {
        "name": name,
        "status": verdict.status.value,
        "status_ja": STATUS_JA[verdict.status],
        "summary": verdict.summary("en"),
        "summary_ja": verdict.summary("ja"),
        "reasons": [
            {"code": r.code, "message": r.message, "message_ja": r.message_ja}
            for r in verdict.reasons
        ],
        "signer_subject": verdict.signer_subject or None,
        "signer_serial": format(verdict.signer_serial, "x")
        if verdict.signer_serial is not None
        else None,
        "signing_time": _utc(verdict.signing_time),
    }


def _basis(basis: CheckBasis) -> s.Basis:
    return s.Basis(
        trust_anchor=basis.ca_subject,
        crl_sha256=basis.crl_sha256,
        crl_this_update=_utc(basis.crl_this_update),
        crl_next_update=_utc(basis.crl_next_update),
    )


def _check(claims: list[Claim]) -> tuple[list[Verdict], CheckBasis]:
    checker: ClaimChecker = current_app.extensions[CHECKER]
    with api_session() as session:
        return checker.verify(session, api_party(), ctx().settings, claims)


_VERIFY_RESPONSES = Response(
    HTTP_200=s.VerifyResult, HTTP_413=s.Problem, HTTP_503=s.Problem, **_COMMON
)


@blueprint.post("/verify")
@SPEC.validate(resp=_VERIFY_RESPONSES, tags=["verification"], operation_id="verifyClaim")
def verify_claim(json: s.ClaimIn) -> s.VerifyResult:
    """Verify one claim: the verdict shomei verify gives, against the RA's current CRL.

    Scope verify_claims. Send the claim and its detached signature (.p7s), or a signed PDF
    alone, base64. The trust anchor is the issuing CA certificate; the revocation source is
    the CRL the RA registered last. status is valid, invalid or undecided (could not
    decide: no current CRL, unreadable input, ...), with the reasons in English and Japanese.
    """
    verdicts, basis = _check([Claim(json.claim, json.signature, json.name or "")])
    verdict = verdicts[0]
    note(verdict=verdict.status.value)
    return s.VerifyResult.model_validate({**_verdict(verdict, json.name), "basis": _basis(basis)})


@blueprint.post("/verify/batch")
@SPEC.validate(
    resp=Response(HTTP_200=s.BatchResult, HTTP_413=s.Problem, HTTP_503=s.Problem, **_COMMON),
    tags=["verification"],
    operation_id="verifyClaims",
)
def verify_claims(json: s.ClaimBatch) -> s.BatchResult:
    """Verify many claims in one call: one verdict per item, in the order sent.

    Scope verify_claims. At most [ra.api] batch_max_items items (100 by default) and
    [ra.api] max_request_bytes in all; each item is checked as /verify checks one, and one
    broken item never fails the others.
    """
    limit = ctx().settings.api.batch_max_items
    if len(json.items) > limit:
        raise MalformedInput(
            f"a batch carries at most {limit} claims; this one has {len(json.items)}",
            message_ja=f"一度に検証できる請求は {limit} 件までです({len(json.items)} 件あります)",
            field="items",
        )
    claims = [Claim(i.claim, i.signature, i.name or f"item {n}") for n, i in enumerate(json.items)]
    verdicts, basis = _check(claims)
    counts = {st: sum(1 for v in verdicts if v.status is st) for st in Status}
    note(valid=counts[Status.VALID], invalid=counts[Status.INVALID])
    return s.BatchResult(
        valid=counts[Status.VALID],
        invalid=counts[Status.INVALID],
        undecided=counts[Status.UNDECIDED],
        verdicts=[
            s.VerdictOut.model_validate(_verdict(v, i.name))
            for v, i in zip(verdicts, json.items, strict=True)
        ],
        basis=_basis(basis),
    )
