"""ra.profile_files: the RA loads its own certificate profiles once, at start-up.

A missing, broken or duplicated profile, a default profile that is not among them, an empty
list and an attempt to set the loaded profiles from the file are each one ConfigError naming
the setting; the CLI shows it as one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from ra.settings import RASettings, load_ra_settings
from shomei.errors import ConfigError
from tests.ra_profile import FEES, FEES_LINE, OFFICE_PROFILE

OFFICE = OFFICE_PROFILE.read_text(encoding="utf-8")


def _settings(folder: Path, *lines: str) -> Path:
    path = folder / "ra.toml"
    body = ['database_url = "sqlite:///ra.sqlite"', 'data_dir = "data"', FEES_LINE, *lines]
    path.write_text("[ra]\n" + "\n".join(body) + "\n", encoding="utf-8")
    return path


def _files(*paths: str) -> str:
    return f"profile_files = [{', '.join(json.dumps(p) for p in paths)}]"


def _profile(folder: Path, name: str, text: str = OFFICE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_profiles_are_loaded_relative_to_the_settings_file(tmp_path: Path) -> None:
    _profile(tmp_path / "profiles", "office")
    second = OFFICE.replace('name = "office"', 'name = "office-p384"').replace(
        'key_types = ["rsa2048", "rsa3072", "p256"]', 'key_types = ["p384"]'
    )
    second = second.replace('default_key_type = "rsa2048"', 'default_key_type = "p384"')
    _profile(tmp_path / "profiles", "office-p384", second)
    path = _settings(
        tmp_path, _files("profiles/office.toml", "profiles/office-p384.toml"), 'profile = "office"'
    )
    settings = load_ra_settings(path)
    assert settings.profile_files == [
        tmp_path / "profiles" / "office.toml",
        tmp_path / "profiles" / "office-p384.toml",
    ]
    assert [p.name for p in settings.profiles] == ["office", "office-p384"]
    office = settings.certificate_profile()
    assert office.name == "office" and office.federation == "証明連合会"
    assert office.allows("rsa2048") and not office.allows("p384")
    assert settings.certificate_profile("office-p384").default_key_type == "p384"
    with pytest.raises(ConfigError, match=r"no certificate profile 'other' \(ra.profile_files"):
        settings.certificate_profile("other")


def test_the_embedded_defaults_name_the_repository_profile(tmp_path: Path) -> None:
    conf = Path(__file__).resolve().parents[2] / "conf"
    # As shipped, they stop at the bank account: there is no sample account to print.
    with pytest.raises(ConfigError, match=r"ra\.fees\.bank_account is required"):
        load_ra_settings(conf / "ra.toml")
    # With the federation's account added they load, and name the repository's profile.
    copy = tmp_path / "ra.toml"
    copy.write_text(
        (conf / "ra.toml")
        .read_text(encoding="utf-8")
        .replace(
            'profile_files = ["profiles/office.toml"]', f"profile_files = [{str(OFFICE_PROFILE)!r}]"
        )
        + '[ra.fees.bank_account]\nbank = "テスト銀行"\nbranch = "試験支店"\n'
        'account_type = "普通"\nnumber = "7654321"\nholder_kana = "テスト"\n',
        encoding="utf-8",
    )
    settings = load_ra_settings(copy)
    assert settings.profile_files == [OFFICE_PROFILE]
    assert settings.certificate_profile().name == "office"
    assert settings.fees.tax == "exempt" and settings.fees.bank_account.number == "7654321"


def test_settings_built_in_code_have_no_profile_until_given_one(tmp_path: Path) -> None:
    bare = RASettings(fees=FEES, database_url="sqlite://", data_dir=tmp_path)
    with pytest.raises(ConfigError, match="loaded: none"):
        bare.certificate_profile()


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ((), r"ra\.toml: ra\.profile_files: required: list the certificate profile files"),
        ((_files(),), r"ra\.profile_files: required"),
        (
            (_files("profiles/missing.toml"),),
            r"ra\.profile_files\[0\]: certificate profile not found: .*profiles/missing\.toml$",
        ),
        (
            (_files("profiles/office.toml"), 'profile = "agent"'),
            r"ra\.profile: 'agent' is not among the profiles of ra\.profile_files \(office\)",
        ),
        (
            (_files("profiles/office.toml", "copy/office.toml"),),
            r"ra\.profile_files\[1\]: .*copy/office\.toml defines profile 'office' a second time",
        ),
        (
            (_files("profiles/office.toml"), "profiles = []"),
            r"ra\.toml: profiles: unknown key",
        ),
    ],
    ids=["absent", "empty", "missing-file", "unknown-default", "duplicate", "derived-key"],
)
def test_each_problem_is_one_clear_error(
    tmp_path: Path, lines: tuple[str, ...], expected: str
) -> None:
    _profile(tmp_path / "profiles", "office")
    _profile(tmp_path / "copy", "office")
    with pytest.raises(ConfigError, match=expected) as caught:
        load_ra_settings(_settings(tmp_path, *lines))
    assert "\n" not in caught.value.message
    assert caught.value.message_ja and "\n" not in caught.value.message_ja


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (OFFICE.replace('validity = "1095d"', 'validity = "1095d"\ncolour = "red"'), "colour"),
        (OFFICE.replace('default_key_type = "rsa2048"', 'default_key_type = "p384"'), "p384"),
        (OFFICE.replace("[extensions]", "[extensions"), "not valid TOML"),
        (OFFICE.replace('name = "office"', 'name = "Office!"'), "'Office!'"),
    ],
    ids=["unknown-key", "default-key-type", "not-toml", "bad-name"],
)
def test_a_broken_profile_names_the_setting_and_the_file(
    tmp_path: Path, text: str, expected: str
) -> None:
    profile = _profile(tmp_path / "profiles", "office", text)
    path = _settings(tmp_path, _files("profiles/office.toml"))
    with pytest.raises(ConfigError) as caught:
        load_ra_settings(path)
    message = caught.value.message
    assert message.startswith(f"{path}: ra.profile_files[0]: ")
    assert str(profile) in message and expected in message and "\n" not in message


def test_the_cli_stops_with_one_line(tmp_path: Path) -> None:
    path = _settings(tmp_path, _files("profiles/missing.toml"))
    result = CliRunner().invoke(main, ["ra", "show", "1", "--settings", str(path)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and "certificate profile not found" in lines[0], result.output
    assert "Traceback" not in result.output
