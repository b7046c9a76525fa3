"""Letters with passwords, kept sealed for a few minutes so the console can offer their PDF.

:func:`put` and :func:`get` keep and find a drop; the console prints it (:mod:`ra.web.letter_drop`).

New passwords exist in clear only in the request (or the background import,
:mod:`ra.people.import_runs`) that made them: only argon2 hashes are stored.  What the letters
print — user IDs, names, addresses and the clear passwords — is sealed with the RA's secrets key
(:mod:`ra.store.vault`, AES-256-GCM) and written to ``<data_dir>/letters/<token>.sealed``, mode
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

from ra.store.models import Account
from ra.store.vault import Vault
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


def account_page(account: Account, **passwords: str) -> dict[str, Any]:
    """One letter's page: who it is for and the new ``passwords`` it prints."""
    return {
        "user_id": account.user_id,
        "kind": account.kind.value,
        "name": account.name,
        "number": account.office_number or "",
        "postal_code": account.postal_code or "",
        "address": account.address or "",
        **passwords,
    }


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


def discard(data_dir: Path, token: str) -> None:
    """Delete the drop ``token`` now (its accounts were never committed)."""
    if TOKEN.fullmatch(token):
        (_folder(data_dir) / f"{token}.sealed").unlink(missing_ok=True)
