"""Every CSV the product writes goes through one writer that makes formula cells inert."""

from __future__ import annotations

import ast
import csv
import io
from pathlib import Path

import pytest

from shomei.spreadsheet import excel_writer, safe_cell, safe_row

REPO = Path(__file__).resolve().parents[1]
ATTACK = "=cmd|' /C calc'!A0"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (ATTACK, "'" + ATTACK),
        ("+1+1", "'+1+1"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("＝1+1", "'＝1+1"),
        ("証明ケアサービス", "証明ケアサービス"),
        ("1310000001", "1310000001"),
        ("", ""),
    ],
)
def test_safe_cell(value: str, expected: str) -> None:
    assert safe_cell(value) == expected


def test_numbers_stay_numbers_and_text_is_escaped() -> None:
    assert safe_row([-5000, 3, 1.5, None, True, ATTACK]) == [
        -5000,
        3,
        1.5,
        "",
        "true",
        "'" + ATTACK,
    ]
    buffer = io.StringIO()
    excel_writer(buffer).writerows([["名前", "額"], [ATTACK, -5000]])
    assert buffer.getvalue() == "名前,額\r\n'=cmd|' /C calc'!A0,-5000\r\n"
    assert list(csv.reader(io.StringIO(buffer.getvalue()))) == [
        ["名前", "額"],
        ["'" + ATTACK, "-5000"],
    ]


def test_no_module_writes_csv_but_through_the_one_writer() -> None:
    """csv.writer / csv.DictWriter appear only in shomei/spreadsheet.py."""
    offenders = []
    for package in ("ca", "crl", "ra", "signer", "cli", "shomei"):
        for path in (REPO / package).rglob("*.py"):
            if path == REPO / "shomei" / "spreadsheet.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "csv"
                    and node.attr in ("writer", "DictWriter")
                ):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []
