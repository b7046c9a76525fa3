"""Reissuing the issuance password to an office holding its certificate (A7, docs/product.md §7).

The office (or agent) asks in the portal; the RA makes a new issuance password, encrypts it to
the public key of the account's current certificate (CMS AuthEnvelopedData with AES-GCM,
RFC 5083/5084, through :func:`signer.notices.seal`: a changed byte is refused, never opened)
and delivers it as a sealed notice (お知らせ), with a mail saying that one is waiting.  Only the
holder of that certificate's private key can read it, with the decryption tool
(``shomei notice open NOTICE.p7m --p12 FILE``).  Without a certificate the office phones the
federation instead (:func:`ra.people.accounts.reset_issuance_password`).
Keys the RA still keeps wrapped for pending applications stay under the password they were
wrapped with, and the notice says so.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.lifecycle import Status
from ra.mailing import texts
from ra.mailing.notify import notify
from ra.party import Party, Permission, account_of, require
from ra.people.passwords import hash_password, new_issuance_password
from ra.store import audit
from ra.store.models import Account, Application, Certificate, Notice
from shomei.clock import to_japan
from shomei.errors import NotFound
from signer.notices import seal

# Certificates that still identify their holder: issued, or with a revocation not yet sent.
_HOLDING = (Status.ISSUED, Status.REVOCATION_REQUESTED)
KIND = "password_reissue"  # the notice's kind


def _holding(session: Session, account: Account, now: dt.datetime) -> Certificate | None:
    return session.execute(
        select(Certificate)
        .join(Application, Application.id == Certificate.application_id)
        .where(
            Application.account_id == account.id,
            Application.status.in_(_HOLDING),
            Certificate.not_after > now,
            Certificate.not_before <= now,
        )
        .order_by(Certificate.not_after.desc())
        .limit(1)
    ).scalar_one_or_none()


def sealable_certificate(session: Session, party: Party, now: dt.datetime) -> Certificate | None:
    """The certificate a reissued password would be sealed to for ``party`` (the portal's
    page offers the request only then), or None: no certificate, or only expired or revoked
    ones, or one whose key is not RSA (:func:`signer.notices.seal` needs RSA), so the office
    phones the federation instead."""
    require(party, Permission.REISSUE_OWN_PASSWORD)
    cert = _holding(session, account_of(session, party), now)
    if cert is None:
        return None
    key = x509.load_der_x509_certificate(cert.der).public_key()
    return cert if isinstance(key, rsa.RSAPublicKey) else None


def current_certificate(session: Session, account: Account, now: dt.datetime) -> Certificate:
    """The newest unexpired certificate ``account`` holds, or :class:`NotFound`."""
    cert = _holding(session, account, now)
    if cert is None:
        raise NotFound(
            f"{account.user_id} holds no current certificate to seal a new password to; "
            "phone the federation, which posts a new password",
            message_ja=(
                "有効な証明書がないため、暗号化したパスワードをお届けできません。"
                "連合会にお電話ください(郵送で再発行します)"
            ),
            account=account.user_id,
        )
    return cert


def reissue_sealed(
    session: Session,
    party: Party,
    *,
    now: dt.datetime,
    message_id_domain: str,
    rng: Callable[[int], bytes] = secrets.token_bytes,
    source_address: str | None = None,
    footer: str = "",
) -> Notice:
    """A7: a new issuance password for the office or agent ``party``, sealed to its current
    certificate (staff reset a password by phone with
    ``ra.people.accounts.reset_issuance_password``).  ``footer`` ends the mail
    (:func:`ra.mailing.texts.signature`).
    """
    require(party, Permission.REISSUE_OWN_PASSWORD)
    actor = account_of(session, party)
    cert = current_certificate(session, actor, now)
    recipient = x509.load_der_x509_certificate(cert.der)
    password = new_issuance_password(rng)
    document = (
        f"{actor.name} 様\n\n"
        f"証明書発行用パスワードを再発行しました({to_japan(now):%Y年%m月%d日 %H:%M})。\n\n"
        f"新しい証明書発行用パスワード: {password}\n\n"
        "申請済みで未ダウンロードの証明書がある場合、そのダウンロードには申請時のパスワードが"
        "必要です。\n"
    ).encode()
    sealed = seal(document, recipient=recipient)  # before the hash changes: all or nothing
    actor.issuance_password_hash = hash_password(password)
    text = texts.password_reissued(name=actor.name, serial_hex=cert.serial_hex, now=now)
    notice = notify(
        session,
        actor,
        kind=KIND,
        title=text.title,
        body=text.body,
        now=now,
        message_id_domain=message_id_domain,
        sealed=sealed,
        mail_body=text.mail_body,
        footer=footer,
    )
    # The password itself is never written to the audit log.
    audit.record(
        session,
        actor=party.actor.value,
        actor_id=party.audit_id,
        action="reissue_issuance_password_sealed",
        object_type="account",
        object_id=actor.user_id,
        now=now,
        source_address=source_address,
        details={"sealed_to_serial": cert.serial_hex, "notice": notice.id},
    )
    return notice
