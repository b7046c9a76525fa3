"""Sample values for the document tests: ordinary, longest and hostile."""

from __future__ import annotations

import datetime as dt

from ra.documents import AccountLetter, Addressee, BankAccount, Issuer

ISSUED_AT = dt.datetime(2026, 11, 30, 15, 30, tzinfo=dt.UTC)  # 2026/12/01 00:30 in Japan
PORTAL = "https://shomei.example.jp/portal/"

ISSUER = Issuer(
    name="証明連合会",
    postal_code="100-0001",
    address="東京都千代田区千代田一丁目1番1号 証明会館3階",
    phone="03-1234-5678",
)

# 64 characters: the longest office name the RA accepts (the certificate's CN limit).
LONG_NAME = (
    "社会福祉法人さくら福祉会　指定障害福祉サービス事業所　"
    "就労継続支援Ｂ型　さくらの里ワークセンター第二作業所（本館）東棟二階北側室"
)
LONG_ADDRESS = (
    "北海道札幌市中央区北一条西二十丁目三番地四十五号 さくら福祉会館ビルディング別館 "
    "第二事業所棟 五階 五〇三号室 就労継続支援Ｂ型事業所さくらの里ワークセンター気付 "
    "Sakura-no-Sato-Work-Center-Building-Annex-Room-503"
)
HOSTILE_NAME = "<b>株式会社</b> & Co. <font size=40>大</font> &amp; <para>"

OFFICE = Addressee(
    organization="障害福祉サービス事業所ひまわり",
    postal_code="150-0002",
    address="東京都渋谷区渋谷二丁目2番2号",
)

BANK = BankAccount(
    bank="みずなみ銀行",
    branch="千代田支店",
    account_type="普通",
    number="0123456",
    holder_kana="シヨウメイレンゴウカイ",
)


def account(
    user_id: str,
    *,
    organization: str = OFFICE.organization,
    address: str = OFFICE.address,
    kind: str = "office",
) -> AccountLetter:
    return AccountLetter(
        addressee=Addressee(organization=organization, postal_code="150-0002", address=address),
        kind="agent" if kind == "agent" else "office",
        user_id=user_id,
        login_password="pQ7rT2vW9xY3zA",
        issuance_password="K7QM-3XTP-9AHD",
        office_number="1310000001",
    )
