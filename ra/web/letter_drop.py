"""Letters with passwords, kept sealed for a few minutes so the console can offer their PDF.

:func:`put` and :func:`get` keep and find a drop; :func:`render` prints it (:mod:`ra.documents`).

New passwords exist in clear only in the request that made them (only argon2 hashes are
stored).  That request cannot both show the result page and send the PDF, so it seals what the
letters print — user IDs, names, addresses and the clear passwords — with the RA's secrets key
(:mod:`ra.store.vault`, AES-256-GCM) and writes it to ``<data_dir>/letters/<token>.sealed``, mode
0600.  The token is random (128 bits) and is also the sealing context, so one drop cannot be
passed off as another.  The drop names the console user who made it: only that user can
download it, and only for :data:`TTL`; expired drops are deleted whenever a drop is written or
read.  It is not deleted after the first download, so a download interrupted by the browser
can be repeated within those minutes; after them, the passwords are gone for good (staff can
reset them again).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ra import documents
from ra.settings import RASettings
from ra.store.vault import Vault
from ra.workflow import billing
from shomei.errors import NotFound, StorageError

TTL = dt.timedelta(minutes=15)
TOKEN = re.compile(r"[0-9a-f]{32}")
KINDS = ("accounts", "issuance", "login")


@dataclass(frozen=True)
class Drop:
    """What a drop holds: which letter, and one dict per page."""

    kind: str
    pages: list[dict[str, Any]]
    made_at: dt.datetime


def _folder(data_dir: Path) -> Path:
    return data_dir / "letters"


def _context(token: str) -> str:
    return f"letters:{token}"


def _purge(folder: Path, now: dt.datetime) -> None:
    if not folder.is_dir():
        return
    oldest = (now - TTL).timestamp()
    for path in folder.glob("*.sealed"):
        try:
            if path.stat().st_mtime < oldest:
                path.unlink()
        except FileNotFoundError:
            continue  # another worker removed it first


def put(
    data_dir: Path,
    vault: Vault,
    *,
    owner: int,
    kind: str,
    pages: list[dict[str, Any]],
    now: dt.datetime,
    rng: Callable[[int], bytes] = secrets.token_bytes,
) -> str:
    """Seal ``pages`` for ``owner`` (an account id) and return the token naming the drop."""
    if kind not in KINDS:
        raise NotFound(f"no letter kind {kind!r}", message_ja="その通知書はありません")
    folder = _folder(data_dir)
    token = rng(16).hex()
    payload = {"owner": owner, "kind": kind, "made_at": now.isoformat(), "pages": pages}
    sealed = vault.seal(json.dumps(payload, ensure_ascii=False), context=_context(token))
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _purge(folder, now)
        fd = os.open(folder / f"{token}.sealed", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(sealed)
    except OSError as exc:
        raise StorageError(
            f"cannot keep the letters in {folder}: {exc.strerror}",
            message_ja=f"通知書を {folder} に保存できません",
        ) from exc
    return token


def get(data_dir: Path, vault: Vault, token: str, *, owner: int, now: dt.datetime) -> Drop:
    """The drop ``token`` of ``owner``; :class:`NotFound` if unknown, someone else's or expired."""
    gone = NotFound(
        "these letters are not available (any more): they are kept for 15 minutes",
        message_ja="この通知書はダウンロードできません(作成から 15 分で削除されます)",
    )
    if not TOKEN.fullmatch(token):
        raise gone
    folder = _folder(data_dir)
    try:
        _purge(folder, now)
        sealed = (folder / f"{token}.sealed").read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise gone from None
    payload = json.loads(vault.open(sealed, context=_context(token)))
    made_at = dt.datetime.fromisoformat(payload["made_at"])
    if payload["owner"] != owner or now - made_at > TTL:
        raise gone
    return Drop(payload["kind"], payload["pages"], made_at)


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
