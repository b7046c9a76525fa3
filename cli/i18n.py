"""Japanese for everything the ``shomei`` command shows, click's own texts included.

The product's errors carry their Japanese (``message_ja``); this module covers the rest:

- click's own messages (usage errors such as "Missing argument", "No such option",
  "Invalid value for …", and the "Usage:"/"Options:"/"Commands:" headings of ``--help``).
  Click looks each of them up through :mod:`gettext` (domain ``messages``); :func:`install`
  gives click's modules a lookup that follows :func:`cli.errors.language`, the same setting
  as every other message, instead of gettext's own reading of ``LANGUAGE``/``LANG`` and a
  compiled catalog on disk.  :data:`CLICK_JA` is the catalog (a test keeps it complete
  against the messages of the installed click);
- the help texts of our commands and options (:mod:`cli.help_ja`), put in place for one run
  by :func:`apply`;
- the few lines :mod:`cli.main` writes itself (:func:`text`).
"""

from __future__ import annotations

import gettext as _gettext
import inspect
import sys
from typing import Any

import click

from cli.errors import language
from cli.help_ja import HELP_JA

# click's msgids, as in its source; {placeholders} are kept as they are.
CLICK_JA: dict[str, str] = {
    "Aborted!": "中断しました。",
    "deprecated": "非推奨",
    "required": "必須",
    "Missing command.": "コマンドを指定してください。",
    "Options": "オプション",
    "Positional arguments": "位置引数",
    "Commands": "コマンド",
    "Usage:": "使い方:",
    "DeprecationWarning: The command {name!r} is deprecated.{extra_message}": (
        "DeprecationWarning: コマンド {name!r} は非推奨です。{extra_message}"
    ),
    "DeprecationWarning: The {param_type} {name!r} is deprecated.{extra_message}": (
        "DeprecationWarning: {param_type} {name!r} は非推奨です。{extra_message}"
    ),
    "Value must be an iterable.": "値は複数指定してください。",
    "env var: {var}": "環境変数: {var}",
    "default: {default}": "既定値: {default}",
    "(dynamic)": "(実行時に決定)",
    "Do you want to continue?": "続けますか?",
    "Confirm the action without prompting.": "確認を求めずに実行します。",
    "%(prog)s, version %(version)s": "%(prog)s バージョン %(version)s",
    "Show the version and exit.": "バージョンを表示して終了します。",
    "Show this message and exit.": "このヘルプを表示して終了します。",
    # click writes "{missing} '{name}'." (the name follows): hence the colon.
    "Missing argument": "次の引数がありません:",
    "Missing option": "次のオプションがありません:",
    "Missing parameter": "次のパラメーターがありません:",
    "Missing parameter: {param_name}": "次のパラメーターがありません: {param_name}",
    "Missing {param_type}": "次の{param_type}がありません:",
    "unknown error": "不明なエラー",
    "Invalid value for {param_hint}: {message}": "{param_hint} の値が正しくありません: {message}",
    "Invalid value: {message}": "値が正しくありません: {message}",
    "Could not open file {filename!r}: {message}": "ファイル {filename!r} を開けません: {message}",
    "Error: {message}": "エラー: {message}",
    "Try '{command} {option}' for help.": "'{command} {option}' でヘルプを表示できます。",
    "No such option {name!r}.": "オプション {name!r} はありません。",
    "No such command {name!r}.": "コマンド {name!r} はありません。",
    "Invalid start character for option ({option})": (
        "オプションの最初の文字が正しくありません({option})"
    ),
    "Option {name!r} does not take a value.": "オプション {name!r} は値を取りません。",
    "Argument {name!r} takes {nargs} values.": "引数 {name!r} には {nargs} 個の値が必要です。",
    "Couldn't detect Bash version, shell completion is not supported.": (
        "Bash のバージョンがわからないため、シェル補完は使えません。"
    ),
    "Shell completion is not supported for Bash versions older than 4.4.": (
        "Bash 4.4 より前のバージョンではシェル補完は使えません。"
    ),
    "Press any key to continue...": "続けるには何かキーを押してください...",
    "Repeat for confirmation": "確認のため、もう一度入力してください",
    "Error: The two entered values do not match.": "エラー: 入力された 2 つの値が一致しません。",
    "Error: invalid input": "エラー: 入力が正しくありません",
    "file": "ファイル",
    "directory": "フォルダ",
    "path": "パス",
    "Choose from:\n\t{choices}": "次から選んでください:\n\t{choices}",
    "Choice({choices})": "Choice({choices})",
    "{value} is not in the range {range}.": "{value} は範囲 {range} の外です。",
    "{value!r} is not a valid boolean. Recognized values: {states}": (
        "{value!r} は真偽値ではありません。使える値: {states}"
    ),
    "{value!r} is not a valid {number_type}.": (
        "{value!r} は {number_type} として正しくありません。"
    ),
    "{value!r} is not a valid UUID.": "{value!r} は UUID として正しくありません。",
    "{name} {filename!r} is a file.": "{name} {filename!r} はファイルです(フォルダを指定)。",
    "{name} {filename!r} is a directory.": "{name} {filename!r} はフォルダです(ファイルを指定)。",
    "{name} {filename!r} is not readable.": "{name} {filename!r} を読めません。",
    "{name} {filename!r} is not writable.": "{name} {filename!r} に書き込めません。",
    "{name} {filename!r} is not executable.": "{name} {filename!r} を実行できません。",
    "{name} {filename!r} does not exist.": "{name} {filename!r} がありません。",
    "{editor}: Editing failed": "{editor}: 編集できませんでした",
    "{editor}: Editing failed: {e}": "{editor}: 編集できませんでした: {e}",
    "d": "日",
}

# click's plural msgids (keyed by the singular): the Japanese singular and plural.
CLICK_JA_PLURAL: dict[str, tuple[str, str]] = {
    "Got unexpected extra argument ({args})": (
        "余分な引数があります({args})",
        "余分な引数があります({args})",
    ),
    "Takes {nargs} values but 1 was given.": (
        "{nargs} 個の値が必要ですが、1 個しか指定されていません。",
        "{nargs} 個の値が必要ですが、{len} 個指定されています。",
    ),
    "Did you mean {possibility}?": (
        "{possibility} のことですか?",
        "(次のいずれかのことですか: {possibilities})",
    ),
    "Option {name!r} requires an argument.": (
        "オプション {name!r} には値が必要です。",
        "オプション {name!r} には {nargs} 個の値が必要です。",
    ),
    "{value!r} is not {choice}.": (
        "{value!r} は {choice} ではありません。",
        "{value!r} は {choices} のいずれでもありません。",
    ),
    "{value!r} does not match the format {format}.": (
        "{value!r} は形式 {format} に合いません。",
        "{value!r} は形式 {formats} のいずれにも合いません。",
    ),
    "{len_type} values are required, but {len_value} was given.": (
        "{len_type} 個の値が必要ですが、{len_value} 個指定されています。",
        "{len_type} 個の値が必要ですが、{len_value} 個指定されています。",
    ),
}

# Messages click defines only for programmers misusing its API (never shown to a user of a
# correct program) or for platforms Shomei does not run on; they stay English.
CLICK_UNTRANSLATED = frozenset(
    {
        "Could not determine name for option with declarations {decls!r}",
        "No options defined but a name was passed ({name}). Did you mean to declare an "
        "argument instead? Did you mean to pass '--{name}'?",
        "Arguments take exactly one parameter declaration, got {length}: {decls}.",
        "Name '{name}' defined twice",
        "Boolean option {decl!r} cannot use the same flag for true/false.",
        "Unknown color {colour!r}",
        "Unknown standard stream '{name}'",
        "Windows error: {error}",
    }
)

# The lines cli.main writes itself.
OWN_JA: dict[str, str] = {
    "interrupted: nothing more was done": "中断しました(これ以上は何もしていません)",
    "not enough memory to do this": "メモリが足りないため実行できません",
    "the system refused: {what}{where}": "システムが処理を拒否しました: {what}{where}",
    "internal error ({kind}{place}): this is a bug; run the command again with -v for the "
    "details, and report it": "内部エラー({kind}{place})です(不具合)。-v を付けて再実行すると"
    "詳細が表示されます。開発元に報告してください",
    "(see {command} --help)": "({command} --help を参照)",
    "shomei, version {version}": "shomei バージョン {version}",
}


def text(message: str, lang: str) -> str:
    """``message`` (one of :data:`OWN_JA`'s keys) in ``lang``."""
    return OWN_JA.get(message, message) if lang == "ja" else message


def help_hint(command_path: str, lang: str) -> str:
    return text("(see {command} --help)", lang).format(command=command_path)


def click_gettext(message: str) -> str:
    """gettext for click's messages, following the product's language setting."""
    return CLICK_JA.get(message, message) if language() == "ja" else message


def click_ngettext(singular: str, plural: str, n: int) -> str:
    if language() == "ja" and singular in CLICK_JA_PLURAL:
        one, many = CLICK_JA_PLURAL[singular]
        return one if n == 1 else many
    return singular if n == 1 else plural


def click_modules() -> list[Any]:
    """click's modules that look messages up through gettext."""
    return [
        module
        for name, module in sorted(sys.modules.items())
        if (name == "click" or name.startswith("click."))
        and module is not None
        and (
            getattr(module, "_", None) in (_gettext.gettext, click_gettext)
            or getattr(module, "ngettext", None) in (_gettext.ngettext, click_ngettext)
        )
    ]


def install() -> None:
    """Make click's messages follow :func:`cli.errors.language` (idempotent)."""
    import click._termui_impl  # (imported lazily by click; patch it too)
    import click.shell_completion  # noqa: F401

    for module in click_modules():
        if getattr(module, "_", None) is _gettext.gettext:
            module._ = click_gettext
        if getattr(module, "ngettext", None) is _gettext.ngettext:
            module.ngettext = click_ngettext


def _english(command: click.Command) -> dict[str, Any]:
    """The English help of ``command`` and its options, kept on first use."""
    saved: dict[str, Any] | None = command.__dict__.get("_shomei_english")
    if saved is None:
        saved = {
            "help": command.help,
            "short_help": command.short_help,
            "params": {id(p): getattr(p, "help", None) for p in command.params},
        }
        command.__dict__["_shomei_english"] = saved
    return saved


def translate_help(english: str | None) -> str | None:
    """The Japanese of one of our help texts (None when there is none)."""
    if not english:
        return None
    key = inspect.cleandoc(english)
    return HELP_JA.get(key) or CLICK_JA.get(key)


def apply(command: click.Command, lang: str) -> None:
    """Put the help texts of ``command`` and everything under it in ``lang`` for this run.

    A text without a translation stays English (``tests/cli/test_language.py`` lists any).
    """
    english = _english(command)
    if lang == "ja":
        help_ja = translate_help(english["help"])
        command.help = help_ja or english["help"]
        if help_ja:
            first = help_ja.split("\n\n")[0].replace("\n", "")
            command.short_help = first.split("。")[0] + ("。" if "。" in first else "")
        else:
            command.short_help = english["short_help"]
    else:
        command.help, command.short_help = english["help"], english["short_help"]
    for param in command.params:
        if isinstance(param, click.Option):
            original = english["params"].get(id(param))
            param.help = (translate_help(original) if lang == "ja" else None) or original
        if isinstance(param.type, click.Path):
            # Named when the type was made (at import), before any language was known.
            kind = (param.type.file_okay, param.type.dir_okay)
            name = {(True, False): "file", (False, True): "directory"}.get(kind, "path")
            param.type.name = CLICK_JA[name] if lang == "ja" else name
    if getattr(command, "_help_option", None) is not None:
        # click keeps the --help option it made (with its help text in the language of that
        # time) for the life of the command; it makes a new one, in this language, on demand.
        command._help_option = None
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            apply(sub, lang)


install()
