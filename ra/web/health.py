"""``/healthz`` and ``/readyz``: for the load balancer and the federation's monitoring.

``/healthz`` says the process answers (no database: a database outage must not make the
orchestrator restart healthy web workers).  ``/readyz`` says whether this instance can do its
work: the database answers, its schema is the one this software needs (migrations current),
and the CRL relying parties fetch from us has not passed its nextUpdate (an offline CA's CRL
running out is the failure a federation must see days ahead: the metrics give the seconds
left).  Each check is reported by name in a small JSON document; any failed check makes the
answer 503.  Public, no session, nothing personal.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from ra.ca_link import publication
from ra.ca_link.identity import load_ca_certificate
from ra.store.db import head_revision, schema_revision
from ra.web import WebContext, db
from shomei.errors import ShomeiError

blueprint = Blueprint("health", __name__)


@blueprint.route("/healthz")
def healthz() -> Response:
    return Response("ok\n", mimetype="text/plain")


def _checks(ctx: WebContext) -> dict[str, dict[str, Any]]:
    checks: dict[str, dict[str, Any]] = {}
    session = db.session()
    try:
        current = schema_revision(session.connection())
    except SQLAlchemyError as exc:
        checks["database"] = {"ok": False, "detail": type(exc).__name__}
        return checks
    checks["database"] = {"ok": True}
    head = head_revision()
    checks["schema"] = {"ok": current == head, "current": current, "needed": head}
    try:
        crl = publication.current_crl(session, load_ca_certificate(ctx.settings.link))
    except ShomeiError:  # no CA certificate configured or readable (the log of start-up says)
        checks["crl"] = {"ok": False, "detail": "the issuing CA certificate cannot be read"}
        return checks
    if crl is None:
        checks["crl"] = {"ok": True, "detail": "no CRL registered yet"}
    elif crl.next_update is not None and crl.next_update <= ctx.now():
        checks["crl"] = {"ok": False, "next_update": crl.next_update.isoformat()}
    else:
        next_update = crl.next_update.isoformat() if crl.next_update else None
        checks["crl"] = {"ok": True, "next_update": next_update}
    return checks


@blueprint.route("/readyz")
def readyz() -> tuple[Response, int]:
    ctx: WebContext = current_app.extensions["shomei"]
    checks = _checks(ctx)
    ready = all(check["ok"] for check in checks.values())
    return jsonify(ready=ready, checks=checks), 200 if ready else 503
