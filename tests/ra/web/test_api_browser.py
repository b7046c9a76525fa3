"""API tokens in a real browser, and the API over HTTP from ``shomei ra serve`` (gunicorn, two
workers), on both databases.

An admin makes a token at API トークン, the token works from another process at once, the
admin revokes it and the very next call (whichever worker takes it) is 401; the reference page
at /api/v1/ is screenshotted too (1280 and 390 pixels wide, tests/artifacts/screenshots).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator

from ra.store.models import AccountKind
from tests.ra.web import test_browser as live_pages
from tests.ra.web.live import LiveServer

pytestmark = live_pages.pytestmark
server = live_pages.server
browser = live_pages.browser
page = live_pages.page
shoot = live_pages.shoot
sign_in = live_pages.sign_in


def _call(live: LiveServer, path: str, token: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(  # noqa: S310  # a local test server
        live.url + path, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        assert error.headers["Content-Type"] == "application/problem+json"
        return error.code, json.loads(error.read())


def _calls(live: LiveServer, token: str, n: int) -> Iterator[int]:
    for _ in range(n):
        yield _call(live, "/api/v1/applications", token)[0]


def test_an_admin_makes_a_token_it_works_and_revoking_stops_it_at_once(
    page: object, server: LiveServer
) -> None:
    admin = server.staff(kind=AccountKind.ADMIN)
    sign_in(page, server, admin)
    page.click("nav.main >> text=API トークン")  # type: ignore[attr-defined]
    assert page.url.endswith("/console/tokens/")  # type: ignore[attr-defined]
    shoot(page, "api-tokens-empty")
    page.fill("#name", "請求受付システム")  # type: ignore[attr-defined]
    page.check("input[value=read_applications]")  # type: ignore[attr-defined]
    page.check("input[value=verify_claims]")  # type: ignore[attr-defined]
    page.click("#submit")  # type: ignore[attr-defined]
    token = page.inner_text("#new-token")  # type: ignore[attr-defined]
    assert re.fullmatch(r"shomei_[A-Za-z0-9_-]{43}", token)
    assert "一度しか表示されません" in page.inner_text("main")  # type: ignore[attr-defined]
    shoot(page, "api-token-made")

    # Four calls: both workers answer some; every one is let in.
    assert list(_calls(server, token, 4)) == [200] * 4
    status, body = _call(server, "/api/v1/crl", token)
    assert status in (404, 503) and body["detail_ja"]  # no CRL and no CA link in this RA

    page.goto(server.url + "/console/tokens/")  # type: ignore[attr-defined]
    assert token not in page.content()  # type: ignore[attr-defined]
    assert "請求受付システム" in page.inner_text("table.tokens")  # type: ignore[attr-defined]
    shoot(page, "api-tokens")
    page.click("table.tokens button.danger")  # type: ignore[attr-defined]
    assert "失効させました" in page.inner_text("main")  # type: ignore[attr-defined]
    shoot(page, "api-token-revoked")
    # Whichever worker answers, the revoked token is refused from the next call on.
    assert list(_calls(server, token, 4)) == [401] * 4


def test_the_reference_page(page: object, server: LiveServer) -> None:
    page.goto(server.url + "/api/v1/")  # type: ignore[attr-defined]
    assert "トークン・権限・上限" in page.inner_text("main")  # type: ignore[attr-defined]
    assert page.locator("section.operation").count() == 7  # type: ignore[attr-defined]
    shoot(page, "api-reference")
    page.click("text=English")  # type: ignore[attr-defined]
    assert "Tokens, scopes and limits" in page.inner_text("main")  # type: ignore[attr-defined]
    shoot(page, "api-reference-en")
