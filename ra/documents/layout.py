"""The common layout of the documents: A4 pages, styles, the letterhead, safe text.

Every piece of text goes into a reportlab ``Paragraph`` through :func:`para`, which escapes
it: a ``Paragraph`` reads an XML-like markup (``<b>``, ``&amp;``, ``<font>``), and a name
typed as ``<b>株式会社</b> & Co`` must print as those very characters, not as bold text or a
parse error.  Control characters (a pasted tab or line break) become spaces, invisible format
characters and variation selectors are dropped, the text is NFC-composed, and a character the
font has no glyph for (an emoji, a rare kanji such as 𠮷) is printed as 〓, the customary
mark in Japanese printing for a character that cannot be set, rather than an empty box that
text extraction would lose.  Long names
and addresses wrap inside their column (``wordWrap="CJK"`` breaks between any two
characters, as Japanese typesetting does), so nothing runs off the page.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from ra.documents.fonts import FontNames, Fonts, register
from ra.documents.model import Addressee, Issuer
from shomei.jatext import format_date

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 18 * mm
FRAME_WIDTH = PAGE_WIDTH - 2 * MARGIN
GRID = colors.Color(0.55, 0.55, 0.55)
SHADE = colors.Color(0.93, 0.93, 0.93)


GETA = "〓"  # 下駄記号: stands for a character the font cannot print


def clean(text: str) -> str:
    """``text`` with control characters as spaces (for one-line fields such as the title)."""
    return "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)


@functools.lru_cache(maxsize=16)
def _glyphs(font_name: str) -> frozenset[int] | None:
    """The code points the font has glyphs for (None for a font that is not TrueType)."""
    face = getattr(pdfmetrics.getFont(font_name), "face", None)
    mapping = getattr(face, "charToGlyph", None)
    return frozenset(mapping) if mapping is not None else None


def printable(text: str, font_name: str) -> str:
    """``text`` as the font can print it: composed, cleaned, missing glyphs as 〓."""
    glyphs = _glyphs(font_name)
    out: list[str] = []
    for ch in unicodedata.normalize("NFC", clean(text)):
        if unicodedata.category(ch) == "Cf" or _is_variation_selector(ch):
            continue  # zero-width and format characters, IVS selectors: nothing to print
        out.append(ch if glyphs is None or ch == " " or ord(ch) in glyphs else GETA)
    return "".join(out)


def _is_variation_selector(ch: str) -> bool:
    code = ord(ch)
    return 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF


def para(text: str, style: ParagraphStyle) -> Paragraph:
    """A paragraph that shows ``text`` literally (escaped; never read as markup)."""
    return Paragraph(escape(printable(text, style.fontName)), style)


def steps(texts: Sequence[str], style: ParagraphStyle) -> list[Flowable]:
    """Numbered steps (1. 2. 3.), each wrapped under its own text, not under its number."""
    return [
        Paragraph(escape(printable(text, style.fontName)), style, bulletText=f"{number}.")
        for number, text in enumerate(texts, start=1)
    ]


def lines(parts: Iterable[str], style: ParagraphStyle) -> Paragraph:
    """One paragraph of several lines; each line is escaped, the breaks are ours."""
    shown = (escape(printable(part, style.fontName)) for part in parts if part)
    return Paragraph("<br/>".join(shown), style)


@dataclass(frozen=True)
class Styles:
    """The paragraph styles of one document, bound to its registered fonts."""

    title: ParagraphStyle
    heading: ParagraphStyle
    body: ParagraphStyle
    step: ParagraphStyle  # a numbered step, with a hanging indent
    small: ParagraphStyle
    label: ParagraphStyle
    label_right: ParagraphStyle  # a column heading over numbers
    value: ParagraphStyle
    secret: ParagraphStyle  # passwords and user IDs: large, Gothic, spaced
    right: ParagraphStyle
    number: ParagraphStyle  # amounts in tables, right-aligned
    amount: ParagraphStyle  # the big total under the title
    notice: ParagraphStyle  # the boxed instruction that must not be missed
    # Tables set a font for every cell even when it holds paragraphs; left unset it would be
    # Helvetica, a font the PDF would name without embedding.
    table_font: str


def styles(names: FontNames) -> Styles:
    g, m = names.gothic, names.mincho

    def style(
        name: str,
        font: str,
        size: float,
        *,
        leading: float | None = None,
        align: Literal[0, 1, 2] = TA_LEFT,
    ) -> ParagraphStyle:
        return ParagraphStyle(
            name,
            fontName=font,
            fontSize=size,
            leading=leading or size * 1.5,
            alignment=align,
            wordWrap="CJK",
        )

    title = style("title", g, 18, align=TA_CENTER)
    title.spaceBefore, title.spaceAfter = 4, 10
    heading = style("heading", g, 11.5)
    heading.spaceBefore, heading.spaceAfter = 8, 3
    body = style("body", m, 10.5)
    body.spaceAfter = 4
    step = style("step", m, 10.5)
    step.spaceAfter, step.leftIndent, step.bulletIndent = 3, 5 * mm, 0
    step.bulletFontName, step.bulletFontSize = m, 10.5
    return Styles(
        title=title,
        heading=heading,
        body=body,
        step=step,
        small=style("small", m, 9, leading=13),
        label=style("label", g, 10),
        label_right=style("label_right", g, 10, align=TA_RIGHT),
        value=style("value", m, 10.5),
        secret=style("secret", g, 14, leading=19),
        right=style("right", m, 10.5, align=TA_RIGHT),
        number=style("number", m, 10.5, align=TA_RIGHT),
        amount=style("amount", g, 16, leading=22),
        notice=style("notice", g, 12.5, leading=19),
        table_font=m,
    )


def start(fonts: Fonts) -> tuple[FontNames, Styles]:
    """Register the fonts (or fail with the one clear error) and build the styles."""
    names = register(fonts)
    return names, styles(names)


def letterhead(
    st: Styles, addressee: Addressee, issuer: Issuer, dated: str, *, extra: Sequence[str] = ()
) -> Table:
    """The addressee on the left; the date, any numbers and the issuer on the right."""
    name_lines = [addressee.organization]
    if addressee.person.strip():
        name_lines.append(addressee.person)
    name_lines[-1] = f"{name_lines[-1]}\u3000{addressee.honorific}"
    left: list[Flowable] = []
    if addressee.postal_code.strip() or addressee.address.strip():
        left.append(lines([postal(addressee.postal_code), addressee.address], st.value))
        left.append(Spacer(1, 3 * mm))
    left.append(lines(name_lines, st.secret))
    right: list[Flowable] = [lines([*extra, dated], st.right), Spacer(1, 5 * mm)]
    right.append(issuer_block(st, issuer))
    table = Table(
        [[left, right]], colWidths=[FRAME_WIDTH * 0.56, FRAME_WIDTH * 0.44], hAlign="LEFT"
    )
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), st.table_font),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (0, -1), 0),
                ("RIGHTPADDING", (-1, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (0, -1), 4 * mm),
            ]
        )
    )
    return table


def issuer_block(st: Styles, issuer: Issuer) -> Paragraph:
    parts = [issuer.name, postal(issuer.postal_code), issuer.address]
    if issuer.phone.strip():
        parts.append(f"電話 {issuer.phone}")
    if issuer.registration_number.strip():
        parts.append(f"登録番号 {issuer.registration_number}")
    return lines(parts, st.value)


def postal(code: str) -> str:
    return f"〒{code}" if code.strip() else ""


def dated(label: str, value: dt.date, *, wareki: bool) -> str:
    return f"{label}\u3000{format_date(value, wareki=wareki)}"


def grid(
    st: Styles,
    rows: list[list[Flowable | str]],
    widths: Sequence[float],
    *,
    shade_first_column: bool = False,
    shade_first_row: bool = False,
    ruled: Sequence[tuple[tuple[int, int], tuple[int, int]]] = (((0, 0), (-1, -1)),),
) -> Table:
    """A ruled table; cells are paragraphs, so long values wrap inside their cell.

    ``ruled`` names the cell ranges that get lines (all of them by default).
    """
    table = Table(rows, colWidths=list(widths), hAlign="LEFT")
    commands: list[tuple[Any, ...]] = [
        ("FONTNAME", (0, 0), (-1, -1), st.table_font),
        *(("GRID", start, end, 0.6, GRID) for start, end in ruled),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 4),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
    ]
    if shade_first_column:
        commands.append(("BACKGROUND", (0, 0), (0, -1), SHADE))
    if shade_first_row:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), SHADE))
    table.setStyle(TableStyle(commands))
    return table


def boxed(
    st: Styles, content: list[Flowable], *, width: float = FRAME_WIDTH, border: float = 1.6
) -> Table:
    """A framed block for what must not be missed (the payer name, keeping a letter safe)."""
    table = Table([[content]], colWidths=[width], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), st.table_font),
                ("BOX", (0, 0), (-1, -1), border, colors.black),
                ("LEFTPADDING", (0, 0), (-1, -1), 4 * mm),
                ("RIGHTPADDING", (0, 0), (-1, -1), 4 * mm),
                ("TOPPADDING", (0, 0), (-1, -1), 3 * mm),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3 * mm),
            ]
        )
    )
    return table


def render(story: list[Flowable], *, names: FontNames, title: str, author: str) -> bytes:
    """Lay ``story`` out on A4 pages and return the PDF bytes."""
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=clean(title),
        author=clean(author),
        creator="Shomei",
        lang="ja-JP",
        # The canvas starts in this font instead of Helvetica, so no font is left
        # unembedded in the file.
        initialFontName=names.mincho,
    )
    doc.build(story)
    return buffer.getvalue()
