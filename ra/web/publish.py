"""The ``publish`` blueprint: the CRL and the CA certificate at the URLs in the certificates.

Public (no sign-in, no session): relying parties and the federation's verifiers fetch them.
The paths come from the certificate profiles (:func:`ra.ca_link.publication.paths`), so what
the certificates say and what the RA answers cannot drift apart.  GET and HEAD, with ETag and
Last-Modified and conditional requests (304), and ``Cache-Control: public, max-age`` never
past the CRL's nextUpdate (:meth:`ra.ca_link.publication.Published.max_age`).  Before the first
CRL is registered the CRL path answers 404.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Flask, Response, abort, current_app, request
from werkzeug.wrappers import Response as BaseResponse

from ra.ca_link import publication
from ra.ca_link.identity import load_ca_certificate
from ra.web import WebContext, db

NAME = "publish"
MAX_AGE = 3600  # seconds a cache may keep an answer at most (less near nextUpdate)


def _ctx() -> WebContext:
    found: WebContext = current_app.extensions["shomei"]
    return found


def _answer(found: publication.Published | None) -> BaseResponse:
    if found is None:
        abort(404)
    ctx = _ctx()
    response = Response(found.body, mimetype=found.media_type)
    response.set_etag(found.etag)
    response.last_modified = found.last_modified
    response.cache_control.public = True
    response.cache_control.max_age = found.max_age(ctx.now(), MAX_AGE)
    return response.make_conditional(request)


def _crl() -> BaseResponse:
    ctx = _ctx()
    certificate = load_ca_certificate(ctx.settings.link)
    return _answer(publication.current_crl(db.session(), certificate))


def _ca() -> BaseResponse:
    certificate = load_ca_certificate(_ctx().settings.link)
    return _answer(publication.ca_certificate_file(certificate))


def register(app: Flask, paths: dict[str, publication.What]) -> None:
    """Answer each of ``paths`` (from the RA's certificate profiles)."""
    blueprint = Blueprint(NAME, __name__)
    views: dict[publication.What, Callable[[], BaseResponse]] = {"crl": _crl, "ca": _ca}
    for i, (path, what) in enumerate(sorted(paths.items())):
        blueprint.add_url_rule(path, f"{what}_{i}", views[what], methods=["GET"])
    app.register_blueprint(blueprint)
