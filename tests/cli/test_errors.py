"""The CLI's one table of exit codes covers every kind of error, by the class hierarchy.

Every module of the product is imported first, so that every :class:`ShomeiError` subclass
defined anywhere (``ra.people.passwords.WrongPassword``, ``ca.batchstore.Busy``, ...) is found by
walking the subclasses, not by a list kept by hand.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

from cli.errors import EXIT_CODES, FAILED, INTERNAL, INVALID, exit_code_of, report
from shomei import errors
from shomei.errors import ShomeiError, VerificationFailed

PACKAGES = ("shomei", "crl", "signer", "ca", "ra", "cli")
# Alembic's scripts run on import; ``__main__`` modules are programs.
SKIP = ("ra.store.migrations", ".__main__")


def _import_everything() -> None:
    for name in PACKAGES:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            if not any(part in info.name for part in SKIP):
                importlib.import_module(info.name)


def _subclasses(root: type[ShomeiError]) -> list[type[ShomeiError]]:
    found: list[type[ShomeiError]] = []
    todo = [root]
    while todo:
        kind = todo.pop()
        found.append(kind)
        todo.extend(kind.__subclasses__())
    return found


def _instance(kind: type[ShomeiError]) -> ShomeiError:
    try:
        return kind("x", message_ja="x")
    except TypeError:
        # A subclass with its own constructor: an instance without running it is enough, the
        # table looks only at the class.
        return kind.__new__(kind)


def test_every_kind_has_its_code() -> None:
    _import_everything()
    kinds = _subclasses(ShomeiError)
    # The kinds of shomei.errors and some defined in the packages are all there.
    assert {errors.NotPermitted, errors.Conflict, errors.AlreadyExists, errors.LockedOut} <= set(
        kinds
    )
    assert any(k.__module__.startswith("ra.") for k in kinds)
    assert any(k.__module__.startswith("ca.") for k in kinds)
    for kind in kinds:
        expected = INVALID if issubclass(kind, VerificationFailed) else FAILED
        assert exit_code_of(_instance(kind)) == expected, kind


def test_anything_else_is_internal() -> None:
    assert exit_code_of(KeyError("x")) == INTERNAL
    assert exit_code_of(ValueError("x")) == INTERNAL


def test_the_table_is_the_only_place() -> None:
    # Exit codes do not live on the error classes any more.
    assert not any(hasattr(kind, "exit_code") for kind in _subclasses(ShomeiError))
    assert set(EXIT_CODES) == {VerificationFailed, ShomeiError}


def test_the_most_specific_entry_wins() -> None:
    class Refinement(VerificationFailed):
        pass

    assert exit_code_of(Refinement("bad")) == INVALID
    assert exit_code_of(errors.AlreadyExists("taken")) == FAILED


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.NotPermitted("no", message_ja="権限がありません"), FAILED),
        (errors.VerificationFailed("bad", message_ja="不正"), INVALID),
    ],
)
def test_report_prints_one_line_and_returns_the_code(
    error: ShomeiError,
    code: int,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOMEI_LANG", "ja")
    assert report(error) == code
    assert capsys.readouterr().err == f"shomei: {error.message_ja}\n"
