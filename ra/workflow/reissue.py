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
from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.lifecycle import Status
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


def current_certificate(session: Session, account: Account, now: dt.datetime) -> Certificate:
    """The newest unexpired certificate ``account`` holds, or :class:`NotFound`."""
    cert = session.execute(
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
) -> Notice:
    """A7: a new issuance password for the office or agent ``party``, sealed to its current
    certificate (staff reset a password by phone with
    ``ra.people.accounts.reset_issuance_password``).
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
    notice = notify(
        session,
        actor,
        kind="password_reissue",
        title="証明書発行用パスワードを再発行しました(暗号化されたお知らせ)",
        body=(
            "新しい証明書発行用パスワードを、お使いの証明書"
            f"(シリアル番号 {cert.serial_hex})の公開鍵で暗号化してお届けします。"
            "お知らせのファイルを保存し、復号ツールで開いてください: "
            "shomei notice open お知らせ.p7m --p12 証明書.p12"
        ),
        now=now,
        message_id_domain=message_id_domain,
        sealed=sealed,
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
