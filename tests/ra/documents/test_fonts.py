"""The embedded fonts: the defaults, the settings, and one clear error when one is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from ra.documents import DEFAULT_GOTHIC, DEFAULT_MINCHO, Fonts, notification_letters
from ra.documents.fonts import register
from ra.settings import DocumentSettings, RASettings
from shomei.errors import ConfigError
from tests.ra.documents.samples import ISSUED_AT, ISSUER, PORTAL, account
from tests.ra_profile import FEES


def test_the_defaults_are_debians_ipaex_fonts() -> None:
    assert Fonts() == Fonts(gothic=DEFAULT_GOTHIC, mincho=DEFAULT_MINCHO)
    assert DEFAULT_GOTHIC.name == "ipaexg.ttf"
    assert DEFAULT_MINCHO.name == "ipaexm.ttf"
    # The RA settings default to the same files.
    settings = RASettings(fees=FEES, database_url="sqlite://", data_dir=Path("/tmp"))
    assert Fonts.from_settings(settings.documents) == Fonts()
    other = DocumentSettings(gothic_font=Path("/x/g.ttf"), mincho_font=Path("/x/m.ttf"))
    assert Fonts.from_settings(other) == Fonts(gothic=Path("/x/g.ttf"), mincho=Path("/x/m.ttf"))


def test_a_missing_font_is_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-font.ttf"
    with pytest.raises(ConfigError) as caught:
        notification_letters(
            [account("of1")],
            issuer=ISSUER,
            portal_url=PORTAL,
            issued_at=ISSUED_AT,
            fonts=Fonts(gothic=missing),
        )
    error = caught.value
    for message in (error.message, error.message_ja):
        assert "\n" not in message
        assert str(missing) in message
        assert "fonts-ipaexfont" in message
        assert "[ra.documents] gothic_font" in message
    assert error.fields["setting"] == "[ra.documents] gothic_font"


def test_a_missing_mincho_names_its_own_setting(tmp_path: Path, fonts: Fonts) -> None:
    with pytest.raises(ConfigError, match=r"\[ra.documents\] mincho_font"):
        register(Fonts(mincho=tmp_path / "gone.ttf"))


@pytest.mark.parametrize(
    "content",
    [b"", b"not a font at all" * 100, b"\x00\x01\x00\x00" + b"\x00" * 64],
    ids=["empty", "text", "truncated-ttf"],
)
def test_a_file_that_is_not_a_truetype_font(tmp_path: Path, content: bytes) -> None:
    bogus = tmp_path / "bogus.ttf"
    bogus.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        register(Fonts(gothic=bogus))
    assert "cannot be used" in caught.value.message
    assert "[ra.documents] gothic_font" in caught.value.message
    assert "\n" not in caught.value.message


def test_a_folder_is_not_a_font(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="font file not found"):
        register(Fonts(gothic=tmp_path))


def test_registering_twice_reuses_the_font(fonts: Fonts) -> None:
    assert register(fonts) == register(fonts)
    assert register(fonts).gothic != register(fonts).mincho
