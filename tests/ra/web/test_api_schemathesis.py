"""Schemathesis against the served OpenAPI document, on SQLite and PostgreSQL.

The document is loaded from ``/api/v1/openapi.json`` of the running application (not from
the code), and every operation in it is called with data generated from it, well formed
(positive) and deliberately not (negative: wrong types, missing fields, values out of range),
with a token that holds every scope, without a token, and with a token that is not one.  No
answer may be a server error (5xx), and every answer must be what the document says: a status
it lists, its media type, its headers (Retry-After, WWW-Authenticate) and its schema; invalid
input must be refused with a 4xx.  The RA holds an issued certificate, an application in each
of a few statuses and a registered CRL, so the operations have something to find.

Hypothesis runs derandomized (the same cases each run, so CI is reproducible) with a bounded
number of examples per operation and mode.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ra.ca_link import link
from ra.lifecycle import Applicant, Status
from ra.settings import ApiSettings
from tests.ra import factories
from tests.ra.ca_fixture import CaHome, ca_home_fixture  # noqa: F401
from tests.ra.ca_link.test_link import requested
from tests.ra.conftest import Database
from tests.ra.web.api_fixture import API, api_app, bearer, make_token
from tests.ra.web.helpers import Clock

CHECKS: list[Callable[..., Any]] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES = 30  # per operation and mode


@pytest.fixture
def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture
def api(ca_home: CaHome, database: Database, tmp_path: Path, clock: Clock) -> Flask:
    # A limit this test never reaches: it is about the document, test_api.py about the limit.
    app = api_app(
        ca_home, database, tmp_path, clock, api=ApiSettings(rate_limit="100000 per minute")
    )
    with database.factory() as s, s.begin():
        for status in (Status.AWAITING_ISSUE_REQUEST, Status.AWAITING_PAYMENT, Status.REJECTED):
            factories.application(s, applicant=Applicant.OFFICE, status=status, now=clock.now)
        requested(s, now=clock.now)
    link.dispatch(database.factory, app.extensions["shomei"].settings, now=clock.now)
    return app


def _run(schema: Any, headers: dict[str, str]) -> list[str]:
    """Every operation, positive and negative; the operations run (for the caller to check)."""
    ran: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        ran.append(f"{operation.method.upper()} {operation.path}")
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def call(case: schemathesis.Case) -> None:
                response = case.call(headers=headers)
                case.validate_response(response, checks=CHECKS, headers=headers)

            call()
    return ran


@pytest.mark.parametrize("who", ["token", "no-token", "unknown-token"])
def test_every_operation_keeps_to_the_served_document(
    api: Flask, database: Database, who: str
) -> None:
    headers = {
        "token": bearer(make_token(database)),
        "no-token": {},
        "unknown-token": bearer("shomei_this-is-not-a-token"),
    }[who]
    schema = schemathesis.openapi.from_wsgi(f"{API}/openapi.json", api)
    ran = _run(schema, headers)
    assert sorted(ran) == sorted(
        [
            f"GET {API}/applications",
            f"GET {API}/applications/{{application_id}}",
            f"GET {API}/certificates/{{serial}}",
            f"GET {API}/crl",
            f"POST {API}/crl",
            f"POST {API}/verify",
            f"POST {API}/verify/batch",
        ]
    )
