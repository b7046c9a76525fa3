"""The quote (見積書, A2) and the agent's invoice (請求書, A3), as printable PDFs.

Both are addressed as the office or agent typed it on the portal (住所, 事業所名 or 法人名,
氏名 and 敬称 様 / 御中), dated in Japan time, with the fee as ``5,000円`` and the tax
treatment printed as passed (「非課税」 or 「税込」).  The invoice adds the bank account to
pay into, which the caller must pass (there is no default account, see
:class:`~ra.documents.model.BankAccount`), and, in a framed block that cannot be missed, the
rule of docs/office-guide.md §4: the payer name (振込人名) of the transfer is the agent's
user ID, since that is how the federation finds the payment in its passbook.
"""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Spacer

from ra.documents.fonts import Fonts
from ra.documents.layout import (
    FRAME_WIDTH,
    SHADE,
    Styles,
    boxed,
    dated,
    grid,
    letterhead,
    para,
    render,
    start,
)
from ra.documents.model import TAX_LABELS, BankAccount, Invoice, Issuer, Quote, TaxTreatment
from shomei.jatext import format_date, format_yen


def quote_pdf(
    quote: Quote,
    *,
    issuer: Issuer,
    wareki: bool = False,
    fonts: Fonts = Fonts(),  # noqa: B008 (a frozen value, safe as a default)
) -> bytes:
    """御見積書 for the certificate fee, as a one-page A4 PDF."""
    names, st = start(fonts)
    tax = TAX_LABELS[quote.tax]
    extra = [f"見積番号\u3000{quote.number}"] if quote.number.strip() else []
    story: list[Flowable] = [
        para("御見積書", st.title),
        letterhead(
            st,
            quote.addressee,
            issuer,
            dated("見積日", quote.issued_at, wareki=wareki),
            extra=extra,
        ),
        Spacer(1, 6 * mm),
        para("下記のとおりお見積り申し上げます。", st.body),
        _total(st, "お見積金額", quote.total_yen, tax),
        Spacer(1, 5 * mm),
        _items(st, quote.item, quote.quantity, quote.unit_price_yen, quote.total_yen, quote.tax),
        Spacer(1, 5 * mm),
        _facts(
            st,
            [("見積有効期限", format_date(quote.valid_until, wareki=wareki))],
        ),
        *_notes(st, quote.notes),
    ]
    return render(story, names=names, title="御見積書", author=issuer.name)


def invoice_pdf(
    invoice: Invoice,
    *,
    issuer: Issuer,
    bank: BankAccount,
    wareki: bool = False,
    fonts: Fonts = Fonts(),  # noqa: B008 (a frozen value, safe as a default)
) -> bytes:
    """請求書 for an agent's application, with the account to pay into, as one A4 page."""
    if not isinstance(bank, BankAccount):
        raise TypeError("bank must be a BankAccount; an invoice has no default account")
    names, st = start(fonts)
    tax = TAX_LABELS[invoice.tax]
    story: list[Flowable] = [
        para("請求書", st.title),
        letterhead(
            st,
            invoice.addressee,
            issuer,
            dated("請求日", invoice.issued_at, wareki=wareki),
            extra=[f"請求番号\u3000{invoice.number}"],
        ),
        Spacer(1, 5 * mm),
        para("下記のとおりご請求申し上げます。", st.body),
        _total(st, "ご請求金額", invoice.total_yen, tax),
        Spacer(1, 4 * mm),
        _items(
            st,
            invoice.item,
            invoice.quantity,
            invoice.unit_price_yen,
            invoice.total_yen,
            invoice.tax,
        ),
        para("お振込先", st.heading),
        _facts(
            st,
            [
                ("金融機関", f"{bank.bank}\u3000{bank.branch}"),
                ("口座", f"{bank.account_type}\u3000{bank.number}"),
                ("口座名義", bank.holder_kana),
                ("お支払期限", format_date(invoice.due_date, wareki=wareki)),
            ],
        ),
        Spacer(1, 5 * mm),
        boxed(
            st,
            [
                para("振込人名（ご依頼人名）には、必ずユーザーIDを記入してください", st.notice),
                para(f"振込人名\u3000{invoice.payer_user_id}", st.amount),
                para(
                    "連合会は、通帳に記載される振込人名で入金を確認します。ユーザーID以外の"
                    "お名前で振り込まれると入金を確認できず、証明書の発行が遅れます。"
                    "英字は大文字・小文字のどちらでも構いません。",
                    st.body,
                ),
            ],
        ),
        *_notes(st, invoice.notes),
    ]
    return render(story, names=names, title="請求書", author=issuer.name)


def _total(st: Styles, label: str, amount: int, tax: str) -> Flowable:
    width = 110 * mm
    return grid(
        st,
        [[para(label, st.amount), para(f"{format_yen(amount)}（{tax}）", st.amount)]],
        [40 * mm, width - 40 * mm],
        shade_first_column=True,
    )


def _items(
    st: Styles, item: str, quantity: int, unit: int, total: int, tax: TaxTreatment
) -> Flowable:
    label = TAX_LABELS[tax]
    widths = [FRAME_WIDTH - 105 * mm, 25 * mm, 40 * mm, 40 * mm]
    table = grid(
        st,
        [
            [
                para("品名", st.label),
                para("数量", st.label_right),
                para("単価", st.label_right),
                para("金額", st.label_right),
            ],
            [
                para(item, st.value),
                para(str(quantity), st.number),
                para(format_yen(unit), st.number),
                para(format_yen(total), st.number),
            ],
            ["", "", para(f"合計（{label}）", st.label), para(format_yen(total), st.number)],
        ],
        widths,
        shade_first_row=True,
        # The total row has lines only around the total, under the price columns.
        ruled=[((0, 0), (-1, 1)), ((2, 2), (3, 2))],
    )
    table.setStyle([("BACKGROUND", (2, 2), (2, 2), SHADE)])
    return table


def _facts(st: Styles, rows: list[tuple[str, str]]) -> Flowable:
    width = 40 * mm
    return grid(
        st,
        [[para(label, st.label), para(value, st.value)] for label, value in rows],
        [width, FRAME_WIDTH - width],
        shade_first_column=True,
    )


def _notes(st: Styles, notes: tuple[str, ...]) -> list[Flowable]:
    shown = [note for note in notes if note.strip()]
    if not shown:
        return []
    # The heading stays with its notes rather than alone at the foot of a page.
    return [KeepTogether([para("備考", st.heading), *(para(note, st.body) for note in shown)])]
