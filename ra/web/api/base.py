"""The API's blueprint, its spectree instance, and who is calling.

Every operation is a view of :data:`blueprint` (``/api/v1``) decorated with
:data:`SPEC` ``.validate(...)``: spectree checks the request against the pydantic models of
:mod:`ra.web.api.schemas` before the view runs (a request that does not fit raises
:class:`~shomei.errors.MalformedInput`, a 400 problem) and documents the operation in the
OpenAPI 3.1 document (:mod:`ra.web.api.docs`).

A call presents ``Authorization: Bearer <token>``.  The token is read from the database on
every call (:func:`ra.people.api_tokens.authenticate`), before the view and before its input
is validated, so an unknown or revoked token is 401 at once; what the token may do is then
decided by the services, with the token's :class:`~ra.party.Party` (:func:`api_party`).
No cookie is read or set and no CSRF token is asked for: the token is the credential.

The API's database work runs in short sessions of its own (:func:`api_session`), one after
the other (the token, the operation, the audit record), never in the request session of
:mod:`ra.web.db`: on SQLite every transaction takes the write lock, so two sessions open at
once in one request would wait for each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, current_app, g, request
from spectree import SpecTree
from sqlalchemy.orm import Session

from ra.party import Party
from ra.web import WebContext
from ra.web.api.schemas import Problem
from shomei.errors import MalformedInput, NotPermitted

PREFIX = "/api/v1"
blueprint = Blueprint("api", __name__, url_prefix=PREFIX)
PARTY = "api_party"  # g: the token's party
TOKEN_NAME = "api_token_name"  # noqa: S105  # a key of g: the name of the token used


def bearer_token() -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def api_party() -> Party:
    """The party of the token this call was authenticated with."""
    party = g.get(PARTY)
    if not isinstance(party, Party):  # the blueprint's gate sets it before any operation
        raise NotPermitted("no API token", message_ja="API トークンがありません")
    return party


def ctx() -> WebContext:
    found: WebContext = current_app.extensions["shomei"]
    return found


@contextmanager
def api_session() -> Iterator[Session]:
    """A session of its own, committed when the block ends without an error."""
    with ctx().factory() as session, session.begin():
        yield session


def _field(location: str, loc: Any) -> str:
    parts = [str(p) for p in (loc or ())]
    return ".".join([location, *parts])


def _request_invalid(
    req: Any, resp: Any, error: Exception | None, instance: Any, model_adapter: Any
) -> None:
    """spectree's hook after validating a request: a request that does not fit is a 400."""
    if error is None:
        return
    problems: list[dict[str, str]] = []
    location = "query" if request.method in ("GET", "DELETE") else "body"
    for item in model_adapter.validation_errors(error) if model_adapter else []:
        if isinstance(item, dict):
            problems.append(
                {"field": _field(location, item.get("loc")), "message": str(item.get("msg", ""))}
            )
    shown = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
    fields_ja = "、".join(p["field"] for p in problems[:5])
    raise MalformedInput(
        f"the request does not fit the API: {shown or 'not valid'}",
        message_ja=f"リクエストの内容が正しくありません({fields_ja or '形式'}を確認してください)",
        errors=problems[:20],
    )


SPEC = SpecTree(
    "flask",
    mode="strict",  # only the operations decorated with SPEC.validate
    title="Shomei RA API",
    version="1",
    description=(
        "The registration authority's JSON API for the federation's other systems (the claims "
        "reception system): applications, certificates, the CRL, CRL registration and claim "
        "verification. Every call needs an API token (Authorization: Bearer); errors are RFC "
        "9457 problem details with an English and a Japanese message."
    ),
    naming_strategy=lambda model: model.__name__,  # plain names in the document
    nested_naming_strategy=lambda _parent, child: child,
    validation_error_status=400,
    validation_error_model=Problem,
    before=_request_invalid,
)
