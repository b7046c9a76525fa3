"""Errors of the API as RFC 9457 problem details (``application/problem+json``).

Every error on a path under ``/api/`` is answered here instead of with an HTML page
(:mod:`ra.web.errors` hands them over): the status comes from that module's one table of
:mod:`shomei.errors` kinds, the body carries the error's English message (``detail``) and its
Japanese one (``detail_ja``), a stable ``code``, the request id of the log, and, for a request
that does not fit the API, each field that is wrong (``errors``).  ``type`` points at the
problem's section of the API reference page.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Response, current_app, g, request, url_for
from werkzeug.exceptions import HTTPException

from ra.web.api.schemas import FieldProblem, Problem
from shomei.errors import ShomeiError

MEDIA_TYPE = "application/problem+json"

# The problems of HTTP itself (no ShomeiError behind them): code, English, Japanese.
HTTP_PROBLEMS: Mapping[int, tuple[str, str, str]] = {
    400: ("bad_request", "the request could not be understood", "リクエストを解釈できません"),
    401: ("authentication", "an API token is required", "API トークンが必要です"),
    404: ("not_found", "there is no such API resource", "該当する API のリソースはありません"),
    405: (
        "method_not_allowed",
        "this resource does not take that method",
        "このリソースはそのメソッドを受け付けません",
    ),
    413: (
        "too_large",
        "the request body is larger than the API accepts",
        "リクエストの本文が API の上限を超えています",
    ),
    429: (
        "rate_limited",
        "too many calls with this token: wait and call again (Retry-After)",
        "このトークンによる呼び出しが多すぎます。しばらく待ってから再度呼び出してください"
        "(Retry-After)",
    ),
    500: (
        "internal_error",
        "something went wrong on the RA's side; please try again later",
        "RA 側で問題が発生しました。しばらくしてから再度お試しください",
    ),
}


def is_api_request() -> bool:
    """Whether the current request is one for the API (its errors are problem details)."""
    return request.path == "/api" or request.path.startswith("/api/")


def _type(code: str) -> str:
    try:
        return url_for("api.reference", _external=True, _anchor=f"problem-{code}")
    except Exception:  # no reference page (a failing URL build must not hide the error)
        return "about:blank"


def problem(
    status: int,
    code: str,
    detail: str,
    detail_ja: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The problem-details response for an error."""
    body = Problem(
        type=_type(code),
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        detail_ja=detail_ja,
        code=code,
        instance=request.path,
        request_id=str(g.get("request_id", "-")),
        errors=[FieldProblem(**e) for e in errors or ()],
    )
    response = current_app.response_class(
        body.model_dump_json(), status=status, mimetype=MEDIA_TYPE
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def from_error(error: ShomeiError, status: int) -> Response:
    """A :class:`ShomeiError` with the status of the web's one table."""
    errors = error.fields.get("errors")
    headers = {"WWW-Authenticate": 'Bearer realm="shomei"'} if status == 401 else None
    return problem(
        status,
        error.code,
        error.message,
        error.message_ja,
        errors=errors if isinstance(errors, list) else None,
        headers=headers,
    )


def retry_after() -> int:
    """Seconds until the rate limit that was hit lets this token call again (at least 1)."""
    limiter: Any = current_app.extensions.get("limiter")
    try:
        current = limiter.current_limit if limiter is not None else None
        reset_at = float(current.reset_at) if current is not None else time.time() + 1
    except Exception:  # the storage could not be asked: a short wait is still the answer
        reset_at = time.time() + 1
    return max(1, math.ceil(reset_at - time.time()))


def from_http(error: HTTPException) -> Response:
    """An HTTP error (404, 405, 413, 429, ...) on an API path."""
    status = error.code or 500
    code, detail, detail_ja = HTTP_PROBLEMS.get(status, HTTP_PROBLEMS[400 if status < 500 else 500])
    headers: dict[str, str] = {}
    if status == 405:
        allow = dict(error.get_headers()).get("Allow")
        if allow:
            headers["Allow"] = allow
    if status == 429:
        headers["Retry-After"] = str(retry_after())
    if status == 413:
        limit = request.max_content_length
        if limit:
            detail += f" ({limit} bytes)"
            detail_ja += f"({limit} バイト)"
    return problem(status, code, detail, detail_ja, headers=headers)


def unexpected() -> Response:
    code, detail, detail_ja = HTTP_PROBLEMS[500]
    return problem(500, code, detail, detail_ja)
