"""Jinja filters (Japan time, western or era dates, yen) and the mojibake check of the tests."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask, render_template_string, session

from ra.lifecycle import Status
from tests.ra.web.helpers import assert_no_mojibake

TEMPLATE = "{{ t|jtime }} | {{ d|jdate }} | {{ y|yen }} | {{ s|status_label }}"
VALUES = {
    "t": dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC),
    "d": dt.date(2026, 12, 1),
    "y": 5000,
    "s": Status.ISSUE_REQUESTED,
}


def test_filters_in_japanese(app: Flask) -> None:
    with app.test_request_context("/"):
        shown = render_template_string(TEMPLATE, **VALUES)
    assert shown == "2026/12/01 00:00 | 2026/12/01 | 5,000円 | 3 発行依頼中"


def test_filters_with_era_dates_and_english(app: Flask) -> None:
    with app.test_request_context("/"):
        session["date_style"] = "wareki"
        session["lang"] = "en"
        shown = render_template_string(TEMPLATE, **VALUES)
    assert shown == "令和8年12月1日 00:00 | 令和8年12月1日 | 5,000円 | 3 issue requested"


@pytest.mark.parametrize("text", ["申請\ufffd", "証明書??", "??連合会", "ﾃｽﾄ???"])
def test_mojibake_is_caught(text: str) -> None:
    with pytest.raises(AssertionError):
        assert_no_mojibake(text)


@pytest.mark.parametrize("text", ["証明書 (本当?)", "What? Why??", "令和8年12月1日 5,000円"])
def test_good_text_passes(text: str) -> None:
    assert_no_mojibake(text)
