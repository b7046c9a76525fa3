"""What a ceremony checks before it makes a key, and what it leaves when it stops part-way.

The dry run must find everything the real run would trip over (the CA home, ``ca.toml``, the
profiles, validity ranges, the shares folder, the clock, tokens), the real run must refuse on
the same findings before any key exists, and a run that fails after generating a key must
leave nothing that looks like a usable CA.
"""

from __future__ import annotations

import errno
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ca.ceremony_config import load_ceremony
from ca.custody.shares import parse_share
from cli.main import main
from shomei.errors import ConfigError, Refused
from tests import softhsm as _softhsm
from tests.ca.test_ceremony import LATER, REPO, run_file, write_ceremony
from tests.pki import NOW

softhsm = _softhsm.softhsm
softhsm_token = _softhsm.softhsm_token

ALL = ["create-root", "create-issuing", "root-crl", "issuing-crl"]


def dry_run(path: Path) -> object:
    return CliRunner().invoke(main, ["ca", "ceremony", str(path), "--dry-run"])


def one_line_error(result: object, code: int = 2) -> str:
    assert result.exit_code == code, result.output  # type: ignore[attr-defined]
    assert result.exception is None or isinstance(result.exception, SystemExit)  # type: ignore[attr-defined]
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("shomei: "), result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
    return lines[0]


def set_line(path: Path, key: str, value: str) -> None:
    text = path.read_text(encoding="utf-8")
    text, count = re.subn(rf"(?m)^{key}\s*=.*$", lambda _m: f"{key} = {value}", text, count=1)
    assert count == 1
    path.write_text(text, encoding="utf-8")


# -- the operator's path: a missing profiles folder -----------------------------------------


def test_missing_profiles_folder_is_refused_by_dry_run_and_run(tmp_path: Path) -> None:
    path = write_ceremony(tmp_path, actions=ALL)
    set_line(path, "profiles", '"no-such-profiles"')
    result = dry_run(path)
    assert "PROBLEM: the profiles folder" in result.stdout  # type: ignore[attr-defined]
    assert "problem(s)" in one_line_error(result)
    with pytest.raises(Refused, match=r"profiles folder .* does not exist"):
        run_file(path)
    assert not (tmp_path / "home").exists(), "nothing may be made"
    assert not (tmp_path / "shares").exists()


def test_profiles_folder_without_office_profile_is_refused(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    text = (REPO / "conf/profiles/office.toml").read_text(encoding="utf-8")
    (profiles / "other.toml").write_text(text.replace('name = "office"', 'name = "other"'))
    path = write_ceremony(tmp_path, actions=ALL)
    set_line(path, "profiles", '"profiles"')
    result = dry_run(path)
    assert "no profile named office" in result.stdout  # type: ignore[attr-defined]
    one_line_error(result)


def test_profile_whose_values_cannot_be_set_is_refused(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    text = (REPO / "conf/profiles/office.toml").read_text(encoding="utf-8")
    # Written over two lines, the policies cannot be set by the ceremony.
    text = re.sub(r"(?m)^policies = \[(.*)\]$", r"policies = [\n  \1,\n]", text)
    (profiles / "office.toml").write_text(text, encoding="utf-8")
    path = write_ceremony(tmp_path, actions=ALL)
    set_line(path, "profiles", '"profiles"')
    result = dry_run(path)
    assert "PROBLEM" in result.stdout and "office.toml" in result.stdout  # type: ignore[attr-defined]
    one_line_error(result)


# -- values out of range: one line, in the dry run already ---------------------------------


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("validity", '"99999999d"', "between 1d and 10950d"),
        ("validity", '"99999999999999999999999d"', "out of range"),
        ("validity", '"0d"', "between 1d and 10950d"),
        ("root_validity", '"0d"', "root_validity must be between"),
        ("issuing_validity", '"400d"', "issuing_validity must be between"),
        ("name", '"../../etc/x"', "names the transcript"),
        ("common_name", '"Root\\u0007CA"', "control characters"),
        ("common_name", '" Root CA"', "start or end with spaces"),
        ("crl_base_url", '"http://pki example/crl"', "plain ASCII"),
    ],
)
def test_bad_values_are_one_line(tmp_path: Path, key: str, value: str, expected: str) -> None:
    path = write_ceremony(tmp_path, actions=ALL)
    if key.endswith("_validity"):
        path.write_text(path.read_text() + f"\n[crl]\n{key} = {value}\n", encoding="utf-8")
    else:
        set_line(path, key, value)
    assert expected in one_line_error(dry_run(path))
    assert expected in one_line_error(CliRunner().invoke(main, ["ca", "ceremony", str(path)]))
    assert not (tmp_path / "home").exists()


def test_file_keys_need_a_shares_folder(tmp_path: Path) -> None:
    path = write_ceremony(tmp_path, actions=ALL)
    path.write_text(path.read_text().replace('shares_dir = "shares"\n', ""), encoding="utf-8")
    # Without it the shares were never written: a CA key nobody could ever open.
    with pytest.raises(ConfigError, match="shares_dir is needed"):
        load_ceremony(path)


def test_shares_folder_inside_the_home_is_refused(tmp_path: Path) -> None:
    path = write_ceremony(tmp_path, actions=ALL)
    set_line(path, "shares_dir", '"home/shares"')
    result = dry_run(path)
    assert "inside the CA home" in result.stdout  # type: ignore[attr-defined]
    one_line_error(result)


def test_home_must_be_new_or_empty_for_a_root(tmp_path: Path) -> None:
    path = write_ceremony(tmp_path, actions=ALL)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "stray.txt").write_text("x")
    with pytest.raises(Refused, match="is not empty"):
        run_file(path)
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["stray.txt"]


def test_home_that_cannot_be_created_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    path = write_ceremony(tmp_path, actions=ALL)
    set_line(path, "ca_home", '"a-file/home"')
    with pytest.raises(Refused, match="cannot create the CA home"):
        run_file(path)


# -- the example, followed as the guide says ------------------------------------------------


def test_guide_quotes_the_example_ceremony_file() -> None:
    guide = (REPO / "docs/ca-operator-guide.md").read_text(encoding="utf-8")
    example = (REPO / "conf/ceremonies/example.toml").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", guide, flags=re.S)
    body = example[example.index("[ceremony]") :]
    assert body in blocks, "the guide must show conf/ceremonies/example.toml as it is"


def test_example_copied_into_a_new_folder_plans_inside_it(tmp_path: Path) -> None:
    folder = tmp_path / "ceremony-2026"
    folder.mkdir()
    shutil.copy(REPO / "conf/ceremonies/example.toml", folder / "ceremony.toml")
    shutil.copytree(REPO / "conf/profiles", folder / "profiles")
    result = CliRunner().invoke(
        main, ["ca", "ceremony", str(folder / "ceremony.toml"), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    listed = re.findall(r"(?m)^\s+(/\S+)", result.stdout)
    assert listed and all(p.startswith(str(folder) + "/") for p in listed), listed
    # The plan says what the ceremony sets in the profile, and what the value was.
    assert 'federation = "Shomei Demo Federation" (was "証明連合会")' in result.stdout
    assert 'crl_distribution_point = "http://pki.example.jp/crl/issuing.crl"' in result.stdout
    assert 'policies = ["1.3.6.1.4.1.32473.1.1"]' in result.stdout


def test_transcript_records_what_was_set_in_each_profile(tmp_path: Path) -> None:
    import json

    path = write_ceremony(tmp_path, actions=ALL)
    run_file(path)
    log = next((tmp_path / "home/transcripts").glob("*.log")).read_text(encoding="utf-8")
    written = [json.loads(line) for line in log.splitlines() if '"profile-written"' in line]
    assert len(written) == 1
    details = written[0]["details"]
    assert details["set"]["federation"] == "テスト連合会"
    assert details["was"]["federation"] == "証明連合会"
    assert details["set"]["ca_issuers"] == "http://pki.test.example/ca/issuing.crt"


# -- a failure after the keys were made ------------------------------------------------------


def _disk_full(*_args: object, **_kwargs: object) -> bytes:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_failure_after_key_generation_leaves_no_usable_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_ceremony(tmp_path, actions=ALL)
    home = tmp_path / "home"
    with monkeypatch.context() as patch:
        # The root CRL is signed after both keys exist: the disk fills up there.
        patch.setattr("crl.builder.build_crl", _disk_full)
        with pytest.raises(Refused) as caught:
            run_file(path)
    message = caught.value.message
    assert "stopped at root-crl" in message and "No space left on device" in message
    left = sorted(home.iterdir())
    assert len(left) == 1 and left[0].name.startswith("incomplete-ceremony-")
    assert f"delete {left[0]}" in message
    # Nothing that looks like a CA: no settings, keys or certificates where commands look.
    assert not (home / "ca.toml").exists() and not (home / "root").exists()
    # The shares of keys that will never be used are not left behind.
    assert not list((tmp_path / "shares").glob("*.txt")) if (tmp_path / "shares").exists() else True
    # The abandoned transcript says why, for the minutes.
    abandoned = next((left[0] / "transcripts").glob("*.log")).read_text(encoding="utf-8")
    assert '"event":"abandoned"' in abandoned and "No space left" in abandoned
    # ca status says this is no CA; the next ceremony refuses until the folder is deleted.
    status = CliRunner().invoke(main, ["ca", "status", "--ca-home", str(home)])
    assert status.exit_code == 2 and "did not finish" in status.stdout
    with pytest.raises(Refused, match="did not finish"):
        run_file(path, now=LATER)
    shutil.rmtree(left[0])
    run_file(path, now=LATER)
    assert (home / "ca.toml").exists()


def test_failure_on_the_cli_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_ceremony(tmp_path, actions=ALL)
    monkeypatch.setattr("crl.builder.build_crl", _disk_full)
    result = CliRunner().invoke(main, ["ca", "ceremony", str(path)])
    assert "incomplete-ceremony-" in one_line_error(result)


def test_new_issuing_ca_under_an_existing_root(tmp_path: Path) -> None:
    """A later ceremony adds the issuing CA: staged, then put beside the existing root."""
    first = write_ceremony(tmp_path, actions=["create-root", "root-crl"], name="root-only")
    run_file(first)
    assert not (tmp_path / "home/ca.toml").exists()
    second = write_ceremony(
        tmp_path, actions=["create-issuing", "issuing-crl"], root=None, name="issuing"
    )
    result = CliRunner().invoke(main, ["ca", "ceremony", str(second), "--dry-run"])
    assert "shares of key" in result.stdout, result.output
    assert result.exit_code == 0, result.output
    with pytest.raises(Refused, match="shares are needed"):
        run_file(second, now=LATER)
    shares = [parse_share(p.read_text()) for p in sorted((tmp_path / "shares").glob("root-*"))]
    run_file(second, now=LATER, shares=shares[:2])
    home = tmp_path / "home"
    assert (home / "ca.toml").exists() and (home / "issuing/issuing.pem").exists()
    assert len(list((home / "crl/issuing").glob("*.crl"))) == 1
    assert not list(home.glob("incomplete-ceremony-*"))
    verify = CliRunner().invoke(main, ["ca", "verify-log", "--ca-home", str(home)])
    assert verify.exit_code == 0, verify.output


def test_existing_ca_toml_is_refused(tmp_path: Path) -> None:
    first = write_ceremony(tmp_path, actions=["create-root", "root-crl"], name="root-only")
    run_file(first)
    (tmp_path / "home/ca.toml").write_text("# made by hand\n")
    second = write_ceremony(
        tmp_path, actions=["create-issuing", "issuing-crl"], root=None, name="issuing"
    )
    result = dry_run(second)
    assert "ca.toml already exists" in result.stdout  # type: ignore[attr-defined]
    one_line_error(result)


def test_clock_behind_the_last_ceremony_is_refused(tmp_path: Path) -> None:
    path = write_ceremony(tmp_path, actions=["create-root", "root-crl"], issuing=None)
    run_file(path)
    later = write_ceremony(tmp_path, actions=["root-crl"], root=None, issuing=None, name="arl")
    with pytest.raises(Refused, match="clock"):
        run_file(later, now=NOW)


# -- PKCS#11 -------------------------------------------------------------------------------


@pytest.mark.softhsm
def test_pkcs11_token_checked_in_dry_run(
    softhsm_token: _softhsm.SoftHsmToken, tmp_path: Path
) -> None:
    path = write_ceremony(
        tmp_path, actions=ALL, root="pkcs11", issuing="pkcs11", token=softhsm_token
    )
    ok = dry_run(path)
    assert ok.exit_code == 0, ok.output  # type: ignore[attr-defined]
    assert f"token {softhsm_token.label!r}" in ok.stdout  # type: ignore[attr-defined]
    path.write_text(path.read_text().replace(softhsm_token.label, "no-such-token"))
    result = dry_run(path)
    assert "no PKCS#11 token labelled 'no-such-token'" in result.stdout  # type: ignore[attr-defined]
    one_line_error(result)


@pytest.mark.softhsm
def test_pkcs11_key_is_deleted_when_the_ceremony_stops(
    softhsm_token: _softhsm.SoftHsmToken, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from signer.pkcs11 import check_can_generate

    path = write_ceremony(
        tmp_path, actions=ALL, root="pkcs11", issuing="pkcs11", token=softhsm_token
    )
    with monkeypatch.context() as patch:
        patch.setattr("crl.builder.build_crl", _disk_full)
        with pytest.raises(Refused, match="stopped at root-crl"):
            run_file(path, pin=softhsm_token.pin)
    for label in ("root-ca", "issuing-ca"):
        # Free again: a retry can generate under the same labels.
        check_can_generate(
            module=softhsm_token.module,
            token_label=softhsm_token.label,
            key_label=label,
            algorithm="rsa2048",
            pin=softhsm_token.pin,
        )
    shutil.rmtree(next((tmp_path / "home").glob("incomplete-ceremony-*")))
    run_file(path, pin=softhsm_token.pin, now=LATER)
    assert (tmp_path / "home/ca.toml").exists()


def test_yearly_crls_on_an_existing_ca(tmp_path: Path) -> None:
    """root-crl and issuing-crl on a complete CA home: the ledger is updated in place."""
    first = write_ceremony(tmp_path, actions=ALL)
    run_file(first)
    later = write_ceremony(
        tmp_path, actions=["root-crl", "issuing-crl"], root=None, issuing=None, name="yearly"
    )
    shares = [parse_share(p.read_text()) for p in sorted((tmp_path / "shares").glob("*.txt"))]
    home = tmp_path / "home"
    ledger = home / "ledger.sqlite"
    ledger.rename(tmp_path / "ledger.bak")
    # A lost ledger is never replaced by an empty one: restore it first.
    with pytest.raises(Refused, match="no CA ledger"):
        run_file(later, now=LATER, shares=shares)
    (tmp_path / "ledger.bak").rename(ledger)
    run_file(later, now=LATER, shares=shares)
    assert len(list((home / "crl/root").glob("*.crl"))) == 2
    assert len(list((home / "crl/issuing").glob("*.crl"))) == 2
    status = CliRunner().invoke(main, ["ca", "status", "--ca-home", str(home)])
    assert "CRL: number" in status.stdout, status.output
    verify = CliRunner().invoke(main, ["ca", "verify-log", "--ca-home", str(home)])
    assert verify.exit_code == 0, verify.output
    assert verify.stdout.count("OK ") == 2
