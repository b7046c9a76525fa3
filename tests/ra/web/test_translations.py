"""Every message the web application shows is translated, and the compiled catalogs are current."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

import ra.web

WEB = Path(ra.web.__file__).resolve().parent
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None, "ngettext": (1, 2)}


def _used() -> set[str]:
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(WEB), METHODS, keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def _po(lang: str) -> dict[str, str]:
    with (WEB / "translations" / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale=lang)
    return {m.id: m.string for m in catalog if m.id and isinstance(m.id, str)}


def test_messages_are_found() -> None:
    assert {"Sign in", "Console home", "This page does not exist."} <= _used()


def test_every_message_used_is_translated_in_japanese() -> None:
    ja = _po("ja")
    missing = sorted(m for m in _used() if not ja.get(m))
    assert not missing, f"not translated in ja: {missing}"
    for english, japanese in ja.items():
        assert english != japanese and japanese.strip(), english


def test_no_message_left_over() -> None:
    assert set(_po("ja")) <= _used(), "the catalog holds messages the code no longer uses"


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_compiled_catalog_is_current(lang: str) -> None:
    folder = WEB / "translations" / lang / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as f:
        catalog = read_po(f, locale=lang)
    with (folder / "messages.mo").open("rb") as f:
        compiled = read_mo(f)
    expected = {m.id: m.string for m in catalog if m.id}
    shipped = {m.id: m.string for m in compiled if m.id}
    assert shipped == expected, f"run: pybabel compile -d {WEB / 'translations'}"
    out = io.BytesIO()
    write_mo(out, catalog)
    assert out.getvalue() == (folder / "messages.mo").read_bytes()
