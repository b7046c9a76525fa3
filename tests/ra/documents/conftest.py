"""Reading the PDF documents back: poppler-utils and the IPAex fonts, or a visible skip.

Every document test renders its PDF and reads it back the way a person's tools would:
``pdftotext`` (the Japanese text is there, no U+FFFD), ``pdffonts`` (every font embedded),
``pdfinfo`` (the page count) and ``pdftoppm -r 80 -png``; the PNGs are kept under
``tests/artifacts/documents/`` (ignored by git) for a person to look at, and their outer
margin is checked to be blank, so nothing runs off the page.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from ra.documents import DEFAULT_GOTHIC, DEFAULT_MINCHO, Fonts

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "tests" / "artifacts" / "documents"
POPPLER = ("pdftotext", "pdffonts", "pdfinfo", "pdftoppm")
DPI = 80
BLANK_BAND_MM = 10  # the pages have 18 mm margins; ink in the outer 10 mm means overflow


@pytest.fixture
def fonts() -> Fonts:
    """The default fonts, or a skip naming the Debian package to install."""
    missing = [str(p) for p in (DEFAULT_GOTHIC, DEFAULT_MINCHO) if not p.is_file()]
    if missing:
        pytest.skip(f"IPAex fonts missing ({', '.join(missing)}): apt-get install fonts-ipaexfont")
    return Fonts()


@dataclass(frozen=True)
class FontRow:
    name: str
    type: str
    embedded: bool


@dataclass(frozen=True)
class Word:
    text: str
    height: float  # points; about the font size


@dataclass
class Pdf:
    """One PDF written to a file, read back with poppler-utils."""

    path: Path
    name: str

    def _run(self, *args: str) -> str:
        done = subprocess.run(args, check=True, capture_output=True)
        return done.stdout.decode("utf-8")

    def text(self) -> str:
        return self._run("pdftotext", "-enc", "UTF-8", str(self.path), "-")

    def layout(self) -> str:
        """The text with its physical layout kept: a table row stays on one line."""
        return self._run("pdftotext", "-layout", "-enc", "UTF-8", str(self.path), "-")

    def assert_row(self, *cells: str) -> None:
        """Some line of the layout text shows these cells, in this order."""
        pattern = r"\s+".join(re.escape(cell) for cell in cells)
        assert re.search(pattern, self.layout()), f"no line shows {cells}"

    def compact(self) -> str:
        """The text without white space (long values are wrapped over several lines)."""
        return re.sub(r"\s+", "", self.text())

    def page_texts(self) -> list[str]:
        return self.text().split("\f")[: self.pages()]

    def pages(self) -> int:
        found = re.search(r"^Pages:\s+(\d+)$", self._run("pdfinfo", str(self.path)), re.M)
        assert found, "pdfinfo shows no page count"
        return int(found.group(1))

    def fonts(self) -> list[FontRow]:
        rows = self._run("pdffonts", str(self.path)).splitlines()[2:]
        parsed = []
        for row in rows:
            # name type... encoding emb sub uni object-id generation
            cells = row.split()
            parsed.append(FontRow(cells[0], " ".join(cells[1:-6]), cells[-5] == "yes"))
        return parsed

    def words(self) -> list[Word]:
        xhtml = self._run("pdftotext", "-bbox", "-enc", "UTF-8", str(self.path), "-")
        found = re.finditer(
            r'<word xMin="[\d.]+" yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">([^<]*)</word>',
            xhtml,
        )
        return [
            Word(html.unescape(m.group(3)), float(m.group(2)) - float(m.group(1))) for m in found
        ]

    def render(self) -> list[Path]:
        """PNG pages at 80 dpi under tests/artifacts/documents/, for a person to look at."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob(f"{self.name}-*.png"):
            old.unlink()
        prefix = ARTIFACTS / self.name
        subprocess.run(
            ["pdftoppm", "-r", str(DPI), "-png", str(self.path), str(prefix)], check=True
        )
        return sorted(ARTIFACTS.glob(f"{self.name}-*.png"))


def assert_margins_blank(png: Path) -> None:
    """Nothing is drawn in the outer band of the page: no text ran off its column."""
    band = round(BLANK_BAND_MM / 25.4 * DPI)
    with Image.open(png) as image:
        gray = image.convert("L")
        width, height = gray.size
        for box in (
            (0, 0, width, band),
            (0, height - band, width, height),
            (0, 0, band, height),
            (width - band, 0, width, height),
        ):
            darkest, _ = gray.crop(box).getextrema()
            assert darkest > 240, f"{png.name}: ink in the page margin {box}"


def assert_readable(pdf: Pdf, *expected: str) -> None:
    """The common checks of every document: text, fonts, margins."""
    text = pdf.text()
    assert "\ufffd" not in text, "U+FFFD in the extracted text"
    compact = pdf.compact()
    for value in expected:
        assert re.sub(r"\s+", "", value) in compact, f"{value!r} not in the text"
    fonts = pdf.fonts()
    assert fonts, "no fonts in the PDF"
    assert all(f.embedded for f in fonts), f"a font is not embedded: {fonts}"
    assert {"IPAexGothic", "IPAexMincho"} <= {f.name.split("+")[-1] for f in fonts}
    pngs = pdf.render()
    assert len(pngs) == pdf.pages()
    for png in pngs:
        assert_margins_blank(png)


@pytest.fixture
def read_pdf(tmp_path: Path) -> Callable[[bytes, str], Pdf]:
    """Write PDF bytes to a file and read them with poppler-utils (or skip, saying why)."""
    missing = [tool for tool in POPPLER if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"poppler-utils missing ({', '.join(missing)}): apt-get install poppler-utils")

    def read(data: bytes, name: str) -> Pdf:
        assert data.startswith(b"%PDF-"), "not a PDF"
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(data)
        return Pdf(path, name)

    return read
