"""The API's OpenAPI 3.1 document (``/api/v1/openapi.json``) and its reference page (``/api/v1/``).

The document is spectree's, generated from the operations and the pydantic models, with what
spectree does not say by itself added here in one place: the bearer-token security scheme,
errors as ``application/problem+json``, the ``Retry-After`` header of a 429 and the
``WWW-Authenticate`` header of a 401.  The reference page is rendered on the server from the
same document (no script, no asset from elsewhere: the site's CSP allows neither), so it
never says something the document does not.  Both are public: they describe, they grant
nothing.
"""

from __future__ import annotations

import copy
from typing import Any

from flask import Response, current_app, jsonify, render_template, request
from flask_babel import force_locale

from ra.web import text
from ra.web.api.base import SPEC, blueprint
from ra.web.api.problems import HTTP_PROBLEMS, MEDIA_TYPE

CACHE = "shomei_openapi"
METHODS = ("get", "post", "put", "patch", "delete")

_RETRY_AFTER = {
    "description": "Seconds to wait before calling again with this token",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}
_WWW_AUTHENTICATE = {
    "description": "Bearer (RFC 6750)",
    "required": True,
    "schema": {"type": "string"},
}


def _finish(spec: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(spec)
    doc["components"].setdefault("securitySchemes", {})["token"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token made by an admin in the console (API トークン)",
    }
    doc["security"] = [{"token": []}]
    doc.pop("tags", None)
    doc["tags"] = [
        {"name": "applications", "description": "申請 (scope read_applications)"},
        {"name": "certificates", "description": "証明書 (scope read_applications)"},
        {"name": "crl", "description": "失効リスト (read: any scope; register: register_crls)"},
        {"name": "verification", "description": "請求の署名検証 (scope verify_claims)"},
    ]
    for item in doc["paths"].values():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            for status, response in operation.get("responses", {}).items():
                if int(status) < 400:
                    continue
                content = response.get("content", {})
                if "application/json" in content:
                    content[MEDIA_TYPE] = content.pop("application/json")
                if status == "429":
                    response.setdefault("headers", {})["Retry-After"] = _RETRY_AFTER
                if status == "401":
                    response.setdefault("headers", {})["WWW-Authenticate"] = _WWW_AUTHENTICATE
    return doc


def document() -> dict[str, Any]:
    """The OpenAPI document of this application (made once per application)."""
    found = current_app.extensions.get(CACHE)
    if found is None:
        found = _finish(SPEC.spec)
        current_app.extensions[CACHE] = found
    return dict(found)


@blueprint.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document())


def _type_of(schema: dict[str, Any], doc: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_type_of(s, doc) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list of {_type_of(schema.get('items', {}), doc)}"
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return str(schema["const"])
    kind = str(schema.get("type", "any"))
    return f"{kind} ({schema['format']})" if "format" in schema else kind


def _fields(name: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
    schema = doc["components"]["schemas"].get(name, {})
    required = set(schema.get("required", ()))
    return [
        {
            "name": field,
            "type": _type_of(prop, doc),
            "required": field in required,
            "description": prop.get("description", ""),
        }
        for field, prop in schema.get("properties", {}).items()
    ]


def _operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for path, item in doc["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            body_name = _type_of(body["schema"], doc) if body else None
            responses = []
            for status, response in sorted(op.get("responses", {}).items()):
                content = response.get("content", {})
                media = next(iter(content), None)
                schema = content[media]["schema"] if media else None
                responses.append(
                    {
                        "status": status,
                        "description": response.get("description", ""),
                        "media": media,
                        "schema": _type_of(schema, doc) if schema else None,
                    }
                )
            found.append(
                {
                    "id": op.get("operationId", ""),
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "required": p.get("required", False),
                            "type": _type_of(p.get("schema", {}), doc),
                            "description": p.get("description", ""),
                        }
                        for p in op.get("parameters", [])
                    ],
                    "body": body_name,
                    "body_fields": _fields(body_name, doc) if body_name else [],
                    "responses": responses,
                }
            )
    return found


def _problem_codes() -> list[dict[str, Any]]:
    from ra.web.errors import STATUS

    codes: dict[str, dict[str, Any]] = {}
    for kind, status in STATUS.items():
        codes.setdefault(kind.code, {"code": kind.code, "status": status, "doc": kind.__doc__})
    for status, (code, detail, detail_ja) in HTTP_PROBLEMS.items():
        codes.setdefault(code, {"code": code, "status": status, "doc": f"{detail} ({detail_ja})"})
    return sorted(codes.values(), key=lambda c: (c["status"], c["code"]))


@blueprint.get("/")
def reference() -> str:
    doc = document()
    settings = current_app.extensions["shomei"].settings.api
    models = sorted(
        name
        for name in doc["components"]["schemas"]
        if doc["components"]["schemas"][name].get("properties")
    )
    # Japanese unless ?lang=en (or English chosen in the console): a link, not a form, so the
    # page sets no cookie.
    wanted = request.args.get("lang")
    lang = wanted if wanted in text.LANGUAGES else text.language()
    with force_locale(lang):
        return render_template(
            "api/reference.html",
            doc=doc,
            operations=_operations(doc),
            problems=_problem_codes(),
            models=[(name, _fields(name, doc)) for name in models],
            api=settings,
            lang=lang,
        )
