"""The words of the notices and mails the RA sends, in one place (docs/product.md §13).

Each function returns a :class:`Text`: the notice's title (also the mail's subject) and body
(also the mail's, unless ``mail_body`` says less, as for a sealed notice); the caller hands
it to :func:`ra.mailing.notify.notify` with :func:`signature` as the mail's footer.  Plain
Japanese for office clerks: what happened, then what to do next.  A notice or mail never
carries a password or any other secret: a new issuance password travels only sealed to the
holder's certificate (:mod:`ra.workflow.reissue`) or on a posted letter.

A new mail is one more function here returning a :class:`Text` (or a subject and body for
:func:`ra.mailing.notify.queue_mail` when it has no notice), with :func:`signature` below it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ra.settings import RASettings
from shomei.clock import to_japan


@dataclass(frozen=True)
class Text:
    """A notice's title and body; the mail's body when it must differ from the notice's."""

    title: str
    body: str
    mail_body: str | None = None


def portal_url(settings: RASettings) -> str:
    """The portal's address as mails give it."""
    return settings.web.base_url.rstrip("/") + "/portal/"


def signature(settings: RASettings) -> str:
    """The footer of every mail: who sends it, where the portal is, whom to ask."""
    phone = settings.documents.issuer_phone
    ask = f"{settings.federation_name}" + (f"(電話 {phone})" if phone else "")
    return "\n".join(
        [
            "――――――――――――――――――――",
            f"{settings.federation_name} 電子証明書ポータル",
            f"  {portal_url(settings)}",
            "このメールは送信専用です。返信いただいてもお答えできません。",
            f"お心当たりのない場合やご不明な点は、{ask}までお問い合わせください。",
        ]
    )


def _when(moment: dt.datetime) -> str:
    return f"{to_japan(moment):%Y年%m月%d日 %H:%M}(日本時間)"


def certificate_issued(
    *,
    name: str,
    application_id: int,
    office_number: str,
    office_name: str,
    serial_hex: str,
    not_after: dt.datetime,
) -> Text:
    """B9: the CA issued the certificate; the applicant downloads it."""
    return Text(
        "証明書が発行されました",
        f"{name} 様\n\n"
        f"お申し込みの証明書が発行されました(申込番号 {application_id}、"
        f"事業所 {office_number} {office_name})。\n"
        f"シリアル番号: {serial_hex}\n"
        f"有効期限: {_when(not_after)}\n\n"
        "次にすること:\n"
        "1. ポータルにログインし、「証明書」の画面を開きます。\n"
        "2. 証明書発行用パスワードを入力して、証明書ファイル(.p12)をダウンロードします。\n"
        "   パスワードは、お申し込みのときに入力したものです"
        "(このメールには記載していません)。\n"
        "3. ダウンロードしたファイルを、請求に使うパソコンにインストールします。\n",
    )


def application_rejected(*, name: str, application_id: int, reason: str) -> Text:
    """The rejection was processed: the applicant is told why and what to do."""
    return Text(
        "証明書のお申し込みが却下されました",
        f"{name} 様\n\n"
        f"証明書のお申し込み(申込番号 {application_id})は却下されました。\n"
        f"理由: {reason}\n\n"
        "次にすること:\n"
        "理由の内容を確かめ、必要であれば直したうえで、ポータルから改めてお申し込みください。"
        "却下されたお申し込みが再開されることはありません。\n",
    )


def certificate_revoked(
    *, name: str, application_id: int, serial_hex: str, revoked_at: dt.datetime
) -> Text:
    """B4/B10: the CA revoked the certificate and the RA registered the CRL that says so."""
    return Text(
        "証明書が失効しました",
        f"{name} 様\n\n"
        f"証明書(申込番号 {application_id}、シリアル番号 {serial_hex})は"
        f" {_when(revoked_at)} に失効しました。\n"
        "この証明書で署名した請求ファイルは、失効の後の日時の署名として無効と判定されます。\n\n"
        "次にすること:\n"
        "引き続き請求に署名する場合は、ポータルから新しい証明書をお申し込みください。"
        "失効に心当たりがない場合は、連合会にお問い合わせください。\n",
    )


def certificate_expiring(
    *,
    name: str,
    serial_hex: str,
    not_after: dt.datetime,
    days: int,
    application_id: int,
    renewal_url: str,
) -> Text:
    """B5: the certificate expires within ``days`` days; how to apply for the next one."""
    return Text(
        f"証明書の有効期限が近づいています(残り {days} 日以内)",
        f"{name} 様\n\n"
        f"証明書(シリアル番号 {serial_hex})の有効期限は {_when(not_after)}です。\n"
        "期限を過ぎると、この証明書では請求ファイルに署名できなくなります。\n\n"
        "次にすること:\n"
        "期限までに、ポータルから新しい証明書をお申し込みください(期限の前から申し込めます)。"
        f"ポータルの「状況照会」で申請番号 {application_id} を開き、"
        "「次の証明書を申し込む」から手続きできます"
        "(いまの証明書は、新しい証明書が届くまでそのまま使えます):\n"
        f"{renewal_url}\n",
    )


def password_reissued(*, name: str, serial_hex: str, now: dt.datetime) -> Text:
    """A7: a new issuance password waits, sealed to the certificate, as a notice.

    Neither the notice's body nor the mail carries the password: it is only in the sealed
    document (:mod:`ra.workflow.reissue`).
    """
    return Text(
        "証明書発行用パスワードを再発行しました(暗号化されたお知らせ)",
        "新しい証明書発行用パスワードを、お使いの証明書"
        f"(シリアル番号 {serial_hex})でしか開けないよう暗号化してお届けします。\n"
        "このページの「ファイルをダウンロード」でファイル(.p7m)を保存し、"
        "下の手順のとおり shomei notice open で開いてください。\n"
        "申請済みでまだダウンロードしていない証明書には、申請したときのパスワードが"
        "必要です。\n",
        mail_body=(
            f"{name} 様\n\n"
            f"証明書発行用パスワードの再発行を受け付けました({_when(now)})。\n"
            "新しいパスワードは、お使いの証明書"
            f"(シリアル番号 {serial_hex})でしか開けないよう暗号化して、"
            "ポータルの「お知らせ」にお届けしています。"
            "このメールにパスワードは記載していません。\n\n"
            "次にすること:\n"
            "1. ポータルにログインし、「お知らせ」を開きます。\n"
            "2. 「証明書発行用パスワードを再発行しました」のお知らせを開き、"
            "ファイルをダウンロードします。\n"
            "3. お知らせのページに書かれた手順で、ファイルを開きます。\n\n"
            "この再発行をご依頼になっていない場合は、すぐに連合会へお電話ください。\n"
        ),
    )


__all__ = [
    "Text",
    "application_rejected",
    "certificate_expiring",
    "certificate_issued",
    "password_reissued",
    "portal_url",
    "signature",
]
