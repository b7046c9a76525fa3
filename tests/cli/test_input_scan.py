"""The mutation scan over the CLI's file inputs: every bad input is one clear line.

For every command of the ``shomei`` tree that reads or writes a path (enumerated from the
click tree, :mod:`tests.cli.scan_env` says how to feed each), every path it takes is
replaced in turn by an empty file, random bytes, a truncated valid file, a valid file of
another kind, a sparse file over every size cap, a folder, a FIFO, a file it may not read
(run as ``nobody``: root reads anything) and a file whose name is not UTF-8; folders and
outputs get their own set (a file where a folder belongs, a folder that may not be written,
an output that exists...).  Each must end with no traceback, exit code 2 (1 where the input
was checked and found bad, as said in the scenario), exactly one line on stderr, and nothing
changed: every file of the federation (CA home, RA data, database) hashes as before.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cli.errors import printable
from cli.main import main
from tests.cli import scan_env
from tests.cli.scan_env import BADNAME, HUGE, MUTATIONS, SCENARIOS, Scenario, Slot

NOBODY = 65534
TIMEOUT = 120  # seconds; a command that blocks (a FIFO read) fails the case instead


@dataclass(frozen=True)
class Case:
    command: str
    index: int  # which scenario of the command
    slot: str
    inner: bool  # a file read inside (not a parameter)
    mutation: str

    @property
    def id(self) -> str:
        n = f"#{self.index}" if len(SCENARIOS[self.command]) > 1 else ""
        return f"{self.command}{n}:{self.slot}:{self.mutation}".replace(" ", "-")

    @property
    def scenario(self) -> Scenario:
        return SCENARIOS[self.command][self.index]

    @property
    def the_slot(self) -> Slot:
        slots = self.scenario.inner if self.inner else self.scenario.slots
        return slots[self.slot]


def _cases() -> Iterator[Case]:
    for command, scenarios in SCENARIOS.items():
        seen: set[tuple[str, str]] = set()
        for index, scenario in enumerate(scenarios):
            for inner, slots in ((False, scenario.slots), (True, scenario.inner)):
                for name, slot in slots.items():
                    for mutation in MUTATIONS[slot.role]:
                        if inner and mutation == "badname":
                            continue  # its name is fixed by the settings that name it
                        if (name, mutation) in seen and not inner:
                            continue  # fed once, in the first line that takes it
                        seen.add((name, mutation))
                        yield Case(command, index, name, inner, mutation)


CASES = list(_cases())


class ScanTimeout(BaseException):
    """Raised by the alarm: a BaseException, so that no handler under test can swallow it."""


@pytest.fixture(scope="session")
def scan_base() -> Iterator[Path]:
    """A folder every user may traverse (the ``nobody`` cases run in it)."""
    base = Path(tempfile.mkdtemp(prefix="shomei-scan-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def template(scan_base: Path) -> Path:
    folder = scan_base / "template"
    scan_env.build_template(folder)
    return folder


@pytest.fixture
def env(template: Path, scan_base: Path) -> Iterator[Path]:
    target = scan_env.copy_env(template, scan_base / uuid.uuid4().hex)
    yield target
    for root, dirs, _files in os.walk(target):
        for name in dirs:
            os.chmod(Path(root) / name, 0o700)
    shutil.rmtree(target, ignore_errors=True)


def _garbage(seed: str) -> bytes:
    return random.Random(seed).randbytes(4096)


def _replace(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def mutate(env: Path, case: Case) -> tuple[dict[str, str], bool]:
    """Apply ``case.mutation`` in ``env``: the arguments to change, and whether to run as
    ``nobody`` (the only way to have a file refused to root)."""
    slot = case.the_slot
    target = env / slot.path
    mutation = case.mutation
    override: dict[str, str] = {}
    # Root reads and writes anything: the case drops to nobody.  (A normal user running the
    # tests is refused by the mode itself.)
    nobody = mutation in ("unreadable", "unwritable") and os.geteuid() == 0
    if slot.role == "input":
        if mutation == "empty":
            target.write_bytes(b"")
        elif mutation == "random":
            target.write_bytes(_garbage(case.id))
        elif mutation == "truncated":
            data = target.read_bytes()
            target.write_bytes(data[: len(data) // 2])
        elif mutation == "wrong":
            assert slot.wrong is not None, f"{case.id}: the slot names no file of another kind"
            shutil.copyfile(env / slot.wrong, target)
        elif mutation == "huge":
            _replace(target)
            target.touch()
            os.truncate(target, HUGE)
        elif mutation == "directory":
            _replace(target)
            target.mkdir()
            (target / "inside.txt").write_text("a file inside the folder\n")
        elif mutation == "fifo":
            _replace(target)
            os.mkfifo(target)
        elif mutation == "unreadable":
            target.chmod(0)
        elif mutation == "badname":
            renamed = target.with_name(BADNAME + target.name)
            content = target.read_bytes() if slot.content == "opaque" else _garbage(case.id)
            renamed.write_bytes(content)
            renamed.chmod(target.stat().st_mode & 0o777)
            override[case.slot] = str(renamed)
    elif slot.role == "folder":
        if mutation == "file":
            _replace(target)
            target.write_text("a file where a folder belongs\n")
        elif mutation == "empty":
            _replace(target)
            target.mkdir()
        elif mutation == "fifo":
            _replace(target)
            os.mkfifo(target)
        elif mutation == "unreadable":
            target.chmod(0)
        elif mutation == "badname":
            renamed = target.with_name(BADNAME + target.name)
            renamed.mkdir()
            override[case.slot] = str(renamed)
    elif slot.role == "output":
        if mutation == "exists":
            target.write_text("an earlier file, which must stay as it is\n")
        elif mutation == "directory":
            target.mkdir()
        elif mutation == "fifo":
            os.mkfifo(target)
        elif mutation == "parent_file":
            (env / "blocker").write_text("a file where a folder would be\n")
            override[case.slot] = str(env / "blocker" / target.name)
        elif mutation == "unwritable":
            (env / "read-only").mkdir()
            (env / "read-only").chmod(0o555)
            override[case.slot] = str(env / "read-only" / target.name)
    elif slot.role == "out_folder":
        if mutation == "file":
            target.write_text("a file where the new folder would be\n")
        elif mutation == "fifo":
            os.mkfifo(target)
        elif mutation == "nonempty":
            target.mkdir()
            (target / "earlier.txt").write_text("something earlier, to be kept\n")
        elif mutation == "unwritable":
            target.mkdir()
            target.chmod(0o555)
    if nobody:
        for root, dirs, files in os.walk(env):
            for name in dirs + files:
                os.lchown(Path(root) / name, NOBODY, NOBODY)
        os.lchown(env, NOBODY, NOBODY)
    return override, nobody


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    exception: str  # repr of an exception that escaped the command, else ""


def _alarm(_signum: int, _frame: object) -> None:
    raise ScanTimeout(f"the command did not end within {TIMEOUT} s (blocked on a read?)")


def _invoke(args: list[str], lang: str) -> Outcome:
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIMEOUT)
    try:
        result = CliRunner().invoke(main, args, env={"SHOMEI_LANG": lang, "LANG": "C.UTF-8"})
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    escaped = result.exception if not isinstance(result.exception, SystemExit) else None
    return Outcome(result.exit_code, result.stdout, result.stderr, repr(escaped) if escaped else "")


def run(args: list[str], *, nobody: bool, lang: str = "en") -> Outcome:
    """Run ``shomei args`` in this process, or in a forked child that is ``nobody``."""
    if not nobody:
        return _invoke(args, lang)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root for good, run, report, leave without cleanup
        code = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            outcome = _invoke(args, lang)
            payload = json.dumps(outcome.__dict__).encode()
            with os.fdopen(write_end, "wb") as out:
                out.write(payload)
        except BaseException as exc:
            with os.fdopen(write_end, "wb") as out:
                out.write(json.dumps({"error": repr(exc)}).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as source:
        data = source.read()
    os.waitpid(pid, 0)
    answer = json.loads(data)
    assert "error" not in answer, answer
    return Outcome(**answer)


def _expected(case: Case) -> int | None:
    slot = case.the_slot
    if case.mutation in slot.expect:
        code = slot.expect[case.mutation][0]
        return case.scenario.base_exit if code is None else code
    if slot.content == "verified" and case.mutation in scan_env.CONTENT_MUTATIONS:
        return 1  # the claim was changed: the signature check finds it (invalid)
    return 2


def _check(case: Case, outcome: Outcome, expected: int | None) -> None:
    where = f"{case.id}: exit {outcome.exit_code}\nstderr: {outcome.stderr!r}"
    assert not outcome.exception, f"{where}\nescaped: {outcome.exception}"
    assert "Traceback" not in outcome.stderr + outcome.stdout, where
    assert outcome.exit_code == expected, where
    lines = outcome.stderr.splitlines()
    if expected == 2:  # could not do it: exactly one line says why
        assert len(lines) == 1 and lines[0].strip(), where
    elif expected == 0:
        assert not lines, where
    else:  # found bad: a report (a folder's failures are listed one line each), no blanks
        assert all(line.strip() for line in lines), where


def _params(cases: list[Case]) -> list[object]:
    """The cases, those of :data:`scan_env.KNOWN` marked as expected failures (strict: the
    day they pass, the mark must go)."""
    params: list[object] = []
    for case in cases:
        why = scan_env.KNOWN.get(case.id)
        marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


@pytest.mark.parametrize("case", _params(CASES))
def test_bad_input_is_one_line(case: Case, env: Path) -> None:
    slot = case.the_slot
    if slot.content == "opaque" and case.mutation in scan_env.CONTENT_MUTATIONS - {"badname"}:
        pytest.skip("any bytes are a valid value here (a claim to sign, a document to seal)")
    override, nobody = mutate(env, case)
    before = scan_env.snapshot(env)
    outcome = run(case.scenario.args(env, override), nobody=nobody)
    expected = _expected(case)
    if slot.content == "opaque" and case.mutation == "badname":
        expected = case.scenario.base_exit  # a valid file under an odd name: as usual
        assert outcome.exit_code == expected, outcome
        assert "Traceback" not in outcome.stderr
        return
    _check(case, outcome, expected)
    if expected == 2 and case.mutation not in slot.expect:
        _names_the_input(case, env, override, outcome)
    if expected != 0:  # a refusal, or a check that found something bad: nothing changed
        _unchanged(case, before, scan_env.snapshot(env))


def _names_the_input(case: Case, env: Path, override: dict[str, str], outcome: Outcome) -> None:
    """The one line says which input it is about: the file's name, or the option's."""
    shown = printable(Path(override.get(case.slot) or env / case.the_slot.path).name)
    command = dict(scan_env.commands(main))[case.command]
    flags = [o for p in command.params if p.name == case.slot for o in p.opts]
    line = outcome.stderr
    assert shown in line or any(f in line for f in flags), (
        f"{case.id}: the line does not name {shown!r} (or {flags}): {line!r}"
    )


def _unchanged(
    case: Case, before: dict[str, tuple[str, str]], after: dict[str, tuple[str, str]]
) -> None:
    allowed = set(case.scenario.writes)
    changed = sorted(
        key
        for key in set(before) | set(after)
        if before.get(key) != after.get(key) and key not in allowed
    )
    assert not changed, f"{case.id}: changed: {changed}"


# In Japanese: the same one line (a few mutations of every input suffice).
JA_CASES = [c for c in CASES if c.mutation in ("random", "directory", "file", "exists")]


@pytest.mark.parametrize("case", _params(JA_CASES))
def test_bad_input_is_one_japanese_line(case: Case, env: Path) -> None:
    slot = case.the_slot
    if slot.content != "structured" and case.mutation == "random":
        pytest.skip("any bytes are a claim or a document")
    override, nobody = mutate(env, case)
    outcome = run(case.scenario.args(env, override), nobody=nobody, lang="ja")
    expected = _expected(case)
    _check(case, outcome, expected)
    if expected != 2:
        return  # a report on stdout (status), or the listed failures of a folder
    line = outcome.stderr.strip()
    assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in line), line


@pytest.mark.parametrize(
    ("command", "index"),
    [(c, i) for c, s in SCENARIOS.items() for i, x in enumerate(s) if x.base_exit is not None],
)
def test_scenario_runs_unmutated(command: str, index: int, env: Path) -> None:
    """The scan's lines work as they are: its mutations test the inputs, not a broken line."""
    scenario = SCENARIOS[command][index]
    outcome = run(scenario.args(env), nobody=False)
    assert outcome.exit_code == scenario.base_exit, outcome
    assert "Traceback" not in outcome.stderr and not outcome.exception, outcome
    if scenario.base_exit != 0:
        assert len(outcome.stderr.splitlines()) == 1, outcome


def test_every_file_parameter_is_fed() -> None:
    """A command (new, or with a new option) that takes a path must have its scan line."""
    missing = []
    for path, command in scan_env.commands(main):
        wanted = scan_env.file_parameters(command)
        if not wanted:
            continue
        fed = {name for scenario in SCENARIOS.get(path, ()) for name in scenario.slots}
        if wanted - fed:
            missing.append(f"{path}: {', '.join(sorted(wanted - fed))}")
    assert not missing, (
        "these path parameters are not fed by the input scan; add them to "
        "tests/cli/scan_env.py SCENARIOS: " + "; ".join(missing)
    )
    tree = dict(scan_env.commands(main))
    assert set(SCENARIOS) <= set(tree), set(SCENARIOS) - set(tree)


def test_plain_string_paths_are_noticed() -> None:
    """The scan finds a path parameter even when it is declared as a plain string."""

    @click.command()
    @click.option("--output-file")
    @click.option("--key-label")
    def command(output_file: str, key_label: str) -> None:
        """A command."""

    assert scan_env.file_parameters(command) == {"output_file"}


# -- on PostgreSQL: the RA commands whose inputs reach the database ---------------------------

PG_SLOTS = {"csv_file", "crl_file", "out_file", "link certificate"}
PG_CASES = [c for c in CASES if c.command.startswith("ra ") and c.slot in PG_SLOTS]


def _pg_tables(url: str) -> dict[str, tuple[str, str]]:
    import hashlib

    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            state = {}
            for table in inspect(conn).get_table_names():
                query = text(f'SELECT * FROM "{table}"')  # noqa: S608 - names from the schema
                rows = sorted(repr(r) for r in conn.execute(query))
                state[f"postgresql#{table}"] = (
                    "table",
                    hashlib.sha256("\n".join(rows).encode()).hexdigest(),
                )
            return state
    finally:
        engine.dispose()


@pytest.fixture
def pg_env(env: Path) -> Iterator[tuple[Path, str]]:
    """The environment with its RA on a PostgreSQL schema of its own (with accounts in it)."""
    from sqlalchemy import create_engine

    from ra.store.db import upgrade
    from tests.ra.conftest import _pg_base

    base = _pg_base()
    schema = f"scan_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    try:
        upgrade(url)
        settings = env / "ra.toml"
        text = settings.read_text(encoding="utf-8")
        start = text.index("database_url = ")
        end = text.index("\n", start)
        settings.write_text(text[:start] + f'database_url = "{url}"' + text[end:], encoding="utf-8")
        loaded = run(
            ["ra", "import-accounts", str(env / "accounts.csv"), "--settings", str(settings)],
            nobody=False,
        )
        assert loaded.exit_code == 0, loaded
        yield env, url
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("case", _params(PG_CASES))
def test_bad_input_is_one_line_on_postgresql(case: Case, pg_env: tuple[Path, str]) -> None:
    env, url = pg_env
    override, nobody = mutate(env, case)
    before = {**scan_env.snapshot(env), **_pg_tables(url)}
    outcome = run(case.scenario.args(env, override), nobody=nobody)
    expected = _expected(case)
    _check(case, outcome, expected)
    if expected == 2 and case.mutation not in case.the_slot.expect:
        _names_the_input(case, env, override, outcome)
    _unchanged(case, before, {**scan_env.snapshot(env), **_pg_tables(url)})
