"""Letters with passwords: the console's side of the sealed drops of :mod:`ra.store.letter_drops`.

:func:`issuer` is the federation as letters print it (refused when the settings lack its
address) and :func:`render` prints a drop as PDF (:mod:`ra.documents`).  Keeping and finding
drops (:func:`put`, :func:`get`: sealed, for their owner only, for :data:`TTL`) is
:mod:`ra.store.letter_drops`, shared with the background CSV import that makes letters outside
any request.
"""

from __future__ import annotations

from typing import Any

from ra import documents
from ra.settings import RASettings
from ra.store.letter_drops import KINDS, TTL, Drop, get, put
from ra.workflow import billing

__all__ = ["KINDS", "TTL", "Drop", "get", "issuer", "put", "render"]


def issuer(settings: RASettings) -> documents.Issuer:
    """The federation as its letters print it (``[ra.documents]`` of the RA settings)."""
    return billing.issuer(settings)


def _addressee(page: dict[str, Any]) -> documents.Addressee:
    return documents.Addressee(
        organization=page["name"], address=page["address"], postal_code=page["postal_code"]
    )


def render(drop: Drop, settings: RASettings, *, portal_url: str, wareki: bool) -> bytes:
    """The PDF of a drop: notification letters (a page each) or one reset letter."""
    common: dict[str, Any] = {
        "issuer": issuer(settings),
        "portal_url": portal_url,
        "issued_at": drop.made_at,
        "wareki": wareki,
        "fonts": documents.Fonts.from_settings(settings.documents),
    }
    if drop.kind == "accounts":
        pdf = documents.notification_letters(
            [
                documents.AccountLetter(
                    addressee=_addressee(p),
                    kind="agent" if p["kind"] == "agent" else "office",
                    user_id=p["user_id"],
                    login_password=p["login_password"],
                    issuance_password=p["issuance_password"],
                    office_number=p["number"],
                )
                for p in drop.pages
            ],
            **common,
        )
    elif drop.kind == "issuance":
        p = drop.pages[0]
        pdf = documents.password_reset_letter(
            documents.PasswordResetLetter(
                addressee=_addressee(p),
                user_id=p["user_id"],
                issuance_password=p["issuance_password"],
            ),
            **common,
        )
    else:
        p = drop.pages[0]
        pdf = documents.login_password_letter(
            documents.LoginPasswordLetter(
                addressee=_addressee(p), user_id=p["user_id"], login_password=p["login_password"]
            ),
            **common,
        )
    return pdf
