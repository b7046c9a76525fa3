"""The JSON API for the federation's other systems (the claims reception system): ``/api/v1``.

Parts: the blueprint, spectree and who is calling (:mod:`.base`), the request and response
models (:mod:`.schemas`), the operations (:mod:`.views`), the OpenAPI 3.1 document and the
reference page (:mod:`.docs`), errors as RFC 9457 problem details (:mod:`.problems`).

:func:`init_app` adds it to the web application: the blueprint, exempt from CSRF (no cookie is
used: a call carries its API token), a rate limit per token (Flask-Limiter, ``[ra.api]
rate_limit``, counted in ``[ra.api] rate_limit_storage_uri``: in memory by default, which is
per worker process), the larger body limit of the API, the token check before every
operation and one audit record per call made with a token.
"""

from __future__ import annotations

from flask import Flask, Response, g, request
from flask_limiter import Limiter
from flask_wtf.csrf import CSRFProtect

from ra.ca_link.claim_check import ClaimChecker
from ra.people import api_tokens
from ra.settings import check_api_settings
from ra.web.api import docs, views  # noqa: F401  # docs: its routes, on import
from ra.web.api.base import PARTY, TOKEN_NAME, api_session, bearer_token, blueprint, ctx
from shomei.errors import AuthenticationFailed

PUBLIC = frozenset({"api.openapi", "api.reference"})  # describe only: no token needed


def _rate_key() -> str:
    """Whom a call counts against: its token (by hash), or its address when it has none."""
    presented = bearer_token()
    if presented:
        return "token:" + api_tokens.digest(presented)
    return "address:" + (request.remote_addr or "-")


def _gate() -> None:
    """Before every API view: the body limit, then the token (read now, never cached)."""
    request.max_content_length = ctx().settings.api.max_request_bytes
    if request.endpoint in PUBLIC:
        return
    with api_session() as session:
        try:
            party, _row = api_tokens.authenticate(session, bearer_token())
        except AuthenticationFailed as exc:
            name = exc.fields.get("token")
            if isinstance(name, str):
                g.setdefault(TOKEN_NAME, name)  # a revoked token: its refusal is audited
            raise
    setattr(g, PARTY, party)
    setattr(g, TOKEN_NAME, party.user_id)


def _audit(response: Response) -> Response:
    """After every API call made with a (known) token: one audit record, refusals too."""
    name = g.get(TOKEN_NAME)
    if isinstance(name, str):
        c = ctx()
        with api_session() as session:
            api_tokens.record_call(
                session,
                name,
                method=request.method,
                path=request.path,
                status=response.status_code,
                now=c.now(),
                source_address=request.remote_addr,
                details=g.get(views.NOTE),
            )
    return response


blueprint.before_request(_gate)
blueprint.after_request(_audit)


def init_app(app: Flask, csrf: CSRFProtect) -> None:
    """Add the API to ``app`` (after ``ra.web``'s context is set)."""
    settings = app.extensions["shomei"].settings
    check_api_settings(settings.api)
    app.register_blueprint(blueprint)
    csrf.exempt(blueprint)
    limiter = Limiter(
        _rate_key,
        app=app,
        storage_uri=settings.api.rate_limit_storage_uri,
        strategy="moving-window",  # a limit over any window of its length, not per calendar
        headers_enabled=False,  # Retry-After is the problem handler's (ra.web.api.problems)
        key_prefix="shomei-api",
    )
    limiter.limit(settings.api.rate_limit)(blueprint)
    app.extensions[views.CHECKER] = ClaimChecker(app.extensions["shomei"].now)


__all__ = ["init_app"]
