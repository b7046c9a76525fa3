"""The ``shomei`` entry point: whatever ends a command is one line and the right exit code."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import cli.ra_commands
from cli.errors import printable
from cli.main import main

SHOMEI = Path(sys.executable).with_name("shomei")


@pytest.fixture
def settings(tmp_path: Path) -> Path:
    path = tmp_path / "ra.toml"
    path.write_text("[ra]\n", encoding="utf-8")
    return path


def _fail_with(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    def load(_path: object) -> object:
        raise exc

    monkeypatch.setattr(cli.ra_commands, "load_ra_settings", load)


def _one_line(result: click.testing.Result) -> str:
    # (After Ctrl-C click ends the terminal's "^C" with a newline first.)
    lines = [line for line in result.stderr.splitlines() if line]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_an_internal_error_is_one_line_and_exit_3(
    monkeypatch: pytest.MonkeyPatch, settings: Path
) -> None:
    _fail_with(monkeypatch, KeyError("forced"))
    for lang, words in (
        ("en", "internal error (KeyError at tests/cli/test_main.py:"),
        ("ja", "内部エラー(KeyError"),
    ):
        result = CliRunner().invoke(
            main, ["ra", "show", "1", "--settings", str(settings)], env={"SHOMEI_LANG": lang}
        )
        assert result.exit_code == 3
        assert not isinstance(result.exception, KeyError)  # nothing escaped the entry point
        line = _one_line(result)
        assert line.startswith("shomei: ") and words in line, line
        assert "-v" in line


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "/ca/ledger"),
            "No space left on device: /ca/ledger",
        ),
        (MemoryError(), "not enough memory"),
        (KeyboardInterrupt(), "interrupted"),
    ],
)
def test_the_system_failing_is_exit_2(
    monkeypatch: pytest.MonkeyPatch, settings: Path, exc: BaseException, expected: str
) -> None:
    _fail_with(monkeypatch, exc)
    result = CliRunner().invoke(main, ["ra", "show", "1", "--settings", str(settings)])
    assert result.exit_code == 2
    assert expected in _one_line(result)


def test_a_closed_pipe_ends_quietly(monkeypatch: pytest.MonkeyPatch, settings: Path) -> None:
    _fail_with(monkeypatch, BrokenPipeError(errno.EPIPE, "Broken pipe"))
    result = CliRunner().invoke(main, ["ra", "show", "1", "--settings", str(settings)])
    assert result.exit_code == 2
    assert result.stderr == ""


def test_a_file_name_that_is_not_utf8_is_shown_as_bytes(tmp_path: Path) -> None:
    bad = tmp_path / os.fsdecode(b"\xff\xfe.pem")
    bad.write_bytes(b"not a certificate")
    result = CliRunner().invoke(main, ["verify", str(tmp_path), "--trust", str(bad)])
    assert result.exit_code == 2
    assert "\\xff\\xfe.pem: not a readable certificate" in _one_line(result)
    assert printable("a\udcffb\x1b[31m\nc") == "a\\xffb\\x1b[31m c"


def _script(
    body: str, *args: str | bytes, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``body`` (which may patch things) and then ``shomei args`` in a real process."""
    code = textwrap.dedent(body) + "\nfrom cli.main import main\nmain()\n"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        env={**os.environ, "SHOMEI_LANG": "en", **(env or {})},
        timeout=120,
        check=False,
    )


FORCED = """
    import sys
    import cli.ra_commands as commands
    def load(path):
        raise KeyError("forced in a subprocess")
    commands.load_ra_settings = load
    sys.argv[0] = "shomei"
"""


def test_the_traceback_only_under_v(settings: Path) -> None:
    quiet = _script(FORCED, "ra", "show", "1", "--settings", str(settings))
    assert quiet.returncode == 3
    lines = quiet.stderr.decode().splitlines()
    assert len(lines) == 1 and "internal error (KeyError" in lines[0], quiet.stderr
    verbose = _script(FORCED, "-v", "ra", "show", "1", "--settings", str(settings))
    assert verbose.returncode == 3
    err = verbose.stderr.decode()
    assert "Traceback" in err and "KeyError: 'forced in a subprocess'" in err
    assert err.rstrip().splitlines()[-1].startswith("shomei: internal error")


LOGS_AN_EXCEPTION = """
    import logging, sys
    import cli.ra_commands as commands
    def load(path):
        try:
            raise ValueError("inner detail")
        except ValueError:
            logging.getLogger("shomei.ra.example").exception("a job failed\\nsecond line")
        raise SystemExit(0)
    commands.load_ra_settings = load
    sys.argv[0] = "shomei"
"""


def test_log_records_are_one_line_without_v(settings: Path) -> None:
    quiet = _script(LOGS_AN_EXCEPTION, "ra", "show", "1", "--settings", str(settings))
    assert quiet.stderr.decode().splitlines() == [
        "ERROR shomei.ra.example: a job failed second line"
    ]
    verbose = _script(LOGS_AN_EXCEPTION, "-v", "ra", "show", "1", "--settings", str(settings))
    assert "ValueError: inner detail" in verbose.stderr.decode()


def test_real_process_non_utf8_names_and_special_files(tmp_path: Path, pki_dir: Path) -> None:
    """A few cases of the input scan as real processes: real stdio, real argv bytes."""
    bad = os.fsencode(tmp_path) + b"/\xff-claim.txt"
    Path(os.fsdecode(bad)).write_bytes(b"claim")
    fifo = tmp_path / "trust.pem"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.crl"
    huge.touch()
    os.truncate(huge, 8 << 30)
    root = tmp_path / "root.pem"
    root.write_bytes(b"junk")
    cases: list[tuple[list[str | bytes], bytes]] = [
        (["verify", bad, "--trust", os.fsencode(root)], b"root.pem: not a readable"),
        (["verify", str(tmp_path), "--trust", bad], b"/\\xff-claim.txt: not a readable"),
        (["verify", str(tmp_path), "--trust", str(fifo)], b"is not a regular file"),
        (
            ["verify", str(tmp_path), "--trust", str(pki_dir / "root.pem"), "--crl", str(huge)],
            b"more than",
        ),
    ]
    for args, words in cases:
        proc = subprocess.run(
            [SHOMEI, *args],
            capture_output=True,
            env={**os.environ, "SHOMEI_LANG": "en", "LANG": "C"},
            timeout=120,
            check=False,
        )
        assert proc.returncode == 2, proc
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and words in lines[0], proc.stderr
        lines[0].decode("utf-8")  # printable: what a terminal or a log can take


def test_output_with_a_non_utf8_name_is_printed(tmp_path: Path, pki_dir: Path) -> None:
    document = tmp_path / "doc.txt"
    document.write_text("お知らせ\n", encoding="utf-8")
    out = os.fsencode(tmp_path) + b"/\xff.p7m"
    proc = subprocess.run(
        [
            SHOMEI,
            "notice",
            "seal",
            os.fsencode(document),
            "--to",
            os.fsencode(pki_dir / "office.pem"),
            "-o",
            out,
        ],
        capture_output=True,
        env={**os.environ, "SHOMEI_LANG": "en"},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(b"/\\xff.p7m")
    assert Path(os.fsdecode(out)).is_file()
