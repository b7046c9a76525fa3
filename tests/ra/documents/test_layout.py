"""The layout helpers: safe text, and the margin check the other tests rely on."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfgen import canvas

from ra.documents import Fonts, notification_letters
from ra.documents.fonts import register
from ra.documents.layout import clean, lines, para, printable
from tests.ra.documents.conftest import Pdf, assert_margins_blank
from tests.ra.documents.samples import ISSUED_AT, ISSUER, PORTAL, account

ReadPdf = Callable[[bytes, str], Pdf]
STYLE = ParagraphStyle("plain")


def test_clean_turns_control_characters_into_spaces() -> None:
    assert clean("a\x00b\tc\r\nd\x7fe") == "a b c  d e"
    assert clean("事業所\u3000ひまわり") == "事業所\u3000ひまわり"  # ideographic space is text


@pytest.mark.parametrize(
    "typed",
    ["<b>株式会社</b>", "A & B", "&amp;", "<para>", "<font size=40>大</font>", "<br/>", "&#60;"],
)
def test_para_keeps_typed_text_literal(typed: str) -> None:
    assert para(typed, STYLE).getPlainText() == typed
    assert lines([typed, typed], STYLE).getPlainText() == typed + typed


def test_unbalanced_markup_does_not_break_the_paragraph() -> None:
    # Unescaped, "<b>" without its end tag is a reportlab parse error.
    assert para("<b>閉じないタグ", STYLE).getPlainText() == "<b>閉じないタグ"


def test_the_margin_check_sees_ink_off_the_text_column(read_pdf: ReadPdf) -> None:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=A4)
    page.drawString(A4[0] - 20, A4[1] / 2, "overflow")  # runs off the right edge
    page.save()
    pdf = read_pdf(buffer.getvalue(), "margin-check-self-test")
    (png,) = pdf.render()
    with pytest.raises(AssertionError, match="ink in the page margin"):
        assert_margins_blank(png)
    png.unlink()  # not a document: nothing for a person to look at


def test_characters_the_font_lacks_print_as_geta(fonts: Fonts) -> None:
    gothic = register(fonts).gothic
    style = ParagraphStyle("ipaex", fontName=gothic)
    # 𠮷 (U+20BB7) and emoji are not in IPAex; 髙 and 﨑 are.
    assert para("𠮷野家😀", style).getPlainText() == "〓野家〓"
    assert printable("髙橋 﨑", gothic) == "髙橋 﨑"
    # A decomposed が (か + combining mark) is composed, not printed as か and a box.
    assert printable("か\u3099", gothic) == "が"
    # Variation selectors and zero-width characters have nothing to print.
    assert printable("葛\U000e0100飾\ufe00区\u200b\u00ad", gothic) == "葛飾区"


def test_the_geta_mark_reaches_the_pdf_text(fonts: Fonts, read_pdf: ReadPdf) -> None:
    data = notification_letters(
        [account("of1", organization="𠮷野家")],
        issuer=ISSUER,
        portal_url=PORTAL,
        issued_at=ISSUED_AT,
        fonts=fonts,
    )
    assert "〓野家" in read_pdf(data, "notification-geta").compact()
