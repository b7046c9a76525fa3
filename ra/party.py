"""Who is acting, and what they may do: the one permission model of the RA.

Every service function of ``ra/`` takes a :class:`Party` (the acting party) and checks here,
before it reads or changes anything; views, CLI commands and jobs only build the party
(:func:`party_of` for a signed-in account, :meth:`Party.operator` for the RA operator at the
command line of the RA host, :meth:`Party.job` for a scheduled job) and never decide a
permission themselves.

Two checks, in this order:

* the role: :data:`PERMISSIONS` maps each kind of party to the actions it may take, as data,
  so tests walk it and documents can print it; :func:`require` raises
  :class:`~shomei.errors.NotPermitted`;
* the object: :func:`application_for` gives an office or agent only its own applications, and
  answers :class:`~shomei.errors.NotFound` for another office's, exactly as for an id that does
  not exist, so the portal never reveals that it exists.

What a console page may offer on one application is :func:`allowed_actions`: the actions that
the party's role allows AND that the application's status allows (the transition table of
:mod:`ra.lifecycle`), so a page shows exactly the buttons that would work.

The audit log records the party as before: accounts by their kind and user ID, the operator as
``system`` / ``cli:NAME``, a job as ``system`` / its name, an API token as ``system`` /
``api:NAME`` (:attr:`Party.actor`, :attr:`Party.audit_id`).

An API token (:meth:`Party.api_token`, another system of the federation calling the JSON API)
is a party of kind ``api``: the role table gives the ceiling of every token, and the token's
:class:`Scope` values (read applications, verify claims, register CRLs) grant the part of it
that this token holds (:data:`SCOPE_PERMISSIONS`, :attr:`Party.grants`); :func:`may` asks both,
so there is still one model and one check.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.lifecycle import TRANSITIONS, Actor, Event, Status
from ra.store.models import Account, Application
from shomei.errors import NotFound, NotPermitted


class PartyKind(enum.StrEnum):
    OFFICE = "office"  # 事業所 (portal)
    AGENT = "agent"  # 代理人 (portal)
    STAFF = "staff"  # 連合会職員 (console)
    ADMIN = "admin"  # 連合会管理者 (console)
    OPERATOR = "operator"  # the RA operator at the command line of the RA host
    JOB = "job"  # a scheduled job or an import
    API = "api"  # another system of the federation, through an API token (ra.web.api)


KIND_JA: Mapping[PartyKind, str] = MappingProxyType(
    {
        PartyKind.OFFICE: "事業所",
        PartyKind.AGENT: "代理人",
        PartyKind.STAFF: "職員",
        PartyKind.ADMIN: "管理者",
        PartyKind.OPERATOR: "RA 運用者",
        PartyKind.JOB: "定期処理",
        PartyKind.API: "API トークン",
    }
)

_ACTORS: Mapping[PartyKind, Actor] = MappingProxyType(
    {
        PartyKind.OFFICE: Actor.OFFICE,
        PartyKind.AGENT: Actor.AGENT,
        PartyKind.STAFF: Actor.STAFF,
        PartyKind.ADMIN: Actor.ADMIN,
        PartyKind.OPERATOR: Actor.SYSTEM,
        PartyKind.JOB: Actor.SYSTEM,
        PartyKind.API: Actor.SYSTEM,
    }
)


@dataclass(frozen=True)
class Party:
    """An acting party: a signed-in account, the operator, a job or an API token."""

    kind: PartyKind
    user_id: str  # the account's user ID; the operator's, the job's or the API token's name
    account_id: int | None = None  # the account's id; None for the operator, jobs and tokens
    # What an API token's scopes grant (SCOPE_PERMISSIONS): the party may do what its role
    # allows AND what this grants.  None for every other party (the role alone decides).
    grants: frozenset[Permission] | None = None

    @classmethod
    def operator(cls, name: str = "operator") -> Party:
        """The RA operator at the command line of the RA host (``shomei ra ...``)."""
        return cls(PartyKind.OPERATOR, name)

    @classmethod
    def job(cls, name: str) -> Party:
        """A scheduled job (or an import) named ``name`` in the audit log."""
        return cls(PartyKind.JOB, name)

    @classmethod
    def api_token(cls, name: str, scopes: Iterable[Scope]) -> Party:
        """Another system calling the JSON API with the token ``name`` and its ``scopes``."""
        granted: set[Permission] = set()
        for scope in scopes:
            granted |= SCOPE_PERMISSIONS[scope]
        return cls(PartyKind.API, name, None, frozenset(granted))

    @property
    def actor(self) -> Actor:
        """The lifecycle actor of this party (the operator and jobs act as ``system``)."""
        return _ACTORS[self.kind]

    @property
    def audit_id(self) -> str:
        """The ``actor_id`` of the audit log: the user ID, ``cli:NAME`` or the job's name."""
        if self.kind is PartyKind.OPERATOR:
            return f"cli:{self.user_id}"
        if self.kind is PartyKind.API:
            return f"api:{self.user_id}"
        return self.user_id

    @property
    def is_portal(self) -> bool:
        return self.kind in (PartyKind.OFFICE, PartyKind.AGENT)


def party_of(account: Account) -> Party:
    """The party a signed-in account acts as; a disabled account acts as nobody."""
    if not account.active:
        raise NotPermitted(
            f"account {account.user_id} is disabled",
            message_ja=f"アカウント {account.user_id} は利用停止中です",
            actor=account.user_id,
        )
    return Party(PartyKind(account.kind.value), account.user_id, account.id)


def account_of(session: Session, party: Party) -> Account:
    """The account ``party`` acts for, read again: disabled since sign-in is refused."""
    account = session.get(Account, party.account_id) if party.account_id is not None else None
    if account is None or account.user_id != party.user_id:
        raise NotPermitted(
            f"{party.user_id} does not act for an account",
            message_ja=f"{party.user_id} はアカウントとして操作できません",
            actor=party.user_id,
        )
    party_of(account)
    return account


class Permission(enum.StrEnum):
    """The actions of the RA, one per thing a party may be allowed to do."""

    APPLY = "apply"  # 申込 for oneself (an agent: for an office it represents)
    APPLY_FOR_APPLICANT = "apply_for_applicant"  # 職員申請・再度申込 (staff for an applicant)
    VIEW_OWN_APPLICATIONS = "view_own_applications"  # the portal: one's own applications
    VIEW_ALL_APPLICATIONS = "view_all_applications"  # 証明書一覧, 詳細, 一覧保存
    REGISTER_ISSUE_REQUEST = "register_issue_request"  # 発行依頼
    REGISTER_PAYMENT = "register_payment"  # 入金登録
    REJECT = "reject"  # 却下
    EDIT_REJECTION_REASON = "edit_rejection_reason"  # 却下理由の修正
    REGISTER_REVOCATION = "register_revocation"  # 証明書失効申請 (staff, B4)
    REQUEST_REVOCATION = "request_revocation"  # 失効依頼 by the holder (portal)
    UNDO = "undo"  # 取消 of an issue request, payment, rejection or revocation (admins)
    REREQUEST_ISSUANCE = "rerequest_issuance"  # 発行依頼の再送 after the CA abandoned a batch
    DOWNLOAD = "download"  # the PKCS#12 or the certificate
    # A7: a new issuance password sealed to one's certificate (an action, not a secret).
    REISSUE_OWN_PASSWORD = "reissue_own_password"  # noqa: S105
    MANAGE_PORTAL_ACCOUNTS = "manage_portal_accounts"  # 事業所管理
    MANAGE_STAFF = "manage_staff"  # staff and admin users
    VIEW_AUDIT = "view_audit"  # 監査
    RUN_JOBS = "run_jobs"  # scheduled jobs, and "run now"
    MANAGE_LINK = "manage_link"  # 連携: batches out and results in, CRLs
    REGISTER_CRL = "register_crl"  # 失効リスト登録 alone (an API token; MANAGE_LINK includes it)
    VERIFY_CLAIMS = "verify_claims"  # 請求の署名検証 against the RA's current CRL (the API)
    MANAGE_API_TOKENS = "manage_api_tokens"  # API トークンの発行・失効 (admins)


class Scope(enum.StrEnum):
    """What an API token may be used for; each scope grants permissions (SCOPE_PERMISSIONS)."""

    READ_APPLICATIONS = "read_applications"  # applications, certificates, the CRL
    VERIFY_CLAIMS = "verify_claims"  # claim signatures, and the CRL they are checked against
    REGISTER_CRLS = "register_crls"  # registering a CRL the CA issued (A6)


P = Permission
_PORTAL = frozenset(
    {P.APPLY, P.VIEW_OWN_APPLICATIONS, P.REQUEST_REVOCATION, P.DOWNLOAD, P.REISSUE_OWN_PASSWORD}
)
_STAFF = frozenset(
    {
        P.APPLY_FOR_APPLICANT,
        P.VIEW_ALL_APPLICATIONS,
        P.REGISTER_ISSUE_REQUEST,
        P.REGISTER_PAYMENT,
        P.REJECT,
        P.EDIT_REJECTION_REASON,
        P.REGISTER_REVOCATION,
        P.MANAGE_PORTAL_ACCOUNTS,
    }
)

# Role -> what it may do.  Offices and agents act on their own applications only (the object
# check of application_for); the operator administers the RA host but takes no decision on an
# application (approvals are the console's); jobs run the link and the daily work.
PERMISSIONS: Mapping[PartyKind, frozenset[Permission]] = MappingProxyType(
    {
        PartyKind.OFFICE: _PORTAL,
        PartyKind.AGENT: _PORTAL,
        PartyKind.STAFF: _STAFF,
        PartyKind.ADMIN: _STAFF
        | {
            P.UNDO,
            P.REREQUEST_ISSUANCE,
            P.MANAGE_STAFF,
            P.VIEW_AUDIT,
            P.RUN_JOBS,
            P.MANAGE_LINK,
            P.MANAGE_API_TOKENS,
        },
        PartyKind.OPERATOR: frozenset(
            {
                P.VIEW_ALL_APPLICATIONS,
                P.REREQUEST_ISSUANCE,
                P.MANAGE_PORTAL_ACCOUNTS,
                P.MANAGE_STAFF,
                P.VIEW_AUDIT,
                P.RUN_JOBS,
                P.MANAGE_LINK,
                P.MANAGE_API_TOKENS,
            }
        ),
        PartyKind.JOB: frozenset({P.VIEW_ALL_APPLICATIONS, P.RUN_JOBS, P.MANAGE_LINK}),
        # The ceiling of every API token; each token holds only what its scopes grant.
        PartyKind.API: frozenset({P.VIEW_ALL_APPLICATIONS, P.VERIFY_CLAIMS, P.REGISTER_CRL}),
    }
)

SCOPE_PERMISSIONS: Mapping[Scope, frozenset[Permission]] = MappingProxyType(
    {
        Scope.READ_APPLICATIONS: frozenset({P.VIEW_ALL_APPLICATIONS}),
        Scope.VERIFY_CLAIMS: frozenset({P.VERIFY_CLAIMS}),
        Scope.REGISTER_CRLS: frozenset({P.REGISTER_CRL}),
    }
)
SCOPE_LABELS_JA: Mapping[Scope, str] = MappingProxyType(
    {
        Scope.READ_APPLICATIONS: "申請・証明書の閲覧",
        Scope.VERIFY_CLAIMS: "請求の署名検証",
        Scope.REGISTER_CRLS: "失効リストの登録",
    }
)

LABELS_JA: Mapping[Permission, str] = MappingProxyType(
    {
        P.APPLY: "証明書の申込",
        P.APPLY_FOR_APPLICANT: "再度申込",
        P.VIEW_OWN_APPLICATIONS: "自分の申請の閲覧",
        P.VIEW_ALL_APPLICATIONS: "証明書一覧の閲覧",
        P.REGISTER_ISSUE_REQUEST: "発行依頼",
        P.REGISTER_PAYMENT: "入金登録",
        P.REJECT: "却下",
        P.EDIT_REJECTION_REASON: "却下理由の修正",
        P.REGISTER_REVOCATION: "失効申請",
        P.REQUEST_REVOCATION: "失効依頼",
        P.UNDO: "取消",
        P.REREQUEST_ISSUANCE: "発行依頼の再送",
        P.DOWNLOAD: "証明書のダウンロード",
        P.REISSUE_OWN_PASSWORD: "証明書発行用パスワードの再発行",
        P.MANAGE_PORTAL_ACCOUNTS: "事業所管理",
        P.MANAGE_STAFF: "職員管理",
        P.VIEW_AUDIT: "監査",
        P.RUN_JOBS: "定期処理の実行",
        P.MANAGE_LINK: "認証局との連携",
        P.REGISTER_CRL: "失効リストの登録",
        P.VERIFY_CLAIMS: "請求の署名検証",
        P.MANAGE_API_TOKENS: "API トークンの管理",
    }
)

# The lifecycle events each action applies (an action shown on an application is offered
# only when one of its events is legal from the application's status for the party's actor).
EVENTS: Mapping[Permission, frozenset[Event]] = MappingProxyType(
    {
        P.REGISTER_ISSUE_REQUEST: frozenset({Event.REGISTER_ISSUE_REQUEST}),
        P.REGISTER_PAYMENT: frozenset({Event.REGISTER_PAYMENT}),
        P.REJECT: frozenset({Event.REJECT}),
        P.EDIT_REJECTION_REASON: frozenset({Event.EDIT_REJECTION_REASON}),
        P.REGISTER_REVOCATION: frozenset({Event.REGISTER_REVOCATION}),
        P.UNDO: frozenset({Event.UNDO_APPROVAL, Event.UNDO_REJECTION, Event.UNDO_REVOCATION}),
        P.REREQUEST_ISSUANCE: frozenset({Event.REREQUEST_ISSUANCE}),
    }
)

# Statuses of an application still on its way to a certificate: the applicant cannot apply
# again while one of its applications is in one of them (ra.workflow.applications refuses it).
PENDING = frozenset(
    {
        Status.AWAITING_ISSUE_REQUEST,
        Status.AWAITING_PAYMENT,
        Status.ISSUE_REQUESTED,
        Status.AWAITING_ISSUANCE,
    }
)


def may(party: Party, permission: Permission) -> bool:
    """True when ``party``'s role allows ``permission`` (and, for an API token, its scopes)."""
    if permission not in PERMISSIONS[party.kind]:
        return False
    return party.grants is None or permission in party.grants


def require(party: Party, *permissions: Permission) -> None:
    """Refuse with :class:`NotPermitted` unless ``party`` holds one of ``permissions``."""
    if any(may(party, p) for p in permissions):
        return
    what = "・".join(LABELS_JA[p] for p in permissions)
    # Who may, so the person refused knows whom to ask (jobs and tokens are not someone to
    # ask); a token is told which scope it lacks.
    holders = "・".join(
        KIND_JA[k]
        for k in PartyKind
        if k not in (PartyKind.JOB, PartyKind.API) and any(p in PERMISSIONS[k] for p in permissions)
    )
    scopes = [s for s in Scope if SCOPE_PERMISSIONS[s] & set(permissions)]
    if party.kind is PartyKind.API and scopes:
        raise NotPermitted(
            f"the API token {party.user_id} lacks the scope {' or '.join(s.value for s in scopes)}",
            message_ja=f"API トークン {party.user_id} には"
            f"「{'・'.join(SCOPE_LABELS_JA[s] for s in scopes)}」({'/'.join(scopes)})の"
            "権限がありません",
            actor=party.user_id,
            permission=permissions[0].value,
            scopes=[s.value for s in scopes],
        )
    raise NotPermitted(
        f"{party.kind.value} {party.user_id} may not {' or '.join(p.value for p in permissions)}",
        message_ja=f"{KIND_JA[party.kind]}には「{what}」を行う権限がありません"
        + (f"({holders}のみ行えます)" if holders else ""),
        actor=party.user_id,
        permission=permissions[0].value,
    )


MAX_ID = 2**31 - 1  # the largest value of an INTEGER primary key (SQLite and PostgreSQL)


def application_for(session: Session, party: Party, application_id: int) -> Application:
    """The application ``application_id`` as ``party`` may see it, or :class:`NotFound`.

    Staff, admins, the operator and jobs see every application; an office or agent only its
    own, and another's is "not found", never "not permitted".
    """
    require(party, P.VIEW_ALL_APPLICATIONS, P.VIEW_OWN_APPLICATIONS)
    # An id no INTEGER column can hold names no application (PostgreSQL would refuse the
    # query itself: "integer out of range").
    app = (
        session.execute(
            select(Application).where(Application.id == application_id)
        ).scalar_one_or_none()
        if 0 < application_id <= MAX_ID
        else None
    )
    if app is None or (
        not may(party, P.VIEW_ALL_APPLICATIONS) and app.account_id != party.account_id
    ):
        raise NotFound(
            f"no application {application_id}",
            message_ja=f"申請 {application_id} は見つかりません",
            application=application_id,
        )
    return app


def allowed_actions(party: Party, app: Application) -> frozenset[Permission]:
    """The actions ``party`` may take on ``app`` now: its role AND the status allow them."""
    status = Status(app.status)
    allowed: set[Permission] = set()
    for permission, events in EVENTS.items():
        if not may(party, permission):
            continue
        if any(
            (t := TRANSITIONS.get((status, e))) is not None and party.actor in t.actors
            for e in events
        ):
            allowed.add(permission)
    if may(party, P.APPLY_FOR_APPLICANT) and status not in PENDING:
        allowed.add(P.APPLY_FOR_APPLICANT)  # 再度申込: a finished application may be redone
    if may(party, P.DOWNLOAD) and status is Status.ISSUED and app.account_id == party.account_id:
        allowed.add(P.DOWNLOAD)
    return frozenset(allowed)


__all__ = [
    "EVENTS",
    "KIND_JA",
    "LABELS_JA",
    "MAX_ID",
    "PENDING",
    "PERMISSIONS",
    "SCOPE_LABELS_JA",
    "SCOPE_PERMISSIONS",
    "Party",
    "PartyKind",
    "Permission",
    "Scope",
    "account_of",
    "allowed_actions",
    "application_for",
    "may",
    "party_of",
    "require",
]
