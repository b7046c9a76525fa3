"""Every message a user sees follows the language setting: click's own texts and our help."""

from __future__ import annotations

import ast
import gettext
import inspect
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cli import i18n
from cli.help_ja import HELP_JA
from cli.main import main
from tests.cli.scan_env import commands


def _click_messages() -> tuple[set[str], dict[str, str]]:
    """click's gettext msgids (from its source) and its plural ones (singular -> plural)."""
    singles: set[str] = set()
    plurals: dict[str, str] = {}
    for source in sorted(Path(click.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            args = [a.value for a in node.args if isinstance(a, ast.Constant)]
            if node.func.id == "_" and args and isinstance(args[0], str):
                singles.add(args[0])
            elif node.func.id == "ngettext" and len(args) >= 2:
                plurals[args[0]] = args[1]
    return singles, plurals


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)[^}]*\}|%\((\w+)\)s", text)) - {("", "")}


def test_every_click_message_has_japanese() -> None:
    singles, plurals = _click_messages()
    missing = singles - set(i18n.CLICK_JA) - i18n.CLICK_UNTRANSLATED
    assert not missing, f"click messages without Japanese (cli/i18n.py CLICK_JA): {missing}"
    assert set(plurals) <= set(i18n.CLICK_JA_PLURAL), set(plurals) - set(i18n.CLICK_JA_PLURAL)
    stale = set(i18n.CLICK_JA) - singles - {"required"}  # "required" is looked up by value
    assert not stale, f"translations of messages click no longer has: {stale}"


def test_translations_keep_the_placeholders() -> None:
    _, plurals = _click_messages()
    for english, japanese in i18n.CLICK_JA.items():
        assert _placeholders(japanese) == _placeholders(english), english
    for singular, (one, many) in i18n.CLICK_JA_PLURAL.items():
        assert _placeholders(one) <= _placeholders(singular) | _placeholders(plurals[singular])
        assert _placeholders(many) <= _placeholders(singular) | _placeholders(plurals[singular])
    for english, japanese in i18n.OWN_JA.items():
        assert _placeholders(japanese) == _placeholders(english), english


def test_click_modules_look_up_through_our_catalog() -> None:
    modules = i18n.click_modules()
    assert {m.__name__ for m in modules} >= {"click.core", "click.exceptions", "click.types"}
    for module in modules:
        assert getattr(module, "_", i18n.click_gettext) is not gettext.gettext, module
        assert getattr(module, "ngettext", i18n.click_ngettext) is not gettext.ngettext, module


def _help_texts() -> dict[str, str]:
    texts: dict[str, str] = {}
    for path, command in [("", main), *commands(main)]:
        parents = [main] if path else []
        for cmd in [*parents, command]:
            english = i18n._english(cmd)
            if english["help"]:
                texts[inspect.cleandoc(english["help"])] = path or "shomei"
            for param in cmd.params:
                original = english["params"].get(id(param))
                if original:
                    texts[inspect.cleandoc(original)] = f"{path} {param.name}"
    for group_path in ("ca", "ra", "notice"):
        group = main.commands[group_path]
        english = i18n._english(group)
        texts[inspect.cleandoc(english["help"])] = group_path
    return texts


def test_every_help_text_has_japanese() -> None:
    texts = _help_texts()
    missing = {where: text for text, where in texts.items() if not i18n.translate_help(text)}
    assert not missing, f"help texts without Japanese (add them to cli/help_ja.py): {missing}"
    stale = set(HELP_JA) - set(texts)
    assert not stale, f"cli/help_ja.py translates texts no command has any more: {stale}"


@pytest.mark.parametrize(
    ("args", "english", "japanese"),
    [
        (
            ["ra", "show"],
            "Missing argument 'APPLICATION_ID'",
            "次の引数がありません: 'APPLICATION_ID'",
        ),
        (["verify", "."], "Missing option '--trust'", "次のオプションがありません: '--trust'"),
        (["ca", "nope"], "No such command 'nope'", "コマンド 'nope' はありません"),
        (["sign", "--nope"], "No such option '--nope'", "オプション '--nope' はありません"),
        (
            ["verify", "--workers", "0", "."],
            "Invalid value for '--workers': 0 is not in the range",
            "'--workers' の値が正しくありません: 0 は範囲",
        ),
        (
            ["ca", "status", "--ca-home", "/nonexistent"],
            "Directory '/nonexistent' does not exist",
            "フォルダ '/nonexistent' がありません",
        ),
    ],
)
def test_usage_errors_are_one_line_in_the_users_language(
    args: list[str], english: str, japanese: str
) -> None:
    runner = CliRunner()
    for lang, expected in (("en", english), ("ja", japanese), ("en", english)):
        result = runner.invoke(main, args, env={"SHOMEI_LANG": lang})
        assert result.exit_code == 2, result.output
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert expected in lines[0], lines[0]
        hint = "(see shomei" if lang == "en" else "--help を参照)"
        assert hint in lines[0]


def test_lang_follows_the_locale_like_every_other_message() -> None:
    result = CliRunner().invoke(main, ["ra", "show"], env={"LANG": "ja_JP.UTF-8"})
    assert "次の引数がありません" in result.stderr


def test_help_in_japanese_and_back() -> None:
    runner = CliRunner()
    ja = runner.invoke(main, ["ca", "--help"], env={"SHOMEI_LANG": "ja"})
    assert ja.exit_code == 0
    for heading in ("使い方:", "オプション:", "コマンド:", "このヘルプを表示して終了します。"):
        assert heading in ja.stdout
    assert "要求バッチ" in ja.stdout and "Usage:" not in ja.stdout
    sign = runner.invoke(main, ["sign", "--help"], env={"SHOMEI_LANG": "ja"})
    assert "鍵と証明書の入った PKCS#12 ファイル。" in sign.stdout
    en = runner.invoke(main, ["ca", "--help"], env={"SHOMEI_LANG": "en"})
    assert "Usage:" in en.stdout and "Options:" in en.stdout and "使い方" not in en.stdout
    assert "Sign the RA request batch" in en.stdout
    version = runner.invoke(main, ["--version"], env={"SHOMEI_LANG": "ja"})
    assert "shomei バージョン" in version.stdout
