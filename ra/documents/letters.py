"""Letters posted to offices and agents: the account notification and the password reissue.

* :func:`notification_letters` — 通知書 for new office and agent accounts (the user ID is
  notified together with the issuance password, docs/office-guide.md §1): one A4 page per
  account, so a federation prints a whole CSV upload at once.  Each page carries the user
  ID, the initial login password, the issuance password (証明書発行用パスワード), the
  portal's address and the first sign-in steps in plain Japanese.
* :func:`password_reset_letter` — パスワード再発行のお知らせ, the phone path of the
  issuance-password reissue (A7, docs/office-guide.md §9): an office without a certificate
  phones the federation, which issues a new issuance password and posts this letter.
* :func:`login_password_letter` — ログインパスワード再発行のお知らせ: the federation set a new
  login password (the office forgot its own, or was locked out); the office changes it at the
  next sign-in.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, PageBreak, Spacer

from ra.documents.fonts import Fonts
from ra.documents.layout import (
    FRAME_WIDTH,
    Styles,
    boxed,
    dated,
    grid,
    letterhead,
    para,
    render,
    start,
    steps,
)
from ra.documents.model import AccountLetter, Issuer, LoginPasswordLetter, PasswordResetLetter
from shomei.errors import MalformedInput

KIND_JA = {"office": "事業所", "agent": "代理人"}
_URL = re.compile(r"https?://[^\s<>\"']+")


def _check_url(portal_url: str) -> None:
    if not isinstance(portal_url, str) or not _URL.fullmatch(portal_url):
        raise MalformedInput(
            f"portal_url must be an http(s) URL, not {str(portal_url)[:80]!r}",
            message_ja="ポータルのURLが正しくありません",
            field="portal_url",
        )


def notification_letters(
    letters: Sequence[AccountLetter],
    *,
    issuer: Issuer,
    portal_url: str,
    issued_at: dt.datetime,
    wareki: bool = False,
    fonts: Fonts = Fonts(),  # noqa: B008 (a frozen value, safe as a default)
) -> bytes:
    """The notification letters (通知書) of new accounts, one page each, as one PDF."""
    if not letters:
        raise MalformedInput(
            "no accounts to print letters for", message_ja="通知書を作成する利用者がありません"
        )
    _check_url(portal_url)
    names, st = start(fonts)
    story: list[Flowable] = []
    for index, letter in enumerate(letters):
        if index:
            story.append(PageBreak())
        story.extend(_account_page(st, letter, issuer, portal_url, issued_at, wareki))
    return render(story, names=names, title="ユーザーID・パスワード通知書", author=issuer.name)


def _account_page(
    st: Styles,
    letter: AccountLetter,
    issuer: Issuer,
    portal_url: str,
    issued_at: dt.datetime,
    wareki: bool,
) -> list[Flowable]:
    kind = KIND_JA[letter.kind]
    number_label = "事業所番号" if letter.kind == "office" else "代理人番号"
    name_label = "事業所名（カナ）" if letter.kind == "office" else "法人名（カナ）"
    rows: list[list[Flowable | str]] = [
        [para("ユーザーID", st.label), para(letter.user_id, st.secret)],
        [para("初回ログイン用パスワード", st.label), para(letter.login_password, st.secret)],
        [para("証明書発行用パスワード", st.label), para(letter.issuance_password, st.secret)],
    ]
    if letter.office_number.strip():
        rows.insert(0, [para(number_label, st.label), para(letter.office_number, st.value)])
    rows.append([para("ログインするページ", st.label), para(portal_url, st.value)])
    label_width = 56 * mm
    return [
        letterhead(st, letter.addressee, issuer, dated("発行日", issued_at, wareki=wareki)),
        para("ユーザーID・パスワード通知書", st.title),
        para(
            f"{issuer.name}の電子証明書ポータルをご利用いただくための{kind}のユーザーIDと"
            "パスワードをお知らせします。",
            st.body,
        ),
        grid(st, rows, [label_width, FRAME_WIDTH - label_width], shade_first_column=True),
        para("はじめてログインするとき", st.heading),
        *steps(
            [
                "パソコンまたはスマートフォンで、上の「ログインするページ」を開きます。",
                "ユーザーIDと初回ログイン用パスワードを入力し、ログインします。",
                f"画面の案内に従って、利用規約への同意、{number_label}と{name_label}による"
                "本人確認、ご自身で決めるパスワードの設定、メールアドレスの登録を行います。",
                "登録したメールアドレスに届く6桁の確認コードを、10分以内に入力すると完了です。"
                "次回からは、ご自身で決めたパスワードでログインします。",
            ],
            st.step,
        ),
        para("証明書発行用パスワードについて", st.heading),
        para(
            "証明書の発行申請、ダウンロード、パソコンへのインストールのときに入力します。"
            "初回ログイン用パスワードとは別のものです。申請とダウンロードの画面では、"
            "大文字・小文字、空白、ハイフンの有無は区別しません。パソコンにインストールする"
            "ときは、上のとおり（英字は大文字、ハイフンあり）に入力してください。",
            st.body,
        ),
        Spacer(1, 3 * mm),
        _keep_safe(st, issuer),
    ]


def _keep_safe(st: Styles, issuer: Issuer) -> Flowable:
    contact = f"{issuer.name}（電話 {issuer.phone}）" if issuer.phone.strip() else issuer.name
    return boxed(
        st,
        [
            para("本書は大切に保管してください", st.label),
            para(
                "パスワードは本書でのみお知らせします。他の人に見せたり、メールで送ったり"
                "しないでください。連合会の職員がお電話やメールでパスワードをお尋ねする"
                "ことはありません。",
                st.small,
            ),
            para(
                f"本書を紛失したとき、心当たりのない通知が届いたときは、{contact}に"
                "ご連絡ください。",
                st.small,
            ),
        ],
        border=1.0,
    )


def password_reset_letter(
    letter: PasswordResetLetter,
    *,
    issuer: Issuer,
    portal_url: str,
    issued_at: dt.datetime,
    wareki: bool = False,
    fonts: Fonts = Fonts(),  # noqa: B008 (a frozen value, safe as a default)
) -> bytes:
    """パスワード再発行のお知らせ: the new issuance password of one account, as a PDF."""
    _check_url(portal_url)
    names, st = start(fonts)
    label_width = 56 * mm
    rows: list[list[Flowable | str]] = [
        [para("ユーザーID", st.label), para(letter.user_id, st.secret)],
        [para("新しい証明書発行用パスワード", st.label), para(letter.issuance_password, st.secret)],
        [para("ログインするページ", st.label), para(portal_url, st.value)],
    ]
    story: list[Flowable] = [
        letterhead(st, letter.addressee, issuer, dated("発行日", issued_at, wareki=wareki)),
        para("証明書発行用パスワード再発行のお知らせ", st.title),
        para(
            "お電話でご依頼いただいた証明書発行用パスワードを再発行しましたので、"
            "お知らせします。これからの証明書の発行申請、ダウンロード、インストールには、"
            "新しいパスワードをお使いください。",
            st.body,
        ),
        grid(st, rows, [label_width, FRAME_WIDTH - label_width], shade_first_column=True),
        para("再発行の前に申請した証明書について", st.heading),
        para(
            "再発行の前に申請して、まだダウンロードしていない証明書は、申請したときの"
            "パスワードで保護されています。そのダウンロードとインストールには、申請したときの"
            "パスワードが必要です。申請したときのパスワードが分からない場合は、ポータルから"
            "あらためて発行申請をしてください。",
            st.body,
        ),
        para("ログインパスワードについて", st.heading),
        para(
            "ポータルにログインするパスワードは変わりません。ご自身で決めたパスワードで"
            "ログインしてください。",
            st.body,
        ),
        Spacer(1, 3 * mm),
        _keep_safe(st, issuer),
    ]
    return render(
        story, names=names, title="証明書発行用パスワード再発行のお知らせ", author=issuer.name
    )


def login_password_letter(
    letter: LoginPasswordLetter,
    *,
    issuer: Issuer,
    portal_url: str,
    issued_at: dt.datetime,
    wareki: bool = False,
    fonts: Fonts = Fonts(),  # noqa: B008 (a frozen value, safe as a default)
) -> bytes:
    """ログインパスワード再発行のお知らせ: the new login password of one account, as a PDF."""
    _check_url(portal_url)
    names, st = start(fonts)
    label_width = 56 * mm
    rows: list[list[Flowable | str]] = [
        [para("ユーザーID", st.label), para(letter.user_id, st.secret)],
        [para("新しいログイン用パスワード", st.label), para(letter.login_password, st.secret)],
        [para("ログインするページ", st.label), para(portal_url, st.value)],
    ]
    story: list[Flowable] = [
        letterhead(st, letter.addressee, issuer, dated("発行日", issued_at, wareki=wareki)),
        para("ログイン用パスワード再発行のお知らせ", st.title),
        para(
            "ご依頼により、電子証明書ポータルにログインするパスワードを再発行しましたので、"
            "お知らせします。これまでのパスワードは使えなくなりました。",
            st.body,
        ),
        grid(st, rows, [label_width, FRAME_WIDTH - label_width], shade_first_column=True),
        para("ログインの手順", st.heading),
        *steps(
            [
                "上の「ログインするページ」を開き、ユーザーIDと新しいログイン用パスワードで"
                "ログインします。",
                "画面の案内に従って、ご自身で決める新しいパスワードに変更してください。",
            ],
            st.step,
        ),
        para("証明書発行用パスワードについて", st.heading),
        para(
            "証明書発行用パスワードは変わりません。これまでどおりお使いください。",
            st.body,
        ),
        Spacer(1, 3 * mm),
        _keep_safe(st, issuer),
    ]
    return render(
        story, names=names, title="ログイン用パスワード再発行のお知らせ", author=issuer.name
    )
