"""The download's file names work on Windows and macOS (ra.workflow.downloads.download_names)."""

from __future__ import annotations

import pytest

from ra.store.models import Application
from ra.workflow.downloads import NAME_LIMIT, download_names

# Characters Windows refuses in a file name; ':' and '/' macOS refuses too.
FORBIDDEN = set('\\/:*?"<>|') | {chr(c) for c in range(32)}


def _app(name: str, number: str = "1310000001", app_id: int = 12) -> Application:
    return Application(id=app_id, office_name=name, office_number=number)


@pytest.mark.parametrize(
    ("name", "own"),
    [
        ("証明ケアサービス 中央事業所", "証明ケアサービス 中央事業所_1310000001_12.p12"),
        ('a/b\\c:d*e?f"g<h>i|j', "a_b_c_d_e_f_g_h_i_j_1310000001_12.p12"),
        ("末尾に点.. ", "末尾に点_1310000001_12.p12"),
        ("改行\nタブ\t", "改行_タブ__1310000001_12.p12"),
        ("", "shomei-1310000001-12.p12"),
        ("...", "shomei-1310000001-12.p12"),
    ],
)
def test_names(name: str, own: str) -> None:
    got, ascii_name = download_names(_app(name), "p12")
    assert got == own
    assert ascii_name == "shomei-1310000001-12.p12"
    for n in (got, ascii_name):
        assert not FORBIDDEN & set(n) and not n.endswith((".", " "))
    assert ascii_name.isascii()


def test_a_long_name_is_cut_and_decomposed_kana_are_composed() -> None:
    got, _ = download_names(_app("あ" * 300), "pem")
    assert got == "あ" * NAME_LIMIT + "_1310000001_12.pem"
    # macOS may hand over decomposed (NFD) text; the name is NFC, as Windows expects.
    got, _ = download_names(_app("カ\u3099ス"), "p7b")
    assert got.startswith("ガス_")
