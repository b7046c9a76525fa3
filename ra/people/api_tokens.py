"""API tokens: how the federation's other systems (the claims reception system) call the RA.

Admins make a token in the console (:func:`create_token`) with a name and one or more
:class:`~ra.party.Scope` values; the token is drawn from a secure random source and shown
once: only its SHA-256 is stored (a token is 256 random bits, so a fast hash is enough and a
token is found by its hash).  A call presents it as ``Authorization: Bearer <token>``;
:func:`authenticate` reads the token's row on every call (nothing is cached), so a revoked
token (:func:`revoke_token`) is refused from the next call on.  The party a token acts as is
:meth:`ra.party.Party.api_token`: the role table of :mod:`ra.party` with the token's scopes.

Making and revoking tokens is audited (``api_token_created``, ``api_token_revoked``) and so is
every call made with a token (:func:`record_call`, ``api_call``, the token's name as
``api:NAME``), a refused one included.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.party import MAX_ID, Party, Permission, Scope, require
from ra.store import audit
from ra.store.models import ApiToken
from shomei.errors import AlreadyExists, AuthenticationFailed, Conflict, MalformedInput, NotFound

PREFIX = "shomei_"  # every token starts so (a secret scanner can spot one in a leaked file)
SHOWN = 12  # characters of a token kept and shown to tell tokens apart
NAME_MAX = 60  # the audit log's actor_id "api:NAME" is at most 64
OBJECT = "api_token"


@dataclass(frozen=True)
class CreatedToken:
    """A token just made: ``secret`` is the token itself, shown once and never stored."""

    row: ApiToken
    secret: str


def digest(token: str) -> str:
    """The SHA-256 (hex) a token is stored and found by."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def scopes_of(row: ApiToken) -> tuple[Scope, ...]:
    """The scopes of a stored token, in the order of :class:`Scope` (unknown values dropped)."""
    held = set(row.scopes or ())
    return tuple(s for s in Scope if s.value in held)


def _check_name(name: str) -> str:
    cleaned = name.strip() if isinstance(name, str) else ""
    if not cleaned or len(cleaned) > NAME_MAX or not cleaned.isprintable():
        raise MalformedInput(
            f"a token name is 1 to {NAME_MAX} printable characters",
            message_ja=f"トークンの名前は {NAME_MAX} 文字以内で入力してください"
            "(使用できない文字は含めません)",
            field="name",
        )
    return cleaned


def _check_scopes(scopes: Iterable[Scope | str]) -> list[Scope]:
    chosen: set[Scope] = set()
    for value in scopes:
        try:
            chosen.add(Scope(str(value)))
        except ValueError:
            raise MalformedInput(
                f"unknown scope {str(value)[:40]!r}",
                message_ja="権限(スコープ)の指定が正しくありません",
                field="scopes",
            ) from None
    if not chosen:
        raise MalformedInput(
            "a token needs at least one scope",
            message_ja="権限(スコープ)を一つ以上選んでください",
            field="scopes",
        )
    return [s for s in Scope if s in chosen]


def create_token(
    session: Session,
    party: Party,
    *,
    name: str,
    scopes: Iterable[Scope | str],
    now: dt.datetime,
    source_address: str | None = None,
) -> CreatedToken:
    """Make a token ``name`` with ``scopes``; the result's ``secret`` is shown once.

    Raises :class:`MalformedInput` (a bad name, no or an unknown scope) and
    :class:`AlreadyExists` (a name in use, revoked tokens included: names are never reused,
    so the audit log's ``api:NAME`` means one token).
    """
    require(party, Permission.MANAGE_API_TOKENS)
    cleaned = _check_name(name)
    chosen = _check_scopes(scopes)
    taken = session.execute(select(ApiToken.id).where(ApiToken.name == cleaned)).first()
    if taken is not None:
        raise AlreadyExists(
            f"there is already an API token named {cleaned!r}",
            message_ja=f"「{cleaned}」という名前の API トークンは既にあります",
            field="name",
        )
    secret = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=cleaned,
        token_sha256=digest(secret),
        prefix=secret[:SHOWN],
        scopes=[s.value for s in chosen],
        created_at=now,
        created_by=party.audit_id,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=party.actor.value,
        actor_id=party.audit_id,
        action="api_token_created",
        object_type=OBJECT,
        object_id=cleaned,
        now=now,
        source_address=source_address,
        details={"scopes": row.scopes, "prefix": row.prefix},
    )
    return CreatedToken(row, secret)


def list_tokens(session: Session, party: Party) -> Sequence[ApiToken]:
    """Every token, the active ones first, newest first."""
    require(party, Permission.MANAGE_API_TOKENS)
    rows = session.execute(select(ApiToken).order_by(ApiToken.id.desc())).scalars().all()
    return sorted(rows, key=lambda r: r.revoked_at is not None)


def revoke_token(
    session: Session,
    party: Party,
    token_id: int,
    *,
    now: dt.datetime,
    source_address: str | None = None,
) -> ApiToken:
    """Revoke a token: from the next call on it is refused (401). Revoking twice is Conflict."""
    require(party, Permission.MANAGE_API_TOKENS)
    row = (
        session.execute(
            select(ApiToken).where(ApiToken.id == token_id).with_for_update()
        ).scalar_one_or_none()
        if 0 < token_id <= MAX_ID
        else None
    )
    if row is None:
        raise NotFound(
            f"no API token {token_id}",
            message_ja=f"API トークン {token_id} は見つかりません",
            token=token_id,
        )
    if row.revoked_at is not None:
        raise Conflict(
            f"the API token {row.name} was revoked already",
            message_ja=f"API トークン「{row.name}」は既に失効しています",
            token=token_id,
        )
    row.revoked_at = now
    row.revoked_by = party.audit_id
    session.flush()
    audit.record(
        session,
        actor=party.actor.value,
        actor_id=party.audit_id,
        action="api_token_revoked",
        object_type=OBJECT,
        object_id=row.name,
        now=now,
        source_address=source_address,
        details={"prefix": row.prefix},
    )
    return row


def _refused(message: str, message_ja: str, **fields: Any) -> AuthenticationFailed:
    return AuthenticationFailed(message, message_ja=message_ja, **fields)


def authenticate(session: Session, presented: str | None) -> tuple[Party, ApiToken]:
    """The party of the token ``presented``, read from the database now (never cached).

    Raises :class:`AuthenticationFailed` for no token, an unknown one and a revoked one; a
    revoked token's error carries its name (``fields["token"]``) so the refusal is audited.
    """
    if not presented:
        raise _refused(
            "an API token is required (Authorization: Bearer <token>)",
            "API トークンが必要です(Authorization: Bearer <トークン>)",
        )
    row = session.execute(
        select(ApiToken).where(ApiToken.token_sha256 == digest(presented))
    ).scalar_one_or_none()
    if row is None:
        raise _refused("the API token is not valid", "API トークンが正しくありません")
    if row.revoked_at is not None:
        raise _refused(
            f"the API token {row.name} was revoked",
            f"API トークン「{row.name}」は失効しています",
            token=row.name,
        )
    return Party.api_token(row.name, scopes_of(row)), row


def record_call(
    session: Session,
    token_name: str,
    *,
    method: str,
    path: str,
    status: int,
    now: dt.datetime,
    source_address: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Audit one call made with the token ``token_name`` (refused ones too) and note its use."""
    row = session.execute(select(ApiToken).where(ApiToken.name == token_name)).scalar_one_or_none()
    party = Party.api_token(token_name, scopes_of(row) if row is not None else ())
    if row is not None and row.revoked_at is None:
        row.last_used_at = now
    audit.record(
        session,
        actor=party.actor.value,
        actor_id=party.audit_id,
        action="api_call",
        object_type=OBJECT,
        object_id=token_name,
        now=now,
        source_address=source_address,
        details={"method": method, "path": path[:300], "status": status, **(details or {})},
    )
