"""The Japanese fonts embedded in every document, so a letter prints the same anywhere.

The defaults are the IPAex fonts of Debian's ``fonts-ipaexfont`` package (IPA Font License,
which allows embedding): IPAex Gothic for titles, labels and the values people must read
exactly, IPAex Mincho for running text.  Both are TrueType fonts, which reportlab embeds as
subsets (only the glyphs used), so ``pdffonts`` shows them with ``emb yes``.

A missing or unusable font file is one :class:`~shomei.errors.ConfigError` that names the
Debian package to install and the RA setting (``[ra.documents] gothic_font`` /
``mincho_font``) that points at another TrueType file.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from ra.settings import DocumentSettings
from shomei.errors import ConfigError

DEFAULT_GOTHIC: Final = Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")
DEFAULT_MINCHO: Final = Path("/usr/share/fonts/opentype/ipaexfont-mincho/ipaexm.ttf")
FONT_PACKAGE: Final = "fonts-ipaexfont"
SETTINGS_TABLE: Final = "[ra.documents]"


@dataclass(frozen=True, kw_only=True)
class Fonts:
    """The TrueType files a document is set in (RA settings ``[ra.documents]``)."""

    gothic: Path = DEFAULT_GOTHIC
    mincho: Path = DEFAULT_MINCHO

    @classmethod
    def from_settings(cls, documents: DocumentSettings) -> Fonts:
        """The fonts named by the RA settings' ``[ra.documents]`` table."""
        return cls(gothic=documents.gothic_font, mincho=documents.mincho_font)


@dataclass(frozen=True)
class FontNames:
    """The names the registered fonts go by inside reportlab."""

    gothic: str
    mincho: str


# reportlab keeps registered fonts in a process-wide table; registering (which reads and
# parses a 4 MB file) happens once per file, under a lock so two requests do not race.
_LOCK = threading.Lock()
_REGISTERED: dict[Path, str] = {}


def register(fonts: Fonts) -> FontNames:
    """Register both fonts with reportlab (once per file) and return their names."""
    return FontNames(
        gothic=_register(fonts.gothic, "gothic_font"),
        mincho=_register(fonts.mincho, "mincho_font"),
    )


def _register(path: Path, setting: str) -> str:
    path = Path(path)
    with _LOCK:
        if path in _REGISTERED:
            return _REGISTERED[path]
        where = f"{SETTINGS_TABLE} {setting}"
        if not path.is_file():
            raise ConfigError(
                f"font file not found: {path}; install Debian's {FONT_PACKAGE} "
                f"(apt-get install {FONT_PACKAGE}) or set {where} to another TrueType font file",
                message_ja=(
                    f"フォントファイルがありません: {path}。Debian の {FONT_PACKAGE} を"
                    f"インストールする(apt-get install {FONT_PACKAGE})か、設定 {where} で"
                    "別の TrueType フォントファイルを指定してください"
                ),
                path=str(path),
                setting=where,
            )
        # A name per file, so two settings with different files never overwrite each other.
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
        name = f"Shomei-{path.stem}-{digest}"
        try:
            pdfmetrics.registerFont(TTFont(name, str(path)))
        # reportlab's TrueType parser raises TTFError for what it recognises as wrong, and
        # KeyError, IndexError, struct.error... for truncated or garbled tables; any of them
        # means this file cannot be used, and the operator needs the one message below.
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise ConfigError(
                f"font file {path} cannot be used ({detail}); set {where} to a TrueType "
                f"font file that allows embedding, such as those of {FONT_PACKAGE}",
                message_ja=(
                    f"フォントファイル {path} を使用できません({detail})。設定 {where} で"
                    f"埋め込み可能な TrueType フォント({FONT_PACKAGE} など)を指定してください"
                ),
                path=str(path),
                setting=where,
            ) from exc
        _REGISTERED[path] = name
        return name
