"""The web edge's one error table: each kind to its status, a Japanese page, no traceback."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from sqlalchemy import func, select

from ra.settings import RASettings
from ra.store.models import Account, AccountKind, AuditRecord
from ra.web import create_app, db
from ra.web.errors import status_of
from shomei import errors as e
from tests.ra import factories
from tests.ra.conftest import Database
from tests.ra.web.helpers import Clock, assert_no_mojibake

CASES = [
    (e.MalformedInput, 400),
    (e.AuthenticationFailed, 401),
    (e.NotPermitted, 403),
    (e.NotFound, 404),
    (e.Conflict, 409),
    (e.AlreadyExists, 409),
    (e.LockedOut, 423),
    (e.Refused, 422),
    (e.Undecided, 422),
    (e.VerificationFailed, 422),
    (e.DatabaseFailure, 503),
    (e.StorageError, 503),
    (e.StateError, 503),
    (e.ConfigError, 500),
    (e.ShomeiError, 500),
]


@pytest.mark.parametrize(("kind", "status"), CASES)
def test_status_table(kind: type[e.ShomeiError], status: int) -> None:
    assert status_of(kind("x")) == status


def test_anything_else_is_500() -> None:
    assert status_of(KeyError("k")) == 500


@pytest.fixture
def raising_app(web_settings: RASettings, database: Database, clock: Clock) -> Flask:
    app = create_app(web_settings, session_factory=database.factory, now=clock)

    @app.route("/test-raise/<int(min=0):index>")
    def _raise(index: int) -> str:
        # Write something first: the error page must roll it back.
        factories.account(db.session(), kind=AccountKind.OFFICE, now=clock())
        if index == len(CASES):
            raise KeyError("secret detail")
        kind = CASES[index][0]
        raise kind("english text", message_ja=f"日本語の説明 {kind.__name__}")

    return app


def test_each_error_is_a_japanese_page_with_its_status(
    raising_app: Flask, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    client = raising_app.test_client()
    caplog.set_level(logging.INFO, logger="shomei.ra.web")
    for index, (kind, status) in enumerate([*CASES, (KeyError, 500)]):
        answer = client.get(f"/test-raise/{index}")
        text = answer.get_data(as_text=True)
        assert answer.status_code == status, kind
        assert_no_mojibake(text)
        assert (
            "Traceback" not in text and "secret detail" not in text and "english text" not in text
        )
        request_id = answer.headers["X-Request-Id"]
        assert request_id in text
        if kind is KeyError:
            assert "システムで問題が発生しました" in text
            assert any(request_id in r.getMessage() and r.exc_info for r in caplog.records)
        else:
            assert f"日本語の説明 {kind.__name__}" in text
    with database.factory() as s:
        # Rolled back, except after AuthenticationFailed and LockedOut (a failed sign-in's
        # counters and audit records are kept): two of the accounts written remain.
        assert s.scalar(select(func.count()).select_from(Account)) == 2
        assert s.scalar(select(func.count()).select_from(AuditRecord)) == 0


def test_english_error_page(raising_app: Flask) -> None:
    client = raising_app.test_client()
    with client.session_transaction() as sess:
        sess["lang"] = "en"
    text = client.get("/test-raise/3").get_data(as_text=True)
    assert "english text" in text and "The request could not be completed (404)" in text


def test_404_and_405_pages(raising_app: Flask) -> None:
    client = raising_app.test_client()
    missing = client.get("/nothing-here")
    assert missing.status_code == 404 and "このページは存在しません" in missing.get_data(
        as_text=True
    )
    wrong = client.put("/auth/sign-in")
    assert wrong.status_code == 405
    assert "このページはその方法では利用できません" in wrong.get_data(as_text=True)
