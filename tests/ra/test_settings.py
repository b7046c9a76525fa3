"""RA settings: the sign-in and web tables are typed, checked and strict about keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from ra.settings import LockoutPolicy, load_ra_settings
from shomei.errors import ConfigError
from tests.ra_profile import PROFILE_FILES

BASE = f'[ra]\ndatabase_url = "sqlite:///ra.sqlite"\ndata_dir = "var"\n{PROFILE_FILES}\n'


def _write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "ra.toml"
    path.write_text(BASE + extra, encoding="utf-8")
    return path


def test_defaults(tmp_path: Path) -> None:
    settings = load_ra_settings(_write(tmp_path, ""))
    assert settings.signin.console == LockoutPolicy(5, 30)
    assert settings.signin.portal == LockoutPolicy(3, 30)
    assert settings.web.secret_key_file == tmp_path / "ra-web.key"
    assert settings.web.behind_tls is False and settings.web.date_style == "western"


def test_values_are_read(tmp_path: Path) -> None:
    settings = load_ra_settings(
        _write(
            tmp_path,
            "[ra.signin.portal]\nattempts = 4\nminutes = 10\n"
            '[ra.web]\nbehind_tls = true\ndate_style = "wareki"\nidle_timeout_minutes = 15\n'
            'secret_key_file = "keys/web.key"\n',
        )
    )
    assert settings.signin.portal == LockoutPolicy(4, 10)
    assert settings.web.behind_tls and settings.web.date_style == "wareki"
    assert settings.web.idle_timeout_minutes == 15
    assert settings.web.secret_key_file == tmp_path / "keys" / "web.key"


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ("[ra.signin.console]\nattempts = 5\nminutes = 30\nfoo = 1\n", "foo"),
        ("[ra.signin.console]\nattempts = 0\nminutes = 30\n", "signin.console"),
        ('[ra.web]\ndate_style = "showa"\n', "date_style"),
        ("[ra.web]\nidle_timeout_minutes = 0\n", "idle_timeout_minutes"),
        ('[ra.web]\nbehind_tls = "yes"\n', "behind_tls"),
        ('[ra.signin]\nterms_of_use = "  "\n', "terms_of_use"),
        ('[ra.signin]\nterms_version = ""\n', "terms_version"),
        ('[ra.signin]\nportal_totp = "on"\n', "portal_totp"),
    ],
)
def test_bad_values_are_one_clear_error(tmp_path: Path, extra: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_ra_settings(_write(tmp_path, extra))
    assert words in err.value.message


def test_the_portal_sign_in_settings(tmp_path: Path) -> None:
    default = load_ra_settings(_write(tmp_path, "")).signin
    assert default.portal_totp is False and default.terms_version == "1"
    assert (
        default.terms_of_use.startswith("第1条(目的)\n") and "第6条(変更)" in default.terms_of_use
    )
    settings = load_ra_settings(
        _write(
            tmp_path,
            '[ra.signin]\nportal_totp = true\nterms_version = "2027-04"\n'
            'terms_of_use = """\n第1条 テスト\n"""\n',
        )
    ).signin
    assert settings.portal_totp and settings.terms_version == "2027-04"
    assert settings.terms_of_use == "第1条 テスト\n"
